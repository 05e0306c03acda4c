"""Checking an asset against every active reference set.

For each configured detector: embed the asset (the whole picture, then its regions unless
the whole picture is already high: ``detectors.regions``), search each set's index, verify
the strongest candidates geometrically (``detectors.geometric``) and judge (``scoring``).
The check records what ran (specs, rule, thresholds, indexes), every candidate kept, every
verification and the verdict with its reasons; a re-check is a new row.

JSON output, schema ``provenance.check/2`` (``/1`` lacks the last three keys)::

    {"schema": "provenance.check/2", "check_id": 3, "asset_id": 42, "created_at": "...",
     "verdict": "clear" | "review" | "high",
     "best_match": {"reference_set", "item_id", "sha256", "source_path", "attribution",
                    "verdict"} | null,
     "reasons": [{"detector", "reference_set", "item_id", "region", "score", "verdict",
                  "thresholds": {"review", "high", "higher_is_closer"}}],
     "context": [{"reference_set", "item_id", "verdict"}],
     "detectors": [{"name", "status": "ran" | "unavailable", "spec" | "reason"}],
     "reference_sets": [{"name", "rights_status", "indexes": {detector: {"count",
                         "vectors_sha256"}}, "problems": [text]}],
     "thresholds": {detector: {...}},
     "matches": [{"reference_set", "item_id", "detector", "region", "score", "rank"}],
     "verification": {"status": "ran", "spec", "rule": {"min_inliers", "min_coverage",
                      "unverified_review"}} | {"status": "unavailable", "reason"}
                     | {"status": "off"},
     "verifications": [{"reference_set", "item_id", "verified", "inliers", "matches",
                        "inlier_ratio", "mirrored", "transform" (3x3, row by row, reference
                        fractions to asset fractions), "asset_polygon", "reference_polygon"
                        ([[x, y]] in fractions), "asset_coverage", "reference_coverage",
                        "note", "summary"}],
     "priority": "normal" | "low" | null,
     "frames": {"kind": "movie" | "sequence", "frame_rate", "sampled": [frame],
                "shot_starts": [frame], "ranges": [{"reference_set", "item_id", "verdict",
                "first", "last", "strongest_frame", "detector", "score"}]}}

``frames`` is there only for a movie or frame sequence, whose matches, reasons and
verifications then carry the ``frame`` they were found in (``checking.findings``).
A ``geometry`` match or reason scores the inliers of a decisive verification; a reason may
carry ``"unverified": true`` (a review-band score that counts as clear, see scoring).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provenance.checking import workers
from provenance.checking.context import SearchContext, prepare
from provenance.checking.findings import (
    Findings,
    asset_vectors,
    find,
    geometry_rule,
    search,
    thresholds_from,
    verify,
)
from provenance.checking.record import CheckResult, record
from provenance.cluster import Cluster
from provenance.db import repository
from provenance.db.session import one_line, read_session
from provenance.errors import NotFound, ProvenanceError
from provenance.export.documents import stored_check_json
from provenance.processes import worker_count
from provenance.workspace import Workspace

__all__ = [
    "CheckResult",
    "Findings",
    "PendingOutcome",
    "SearchContext",
    "asset_checks",
    "asset_vectors",
    "check",
    "check_asset",
    "check_pending",
    "geometry_rule",
    "has_reference_sets",
    "prepare",
    "search",
    "thresholds_from",
    "verify",
]

logger = logging.getLogger(__name__)


@dataclass
class PendingOutcome:
    """Checks of assets that were waiting for one: each check by asset id, and the
    error of each asset whose check failed."""

    checks: dict[int, CheckResult] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.check-pending/1",
            "checked": len(self.checks),
            "checks": [check.to_json() for check in self.checks.values()],
            "failed": [{"asset_id": k, "error": v} for k, v in sorted(self.failed.items())],
        }


def check_asset(
    workspace: Workspace, asset_id: int, *, actor: str, context: SearchContext | None = None
) -> CheckResult:
    """Check one asset, record the check, and return it."""
    available, unavailable = workspace.split_detectors()
    if context is None:
        context = prepare(workspace, available, actor=actor)
    findings = find(workspace, context, available, asset_id)
    return record(workspace, asset_id, actor, findings, context, (available, unavailable))


def has_reference_sets(workspace: Workspace) -> bool:
    with read_session(workspace.engine) as session:
        return repository.active_reference_set_count(session) > 0


def check(workspace: Workspace, refs: Iterable[str], *, by: str | None = None) -> list[CheckResult]:
    """Check the named assets against every active reference set; one new check each."""
    with read_session(workspace.engine) as session:
        ids = [repository.find_asset(session, ref).id for ref in refs]
    if not has_reference_sets(workspace):
        raise NotFound("there are no reference sets to check against; add one with refs add")
    actor = workspace.actor(by)
    available, _ = workspace.split_detectors()
    context = prepare(workspace, available, actor=actor)
    return [check_asset(workspace, asset_id, actor=actor, context=context) for asset_id in ids]


def check_pending(
    workspace: Workspace,
    *,
    by: str | None = None,
    jobs: int | None = None,
    cluster: Cluster | None = None,
) -> PendingOutcome:
    """Check every asset that has no check yet; a check that fails is named with its
    error and the others go on. Nothing waits while there is no reference set.

    ``jobs``: processes finding the checks' matches while this one records them (default:
    the ``jobs`` setting; 0: automatic, see ``processes.worker_count``); ``cluster``: a
    Dask cluster's workers find them instead (``workers.findings_of``)."""
    outcome = PendingOutcome()
    if not has_reference_sets(workspace):
        return outcome
    with read_session(workspace.engine) as session:
        ids = repository.unchecked_asset_ids(session)
    if not ids:
        return outcome
    actor = workspace.actor(by)
    available, unavailable = workspace.split_detectors()
    context = prepare(workspace, available, actor=actor)
    count = worker_count(
        workspace.settings["jobs"] if jobs is None else jobs,
        len(ids),
        workers.AUTO_WORKERS_MIN_ASSETS,
    )
    found_all = workers.findings_of(workspace, context, available, ids, count, cluster)
    for asset_id, found in found_all:
        if isinstance(found, workers.Failed):
            outcome.failed[asset_id] = found.error
            continue
        try:
            outcome.checks[asset_id] = record(
                workspace, asset_id, actor, found, context, (available, unavailable)
            )
        except ProvenanceError as exc:
            outcome.failed[asset_id] = str(exc)
        except Exception as exc:  # the asset is recorded; say the check failed, go on
            logger.debug("recording the check of asset %s failed", asset_id, exc_info=exc)
            outcome.failed[asset_id] = one_line(exc)
    return outcome


def asset_checks(workspace: Workspace, ref: str) -> list[dict[str, Any]]:
    """Every check of the asset, oldest first, with its matches in full."""
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        return [stored_check_json(session, check) for check in asset.checks]
