"""Registration's per-file work: validating what the user says, finding files, and
fingerprinting one file (read, decode, metadata, hashes, content store).

``fingerprint_file`` takes and returns plain values so that it runs the same inline or in a
worker process; the records are written by ``Workspace`` in the calling process.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance import jsontext
from provenance.detectors.hashes import perceptual_hashes, sha256_fingerprint
from provenance.domain import GENERATION_FIELDS, Fingerprint, IntendedUse, MetadataReading
from provenance.errors import InvalidInput, MediaError, ProvenanceError
from provenance.media import decode_image
from provenance.metadata import read_embedded
from provenance.metadata.sidecar import find_sidecar, parse_seed, read_sidecar
from provenance.store import ContentStore

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".mpo"}
)
MAX_TEXT_CHARS = 100_000


@dataclass
class RegisterRequest:
    """What the person registering says about the files (flags), all optional."""

    fields: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    use: IntendedUse | None = None
    production: str | None = None
    by: str | None = None
    metadata_file: Path | None = None

    @classmethod
    def from_flags(
        cls,
        *,
        fields: Mapping[str, Any] | None = None,
        settings: Iterable[str] = (),
        use: str | None = None,
        production: str | None = None,
        by: str | None = None,
        metadata_file: str | Path | None = None,
    ) -> RegisterRequest:
        """Validate command-line values; raise InvalidInput before any file is touched."""
        clean: dict[str, Any] = {}
        for name, value in (fields or {}).items():
            if name not in GENERATION_FIELDS:
                raise InvalidInput(f"unknown generation field {name!r}")
            if value is None:
                continue
            clean[name] = (
                parse_seed(value, "--seed")
                if name == "seed"
                else check_text(str(value), f"--{name.replace('_', '-')}")
            )
        parsed_settings: dict[str, Any] = {}
        for item in settings:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise InvalidInput(f"--setting {item!r} is not KEY=VALUE")
            check_text(key, "--setting key")
            try:
                parsed_settings[key] = jsontext.loads(raw)
            except jsontext.TooDeep as exc:
                raise InvalidInput(f"--setting {key}: {exc}") from None
            except ValueError:
                parsed_settings[key] = check_text(raw, f"--setting {key}")
        return cls(
            fields=clean,
            settings=parsed_settings,
            use=IntendedUse.parse(use) if use is not None else None,
            production=check_text(production, "--production").strip() if production else None,
            by=check_text(by, "--by").strip() if by else None,
            metadata_file=Path(metadata_file) if metadata_file is not None else None,
        )


def display_name(name: str) -> str:
    """A file name as recorded: as given when it is UTF-8 text; otherwise (a name in another
    encoding, which the OS hands over with surrogates) with each undecodable byte written
    as \\xNN, so the record can hold it and a person can still read and find it."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_text(value: str, label: str) -> str:
    """Refuse text no record should hold: NUL characters (PostgreSQL rejects them) and
    values too long to be a prompt or a name."""
    if "\x00" in value:
        raise InvalidInput(f"{label} contains a NUL character")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInput(f"{label} is {len(value):,} characters, over {MAX_TEXT_CHARS:,}")
    return value


@dataclass
class RegisterResult:
    """The outcome for one file: ``new``, ``known`` (same bytes already registered) or
    ``failed`` (with the reason)."""

    path: str
    status: str
    asset: dict[str, Any] | None = None
    error: str | None = None
    check: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "asset": self.asset,
            "error": self.error,
            "check": self.check,
        }


@dataclass
class RegisterReport:
    """Every file's outcome, plus files skipped while walking folders."""

    results: list[RegisterResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Assets registered earlier and still unchecked (a run killed in its check phase),
    # checked by this run; and those whose check failed, with the error.
    earlier_checked: int = 0
    earlier_failed: list[tuple[int, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.register/1",
            "summary": {
                "new": self.count("new"),
                "known": self.count("known"),
                "failed": self.count("failed"),
                "skipped": len(self.skipped),
                "earlier_checked": self.earlier_checked,
            },
            "results": [result.to_json() for result in self.results],
            "skipped": self.skipped,
            "earlier_check_failures": [
                {"asset_id": asset_id, "error": error} for asset_id, error in self.earlier_failed
            ],
        }


@dataclass(frozen=True)
class FingerprintLimits:
    """The settings a fingerprinting worker needs, as plain values that pickle."""

    max_file_bytes: int
    max_pixels: int
    hash_names: tuple[str, ...]


@dataclass
class FingerprintedFile:
    """A file decoded, fingerprinted and copied into the store, ready to be recorded."""

    path: Path
    sha256: str
    size: int
    media: dict[str, Any]
    readings: list[MetadataReading]
    fingerprints: list[Fingerprint]
    created_blob: bool


class WorkerError(Exception):
    """An unexpected error in a fingerprinting worker, carried back as text."""


# How often a worker looks whether the process that started it is still there.
PARENT_POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker soon after ``parent_pid`` is gone.

    A pool's workers wait on a queue whose pipe they hold both ends of, so a parent killed
    with SIGKILL (or any death that runs no cleanup) would leave them, and the forkserver and
    resource tracker that wait on them, alive for good."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                continue  # alive, under another user (cannot happen for our own parent)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def fingerprint_file(
    path: Path, sha256: str, limits: FingerprintLimits, store_root: Path, data: bytes | None
) -> FingerprintedFile:
    """Decode, read metadata, hash and store one file (runs in a worker process or inline).

    ``data`` is the file's bytes when the caller already holds them; otherwise the file is
    read again and must still have the bytes ``sha256`` names.
    """
    try:
        if data is None:
            data = read_file(path, limits.max_file_bytes)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise MediaError("file changed while it was being registered")
        decoded = decode_image(data, max_pixels=limits.max_pixels)
        readings = [_sanitised(r) for r in read_embedded(decoded)]
        sidecar = find_sidecar(path)
        if sidecar is not None:
            readings.append(read_sidecar(sidecar))
        fingerprints = [
            sha256_fingerprint(sha256),
            *perceptual_hashes(decoded.pixels, limits.hash_names),
        ]
        created = ContentStore(store_root).put(data, sha256)
    except ProvenanceError:
        raise
    except Exception as exc:
        # Whatever it is, it must cross the process boundary intact.
        raise WorkerError(f"{type(exc).__name__}: {exc}") from None
    return FingerprintedFile(
        path, sha256, len(data), decoded.media_json(), readings, fingerprints, created
    )


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


def collect_files(
    paths: Iterable[str | Path], exclude: Path | None = None
) -> tuple[list[Path], list[str]]:
    """Files named directly, plus image files found by walking folders (sorted; hidden
    entries and the ``exclude`` folder, the workspace itself, are not entered). Returns the
    files and the non-image files skipped in folders."""
    files: list[Path] = []
    skipped: list[str] = []
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
                skipped.append(str(found))
    return list(dict.fromkeys(files)), skipped


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


def _sanitised(reading: MetadataReading) -> MetadataReading:
    """Embedded text is what a tool wrote, not what a person typed: drop NUL characters
    (which PostgreSQL cannot store) instead of refusing the file."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "")
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return MetadataReading(
        reading.source, clean(reading.fields), clean(reading.settings), clean(reading.raw)
    )
