"""The files a user names: folders walked for images, each read under the size limit, and
file names made recordable. Registration and reference sets both start here."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.errors import MediaError

IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
        ".gif",
        ".mpo",
        ".heic",
        ".heif",
        ".avif",
        ".exr",
        ".dpx",
    }
)


# Movies, read with PyAV (FFmpeg inside): one asset each.
MOVIE_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm"})


def display_name(name: str) -> str:
    """A file name as recorded: as given when it is UTF-8 text; otherwise (a name in another
    encoding, which the OS hands over with surrogates) with each undecodable byte written
    as \\xNN, so the record can hold it and a person can still read and find it."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_file(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, refusing what is not a regular file or is over ``max_bytes``."""
    try:
        _size_within(path, max_bytes, "max_file_mb")
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read file: {exc.strerror}") from None


def _size_within(path: Path, max_bytes: int, setting: str) -> int:
    """The size of a regular file at most ``max_bytes`` long (MediaError otherwise)."""
    if not path.is_file():
        raise MediaError("not a file" if path.exists() else "no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise MediaError(
            f"file is {size:,} bytes, over the limit of {max_bytes:,} (setting {setting})"
        )
    return size


def hash_file(path: Path, max_bytes: int, chunk: int = 1 << 20) -> tuple[str, int]:
    """(sha256, size) of a file read in chunks, refusing what is not a regular file or is
    over ``max_bytes``."""
    digest = hashlib.sha256()
    try:
        size = _size_within(path, max_bytes, "max_movie_mb")
        with path.open("rb") as reading:
            while block := reading.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise MediaError(f"cannot read file: {exc.strerror}") from None
    return digest.hexdigest(), size


@dataclass(frozen=True)
class Skipped:
    """A file found in a folder and not taken, and why."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class FrameSequence:
    """Frame-numbered stills that make one asset (``shot010_comp.1001-1100#.exr``): each
    frame's number and file, in order, and the frames missing from its range."""

    pattern: str
    frames: tuple[tuple[int, Path], ...]
    missing: tuple[int, ...] = ()

    def __str__(self) -> str:
        """The pattern with ``#`` padding (``shot010_comp.####.exr``), as reported."""
        return self.pattern


# A name made only of these is read as a sequence pattern when no such file exists.
_PATTERN_MARKS = ("#", "@", "%0", "%d")


def collect_files(
    paths: Iterable[str | Path], exclude: Path | None = None, *, moving: bool = True
) -> tuple[list[Path | FrameSequence], list[Skipped]]:
    """Files named directly, plus the pictures, movies and frame sequences found by walking
    folders (sorted; hidden entries and the ``exclude`` folder, the workspace itself, are
    not entered). In a folder, files named ``<name>.<frame>.<ext>`` (two or more frames of a
    still format) make one FrameSequence; a name with ``#``, ``@`` or ``%04d`` (and an
    optional range, ``shot.1001-1100#.exr``) names one. Returns them and the other files
    found in folders, each with why it was not taken. ``moving`` False (reference sets):
    movies are skipped and a sequence's frames are taken as stills."""
    found_items: list[Path | FrameSequence] = []
    skipped: list[Skipped] = []
    taken = IMAGE_SUFFIXES | (MOVIE_SUFFIXES if moving else frozenset())
    for entry in paths:
        path = Path(entry)
        if not path.is_dir():
            if moving and not path.exists() and any(m in path.name for m in _PATTERN_MARKS):
                found_items.append(sequence_on_disk(path))
            else:
                found_items.append(path)
            continue
        by_folder: dict[Path, list[Path]] = {}
        for found in _walk(path, exclude.resolve() if exclude else None):
            suffix = found.suffix.lower()
            if suffix in taken:
                by_folder.setdefault(found.parent, []).append(found)
            elif suffix not in (".json", ".c2pa"):  # sidecars are read with their file
                skipped.append(Skipped(str(found), _why_not(suffix, moving)))
        for folder_files in by_folder.values():
            found_items.extend(_grouped(folder_files) if moving else folder_files)
    return list(dict.fromkeys(found_items)), skipped


def sequence_on_disk(pattern: Path) -> FrameSequence:
    """The frames on disk of a sequence pattern (``#``/``@`` padding, ``%04d``, an optional
    frame range); MediaError when none exists."""
    from fileseq import findSequenceOnDisk
    from fileseq.exceptions import FileSeqException
    from fileseq.filesequence import FileSequence

    try:
        requested = FileSequence(str(pattern))
        on_disk = findSequenceOnDisk(str(pattern))
    except (FileSeqException, ValueError) as exc:
        raise MediaError(f"no frames of the sequence {pattern}: {exc}") from None
    frames = [int(f) for f in on_disk.frameSet() or []]
    wanted = [int(f) for f in requested.frameSet() or frames]
    present = set(frames)
    chosen = [f for f in wanted if f in present]
    if not chosen:
        raise MediaError(f"no frames of the sequence {pattern} on disk")
    return _sequence(on_disk, chosen, [f for f in wanted if f not in present])


def _grouped(files: list[Path]) -> list[Path | FrameSequence]:
    """A folder's files with the frames of each ``<name>.<frame>.<ext>`` sequence (two or
    more frames of a still format) replaced by the sequence, where its first frame was."""
    from fileseq import findSequencesInList

    by_name = {f.name: f for f in files}
    replaced: dict[Path, Path | FrameSequence] = {}
    for found in findSequencesInList(sorted(by_name)):
        frame_set = found.frameSet()
        if (
            frame_set is None
            or len(frame_set) < 2
            or not found.basename().endswith(".")
            or found.extension().lower() not in IMAGE_SUFFIXES
        ):
            continue
        frames = [int(f) for f in frame_set]
        folder = files[0].parent
        found.setDirname(str(folder) + os.sep)
        span = list(range(frames[0], frames[-1] + 1))
        sequence = _sequence(found, frames, [f for f in span if f not in set(frames)])
        for _, frame_path in sequence.frames:
            replaced[frame_path] = sequence
    ordered: list[Path | FrameSequence] = [replaced.get(f, f) for f in files]
    return list(dict.fromkeys(ordered))


def _sequence(found: Any, frames: list[int], missing: list[int]) -> FrameSequence:
    padding = found.zfill() or 1
    dirname = found.dirname()
    pattern = f"{dirname}{found.basename()}{'#' * padding}{found.extension()}"
    return FrameSequence(
        pattern,
        tuple((f, Path(found.frame(f))) for f in frames),
        tuple(missing),
    )


def _why_not(suffix: str, moving: bool) -> str:
    if not moving and suffix in MOVIE_SUFFIXES:
        return "reference sets take stills; movies are not read as references"
    taken = IMAGE_SUFFIXES | (MOVIE_SUFFIXES if moving else frozenset())
    kinds = ", ".join(sorted(s.lstrip(".") for s in taken))
    named = f"{suffix} files" if suffix else "files without an extension"
    return f"{named} are not read (read: {kinds})"


def _walk(folder: Path, exclude: Path | None) -> Iterator[Path]:
    for current, dirs, names in os.walk(folder):
        here = Path(current)
        if exclude is not None and here.resolve().is_relative_to(exclude):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield here / name
