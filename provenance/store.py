"""Content-addressed copies of registered files: ``store/ab/<sha256>``.

Files are written atomically (temporary file in the same folder, fsync, rename, fsync of
the folder), so a crash never leaves a half-written blob under a real name, and two
processes storing the same bytes at once both end with one correct file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from provenance.atomic import copy_atomically, write_atomically
from provenance.errors import StoreError

_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class ContentStore:
    """A folder of files named by the sha256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise StoreError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def relative_path(self, sha256: str) -> str:
        return self.path_for(sha256).relative_to(self.root.parent).as_posix()

    def contains(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put(self, data: bytes, sha256: str | None = None) -> bool:
        """Store ``data``; return True when this call created the file."""
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and sha256 != digest:
            raise StoreError("content does not match its sha256")
        target = self.path_for(digest)
        if target.is_file():
            # Fresh again: `store gc` leaves young blobs alone, and this one is about to be
            # recorded (it may be an orphan left by an earlier failure).
            with contextlib.suppress(OSError):
                os.utime(target)
            return False
        try:
            write_atomically(target, data, read_only=True)
        except OSError as exc:
            raise StoreError(f"cannot write to the content store: {exc.strerror}") from None
        return True

    def put_file(self, source: Path, sha256: str) -> bool:
        """Store a copy of file ``source`` whose bytes have ``sha256``, streamed (a movie of
        any size costs one chunk of memory); True when this call created the blob. The copy
        is checked against ``sha256`` as it is made: a file that changed is refused."""
        target = self.path_for(sha256)
        if target.is_file():
            with contextlib.suppress(OSError):
                os.utime(target)
            return False
        try:
            copied = copy_atomically(target, source, read_only=True)
        except OSError as exc:
            raise StoreError(f"cannot write to the content store: {exc.strerror}") from None
        if copied != sha256:
            self.remove(sha256)
            raise StoreError("the file changed while it was being stored")
        return True

    def remove(self, sha256: str) -> None:
        """Remove a blob (used only to undo a store write whose record was not committed),
        and its folder when that leaves it empty."""
        path = self.path_for(sha256)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty, or already gone
            path.parent.rmdir()

    def read(self, sha256: str) -> bytes:
        try:
            data = self.path_for(sha256).read_bytes()
        except OSError as exc:
            raise StoreError(f"stored file {sha256[:12]} cannot be read: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"stored file {sha256[:12]} is corrupt: its content changed")
        return data

    def blobs(self) -> Iterator[tuple[str, float]]:
        """Every blob's sha256 and modification time."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/*"):
            if _SHA256.match(path.name):
                with contextlib.suppress(OSError):  # removed meanwhile
                    yield path.name, path.stat().st_mtime

    def count(self) -> int:
        """How many blobs the store holds."""
        if not self.root.is_dir():
            return 0
        return sum(1 for path in self.root.glob("??/*") if _SHA256.match(path.name))
