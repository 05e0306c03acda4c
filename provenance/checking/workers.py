"""Checks found in worker processes while this process records them.

A check's finding (decoding the stored picture, the model passes, index searches, local
features and their matching) is independent from one asset to the next and takes nearly all
of its time; recording it is one short transaction. With several workers, each process opens
the workspace with the parent's settings, loads the indexes its parent prepared (rebuilt
first when stale) and runs its models on one thread, so the processes share the cores
instead of each fighting for all of them. Results come back in the assets' order and are
recorded here, one check per transaction, exactly as a check in one process records them.
"""

from __future__ import annotations

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


def _start(root: str, settings: Settings) -> None:
    workspace = Workspace.in_worker(Path(root), settings)
    available, _ = workspace.split_detectors()
    verifier = workspace.verifier()
    if verifier is not None and not isinstance(verifier, ProvenanceError):
        verifier.cv2.setNumThreads(1)
    _worker.update(
        workspace=workspace,
        available=available,
        context=prepare(workspace, available, actor="", rebuild=False),
    )
    one_thread_each()  # once the indexes' libraries are loaded too


def _find(asset_id: int) -> Findings | Failed:
    # Failures come back as text: not every exception pickles.
    return _found_here(_worker["workspace"], _worker["context"], _worker["available"], asset_id)


def findings_of(
    workspace: Workspace,
    context: SearchContext,
    available: dict[str, Detector],
    asset_ids: list[int],
    workers: int,
) -> Iterator[tuple[int, Findings | Failed]]:
    """Each asset's findings (or why there are none), in ``asset_ids``' order: found by
    ``workers`` processes, a bounded window ahead of the caller, when ``workers`` > 1;
    else here. Should the pool break (a worker killed), the rest are found here."""
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
