"""Recording a check: one row with what ran, the candidates kept and the verdict, and its
audit event, in one transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from provenance.checking.context import SearchContext
from provenance.checking.findings import Findings
from provenance.db import audit, repository
from provenance.db.session import write_transaction
from provenance.db.tables import Check, Match, ReferenceItem, utcnow
from provenance.detectors.base import Detector
from provenance.errors import ProvenanceError
from provenance.export.documents import CHECK_SCHEMA_V2
from provenance.record_digests import check_digest
from provenance.scoring import kept_matches
from provenance.workspace import Workspace


@dataclass
class CheckResult:
    """A check just recorded; as JSON, ``provenance.check/2``. ``best_match`` names the
    strongest reference item, ``reasons`` the candidates that decided the verdict,
    ``matches`` every candidate kept, ``verifications`` the geometric verification of each
    candidate verified, ``verification`` the verifier's spec and rule (or why it could not
    run), ``priority`` how soon a reviewer should look (see the module's documentation)."""

    check_id: int
    asset_id: int
    created_at: dt.datetime
    verdict: str
    best_match: dict[str, Any] | None
    reasons: list[dict[str, Any]]
    context: list[dict[str, Any]]
    detectors: list[dict[str, Any]]
    reference_sets: list[dict[str, Any]]
    thresholds: dict[str, dict[str, Any]]
    matches: list[dict[str, Any]]
    verification: dict[str, Any] = field(default_factory=dict)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    priority: str | None = None
    # A movie or frame sequence: the frames looked at and the ranges that matched.
    frames: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        # The fields in their order; the time as ISO 8601 text where it stands.
        document = {"schema": CHECK_SCHEMA_V2, **dataclasses.asdict(self)}
        document["created_at"] = self.created_at.isoformat()
        if self.frames is None:
            del document["frames"]
        return document


def record(
    workspace: Workspace,
    asset_id: int,
    actor: str,
    findings: Findings,
    context: SearchContext,
    detectors: tuple[dict[str, Detector], dict[str, ProvenanceError]],
) -> CheckResult:
    """Record what a check of ``asset_id`` found (``findings``, made here or in a check
    worker) as a new check, with the sets of ``context`` and the problems met with them."""
    available, unavailable = detectors
    judgement, candidates, bands = findings.judgement, findings.candidates, findings.bands
    verification, verifications = findings.verification, findings.verifications
    kept = kept_matches(candidates, bands)
    verifications_json = [v.to_json() for v in verifications]
    detectors_json = [
        {"name": name, "status": "ran", "spec": detector.spec.to_json()}
        for name, detector in available.items()
    ] + [
        {"name": name, "status": "unavailable", "reason": str(exc)}
        for name, exc in unavailable.items()
    ]
    sets_json = [
        {
            "name": s["name"],
            "rights_status": s["rights_status"],
            "indexes": findings.indexes.get(s["name"], {}),
            "problems": _merged(context.problems, findings.problems, s["name"]),
        }
        for s in context.sets
    ]
    reasons = [reason.to_json() for reason in judgement.reasons]
    context_json = [
        {"reference_set": j.reference_set, "item_id": j.item_id, "verdict": j.verdict.value}
        for j in judgement.context
    ]
    created_at = utcnow()
    with write_transaction(workspace.engine) as session:
        status_before = repository.asset_state(session, asset_id).status
        check = Check(
            asset_id=asset_id,
            created_at=created_at,
            actor=actor,
            verdict=judgement.verdict.value,
            detectors={"detectors": detectors_json, "verification": verification},
            thresholds={name: b.to_json() for name, b in bands.items()},
            reference_sets={"reference_sets": sets_json},
            reasons={
                "reasons": reasons,
                "context": context_json,
                "verifications": verifications_json,
                "priority": judgement.priority,
                **({"frames": findings.frames} if findings.frames is not None else {}),
            },
        )
        session.add(check)
        session.flush()
        added = [
            Match(
                check_id=check.id,
                reference_item_id=candidate.item_id,
                detector=candidate.detector,
                region=candidate.region,
                score=candidate.score,
                rank=rank,
                frame=candidate.frame,
            )
            for rank, candidate in kept
        ]
        session.add_all(added)
        best_json = None
        if judgement.best is not None:
            item = session.get(ReferenceItem, judgement.best.item_id)
            if item is not None:
                best_json = {
                    "reference_set": judgement.best.reference_set,
                    "item_id": item.id,
                    "sha256": item.sha256,
                    "source_path": item.source_path,
                    "attribution": item.attribution,
                    "verdict": judgement.best.verdict.value,
                }
        session.flush()
        after = repository.settle_state(session, asset_id)
        audit.append_event(
            session,
            actor=actor,
            action="asset.checked",
            subject=f"asset:{asset_id}",
            payload={
                "check_id": check.id,
                "verdict": judgement.verdict.value,
                "best_item": best_json["item_id"] if best_json else None,
                "unavailable": sorted(unavailable),
                # A changed verdict reopens review (or clears the asset): the transition.
                "status_before": status_before,
                "status_after": after.status,
                "reopened": after.reopened,
                "record_sha256": check_digest(check, added),
            },
        )
        check_id = check.id
    return CheckResult(
        check_id=check_id,
        asset_id=asset_id,
        created_at=created_at,
        verdict=judgement.verdict.value,
        best_match=best_json,
        reasons=reasons,
        context=context_json,
        detectors=detectors_json,
        reference_sets=sets_json,
        thresholds={name: b.to_json() for name, b in bands.items()},
        matches=[
            {
                "reference_set": c.reference_set,
                "item_id": c.item_id,
                "detector": c.detector,
                "region": c.region,
                "score": round(c.score, 6),
                "rank": rank,
                **({"frame": c.frame} if c.frame is not None else {}),
            }
            for rank, c in kept
        ],
        verification=verification,
        verifications=verifications_json,
        priority=judgement.priority,
        frames=findings.frames,
    )


def _merged(ours: dict[str, list[str]], theirs: dict[str, list[str]], name: str) -> list[str]:
    """Set ``name``'s problems met by this process, then those only a worker met."""
    problems = list(ours.get(name, []))
    return problems + [p for p in theirs.get(name, []) if p not in problems]
