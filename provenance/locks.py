"""Advisory file locks between processes sharing a workspace folder.

A reference set's items and its index files change together: ``refs add``, ``add-items``,
``rebuild`` and a check that rebuilds a stale index hold the set's lock, so two of them
never interleave their writes. The lock is ``flock`` on ``locks/refset-<name>.lock``: the
kernel releases it when its holder exits, even by kill -9, so a crash never leaves a set
locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provenance.errors import StoreError


class SetBusy(StoreError):
    """Another process holds the reference set's lock."""


@contextmanager
def reference_set_lock(root: Path, name: str, *, wait: bool = True) -> Iterator[None]:
    """Hold the lock of reference set ``name``: wait while another process holds it, or
    with ``wait=False`` raise SetBusy at once."""
    folder = root / "locks"
    try:
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / f"refset-{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot lock reference set {name!r}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise SetBusy(f"reference set {name!r} is being changed by another process") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock
