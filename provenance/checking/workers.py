"""Checks found in worker processes while this process records them.

A check's finding (decoding the stored picture, the model passes, index searches, local
features and their matching) is independent from one asset to the next and takes nearly all
of its time; recording it is one short transaction. With several workers, each process opens
the workspace with the parent's settings, loads the indexes its parent prepared (rebuilt
first when stale) and runs its models on one thread, so the processes share the cores
instead of each fighting for all of them. Results come back in the assets' order and are
recorded here, one check per transaction, exactly as a check in one process records them.

On a Dask cluster (``findings_of(cluster=)``), each worker opens the workspace at the
caller's path (a shared file system: the store, the indexes and the database reachable as
here) once per run, loads the indexes the caller loaded, and finds one asset per task.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.checking.context import SearchContext, prepare
from provenance.checking.findings import Findings, find
from provenance.cluster import Cluster
from provenance.config import Settings
from provenance.db.session import one_line
from provenance.detectors.base import Detector
from provenance.errors import ProvenanceError
from provenance.processes import one_thread_each, worker_pool
from provenance.workspace import Workspace

logger = logging.getLogger(__name__)

# Check workers give their first result about 1.5 s after they are started (imports, the
# model's session, the indexes), then find 1.2-1.3 times as many checks per second as one
# process on two cores (64 assets against 3,000 references): below this many assets, one
# process finishes first.
AUTO_WORKERS_MIN_ASSETS = 32
BROKEN_POOL = "a check worker stopped; the remaining checks run in the recording process"


@dataclass(frozen=True)
class Failed:
    """Why an asset's matches could not be found, as the line a user reads."""

    error: str


# One worker process's workspace, detectors and indexes (set by _start).
_worker: dict[str, Any] = {}


def _opened(
    root: str, settings: Settings, *, one_thread: bool
) -> tuple[Workspace, dict[str, Detector], SearchContext]:
    """A worker's workspace, detectors and indexes (loaded as its parent prepared them);
    ``one_thread``: its models, local features and maths libraries on one thread each."""
    workspace = Workspace.in_worker(Path(root), settings)
    available, _ = workspace.split_detectors()
    verifier = workspace.verifier()
    if one_thread and verifier is not None and not isinstance(verifier, ProvenanceError):
        verifier.cv2.setNumThreads(1)
    context = prepare(workspace, available, actor="", rebuild=False)
    if one_thread:
        one_thread_each()  # once the indexes' libraries are loaded too
    return workspace, available, context


def _start(root: str, settings: Settings) -> None:
    workspace, available, context = _opened(root, settings, one_thread=True)
    _worker.update(workspace=workspace, available=available, context=context)


def _find(asset_id: int) -> Findings | Failed:
    # Failures come back as text: not every exception pickles.
    return _found_here(_worker["workspace"], _worker["context"], _worker["available"], asset_id)


def findings_of(
    workspace: Workspace,
    context: SearchContext,
    available: dict[str, Detector],
    asset_ids: list[int],
    workers: int,
    cluster: Cluster | None = None,
) -> Iterator[tuple[int, Findings | Failed]]:
    """Each asset's findings (or why there are none), in ``asset_ids``' order: found by
    ``workers`` processes, a bounded window ahead of the caller, when ``workers`` > 1, or
    by ``cluster``'s workers; else here. Should the pool break (a worker killed), the rest
    are found here."""
    if cluster is not None:
        yield from _found_on(cluster, workspace, context, available, asset_ids)
        return
    if workers <= 1:
        for asset_id in asset_ids:
            yield asset_id, _found_here(workspace, context, available, asset_id)
        return
    pool = worker_pool(workers, _start, (str(workspace.root), workspace.settings))
    try:
        window: deque[tuple[int, Future[Findings | Failed]]] = deque()
        queue = iter(asset_ids)
        broken = False
        while True:
            while not broken and len(window) < 2 * workers:
                following = next(queue, None)
                if following is None:
                    break
                window.append((following, pool.submit(_find, following)))
            if not window:
                break
            asset_id, future = window.popleft()
            try:
                outcome = future.result()
            except BrokenProcessPool:
                broken = True
                logger.warning(BROKEN_POOL)
                outcome = _found_here(workspace, context, available, asset_id)
            yield asset_id, outcome
        for asset_id in queue:
            yield asset_id, _found_here(workspace, context, available, asset_id)
    finally:
        pool.shutdown(cancel_futures=True)


def _found_here(
    workspace: Workspace, context: SearchContext, available: dict[str, Detector], asset_id: int
) -> Findings | Failed:
    try:
        return find(workspace, context, available, asset_id)
    except ProvenanceError as exc:
        return Failed(str(exc))
    except Exception as exc:  # one asset's bug must not end the others' checks
        logger.debug("finding matches of asset %s failed", asset_id, exc_info=exc)
        return Failed(one_line(exc))


def indexes_key(context: SearchContext) -> str:
    """What names the indexes a run searches: a cluster's worker must search the same."""
    return json.dumps(
        sorted(
            [name, detector, index.vectors_sha256, index.ids_sha256 or "", index.count]
            for (name, detector), index in context.indexes.items()
        )
    )


# Per Dask worker process: the workspace, detectors and indexes of the run it serves.
_on_cluster: dict[str, tuple[Workspace, dict[str, Detector], SearchContext]] = {}


def find_on_worker(
    root: str, settings: Settings, model_threads: int | None, indexes: str, asset_id: int
) -> Findings | Failed | None:
    """Run on a Dask worker: ``asset_id``'s findings, by the code a check worker runs.
    The workspace at ``root`` is opened, and its indexes loaded, once per run (``indexes``:
    the caller's ``indexes_key``); a worker that loaded other indexes (a set changed in
    between) searches nothing and answers None: the caller finds that asset itself."""
    key = json.dumps([root, dict(settings), model_threads, indexes], sort_keys=True, default=str)
    if key not in _on_cluster:
        # One run's workspace and indexes at a time: indexes can be large.
        for opened, _, _ in _on_cluster.values():
            opened.close()
        _on_cluster.clear()
        # One thread each on a local cluster of a worker per core.
        _on_cluster[key] = _opened(root, settings, one_thread=model_threads == 1)
    workspace, available, context = _on_cluster[key]
    if indexes_key(context) != indexes:
        return None
    return _found_here(workspace, context, available, asset_id)


def _found_on(
    cluster: Cluster,
    workspace: Workspace,
    context: SearchContext,
    available: dict[str, Detector],
    asset_ids: list[int],
) -> Iterator[tuple[int, Findings | Failed]]:
    """``findings_of`` on a Dask cluster: a window of two tasks per worker ahead of the
    caller. Dask runs a dead worker's tasks again elsewhere; an asset whose task failed
    on every worker it was given, or whose worker loaded other indexes, is found here."""
    indexes = indexes_key(context)
    window: deque[tuple[int, Any]] = deque()
    queue = iter(asset_ids)

    def send() -> None:
        while len(window) < 2 * max(1, cluster.workers):
            following = next(queue, None)
            if following is None:
                return
            future = cluster.submit(
                find_on_worker, str(workspace.root), workspace.settings,
                cluster.model_threads, indexes, following,
            )  # fmt: skip
            window.append((following, future))

    send()
    while window:
        asset_id, future = window.popleft()
        try:
            outcome = future.result()
        except Exception as exc:  # Dask's KilledWorker, or a worker's bug
            logger.warning("asset %s: the cluster could not check it (%s); checking it here",
                           asset_id, one_line(exc))  # fmt: skip
            outcome = None
        if outcome is None:
            outcome = _found_here(workspace, context, available, asset_id)
        yield asset_id, outcome
        send()
