"""Writing a file so that readers see the old content or the new, never a part.

The bytes go to a temporary file in the target's folder, are flushed to disk, and the file
is renamed over the target; then the folder itself is flushed so the rename survives a
crash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(target: Path, data: bytes, *, read_only: bool = False) -> None:
    """Replace ``target`` with ``data`` atomically. Raises OSError."""
    _replace(target, lambda handle: handle.write(data), read_only)


def copy_atomically(
    target: Path, source: Path, *, read_only: bool = False, chunk: int = 1 << 20
) -> str:
    """Replace ``target`` with a copy of ``source``, made in chunks (a file of any size
    costs one chunk of memory), atomically; returns the sha256 of what was copied.
    Raises OSError."""
    digest = hashlib.sha256()

    def copy(handle: BinaryIO) -> None:
        with source.open("rb") as reading:
            while block := reading.read(chunk):
                digest.update(block)
                handle.write(block)

    _replace(target, copy, read_only)
    return digest.hexdigest()


def _replace(target: Path, write: Callable[[BinaryIO], object], read_only: bool) -> None:
    """Write a temporary file beside ``target`` with ``write``, make it durable, and
    rename it over ``target``; the folder is made durable too."""
    fd, temporary = _temporary_file(target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if read_only:
            os.chmod(temporary, 0o444)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_file(folder: Path) -> tuple[int, str]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return tempfile.mkstemp(prefix=".incoming-", dir=folder)
    except FileNotFoundError:
        # A concurrent cleanup removed the emptied folder between mkdir and mkstemp.
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=".incoming-", dir=folder)
