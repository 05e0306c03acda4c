"""Fingerprinting on a Dask cluster: the decode and model work of a reference set (or a
night's renders) spread over many machines while one process writes the records.

``connect`` gives a ``Cluster``: a client of the scheduler at ``tcp://HOST:PORT``, or of a
local cluster of ``workers`` processes started here and stopped after. Work goes out as
ordinary functions of this package (the workers must have the same version of provenance
installed: a worker whose detectors are not the caller's is refused by the caller), and
comes back as futures. Dask retries the tasks of a worker that dies on the others; Dask's
own dashboard (the scheduler's ``dashboard_link``) shows the progress.

Dask (``pip install "provenance[cluster]"``) is imported only when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from provenance.errors import ClusterUnavailable, InvalidInput

logger = logging.getLogger(__name__)

# How long to wait for a scheduler (and a local cluster's workers) to answer.
CONNECT_SECONDS = 10


@dataclass
class Cluster:
    """A connected Dask client, and how many worker processes it had when connected."""

    client: Any
    workers: int
    # Threads each worker's models may use (a local cluster shares this machine's cores).
    model_threads: int | None
    dashboard: str | None

    def submit(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` on a worker; a future (``.result()`` waits)."""
        # pure=False: the same arguments twice (a retry after a crash) are run again.
        return self.client.submit(function, *args, pure=False)


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Cluster]:
    """A client of the scheduler at ``scheduler`` (``tcp://HOST:PORT``), else of a local
    cluster of ``workers`` processes (one thread each) started now and stopped after."""
    if scheduler is None and (workers is None or workers < 1):
        raise InvalidInput("a cluster needs --scheduler tcp://HOST:PORT or --workers N (N >= 1)")
    if scheduler is not None and workers is not None:
        raise InvalidInput("give --scheduler or --workers, not both")
    try:
        import distributed
    except ImportError:
        raise ClusterUnavailable(
            'fingerprinting on a cluster needs Dask: pip install "provenance[cluster]"'
        ) from None
    # Dask logs every scheduler and worker start and stop at INFO: only its warnings show
    # (a worker lost, a task retried). Its dashboard shows the progress.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # Dask's constructors are untyped: held as Any.
    local_cluster: Any = distributed.LocalCluster
    client_of: Any = distributed.Client
    with contextlib.ExitStack() as stack:
        model_threads = None
        try:
            if scheduler is None:
                assert workers is not None
                local = stack.enter_context(
                    local_cluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        silence_logs=40,  # logging.ERROR: a retried task is not news
                    )
                )
                client = stack.enter_context(client_of(local, timeout=CONNECT_SECONDS))
                model_threads = max(1, (os.cpu_count() or 1) // workers)
            else:
                if not scheduler.startswith(("tcp://", "tls://")):
                    raise InvalidInput(f"--scheduler {scheduler!r} is not tcp://HOST:PORT")
                client = stack.enter_context(client_of(scheduler, timeout=CONNECT_SECONDS))
                client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            where = scheduler or f"a local cluster of {workers} workers"
            raise ClusterUnavailable(f"cannot reach {where}: {exc}") from None
        count = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        dashboard = getattr(client, "dashboard_link", None)
        logger.info("Dask cluster of %d workers; its dashboard: %s", count, dashboard)
        yield Cluster(client, count, model_threads, dashboard)


@contextlib.contextmanager
def maybe_connect(scheduler: str | None, workers: int | None) -> Iterator[Cluster | None]:
    """``connect``, when a scheduler or a number of workers is given; else None."""
    if scheduler is None and workers is None:
        yield None
        return
    with connect(scheduler, workers) as cluster:
        yield cluster


def missing_paths(paths: list[str]) -> list[str]:
    """Run on a worker: which of ``paths`` it cannot see."""
    return [path for path in paths if not os.path.exists(path)]


def require_paths(cluster: Cluster, paths: list[str], why: str) -> None:
    """Refuse a cluster any of whose workers cannot see one of ``paths`` (``why``: what
    needs them), naming how many workers and the first path missing. Workers that join
    later are not asked."""
    seen: dict[str, list[str]] = cluster.client.run(missing_paths, paths)
    lacking = {worker: missing for worker, missing in seen.items() if missing}
    if lacking:
        worker, missing = sorted(lacking.items())[0]
        raise ClusterUnavailable(
            f"{len(lacking)} of {len(seen)} cluster workers cannot see {missing[0]} "
            f"(worker {worker}); {why}"
        )
