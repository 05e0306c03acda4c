"""The files a user names: folders walked for images, each read under the size limit, and
file names made recordable. Registration and reference sets both start here."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

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


def display_name(name: str) -> str:
    """A file name as recorded: as given when it is UTF-8 text; otherwise (a name in another
    encoding, which the OS hands over with surrogates) with each undecodable byte written
    as \\xNN, so the record can hold it and a person can still read and find it."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_file(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, refusing what is not a regular file or is over ``max_bytes``."""
    try:
        if not path.is_file():
            raise MediaError("not a file" if path.exists() else "no such file")
        size = path.stat().st_size
        if size > max_bytes:
            raise MediaError(
                f"file is {size:,} bytes, over the limit of {max_bytes:,} (setting max_file_mb)"
            )
        return path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read file: {exc.strerror}") from None


@dataclass(frozen=True)
class Skipped:
    """A file found in a folder and not taken, and why."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def collect_files(
    paths: Iterable[str | Path], exclude: Path | None = None
) -> tuple[list[Path], list[Skipped]]:
    """Files named directly, plus image files found by walking folders (sorted; hidden
    entries and the ``exclude`` folder, the workspace itself, are not entered). Returns the
    files and the other files found in folders, each with why it was not taken."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for entry in paths:
        path = Path(entry)
        if not path.is_dir():
            files.append(path)
            continue
        for found in _walk(path, exclude.resolve() if exclude else None):
            suffix = found.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                files.append(found)
            elif suffix != ".json":  # sidecars are read with their image
                skipped.append(Skipped(str(found), _why_not(suffix)))
    return list(dict.fromkeys(files)), skipped


def _why_not(suffix: str) -> str:
    kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
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
