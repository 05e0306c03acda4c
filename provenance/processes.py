"""Worker process pools that do not outlive the process that started them.

Registration fingerprints files, and checks find matches, in such pools while one process
writes the records. Workers are started by a fork server (else spawned), never forked from
the parent: they must not inherit its database connections or its model sessions' threads.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

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


def worker_count(wanted: int, items: int, auto_min: int) -> int:
    """Worker processes for ``items`` pieces of work: ``wanted`` when positive (at most one
    per item); when 0 (automatic), one per core, but only from ``auto_min`` items, below
    which starting the processes costs more than they save, and at most one per half of
    ``auto_min``."""
    if wanted > 0:
        return max(1, min(wanted, items))
    if items < auto_min:
        return 1
    return max(1, min(os.cpu_count() or 1, items // (auto_min // 2)))


def one_thread_each() -> None:
    """Worker initializer part: the maths libraries loaded in this process (numpy's BLAS,
    OpenMP) run on one thread each. Workers share the cores, and a library's idle threads
    spin-waiting in every worker take them from the others' work."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # kept for the worker's life


def _start(parent_pid: int, initializer: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*args)


def worker_pool(
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, each running ``initializer(*initargs)`` first."""
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_start,
        initargs=(os.getpid(), initializer, initargs),
    )


def settle_long_lived() -> None:
    """For a process that serves requests for hours (``provenance serve``): what it has
    loaded by now (modules, the ORM's mappers, templates) is collected once, then kept out
    of the cyclic garbage collector's sight (``gc.freeze``), so that a full collection
    walks only what requests made since. Without it, a full collection every few hundred
    requests walked everything, about 20 ms, and was the queue page's slowest response."""
    gc.collect()
    gc.freeze()
