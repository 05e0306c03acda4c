"""JSON documents of stored records: decisions, checks, consents, approvals, revisions and
withdrawals, each made from its database row as the use cases and exports hand it over."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from provenance.db import repository
from provenance.db.tables import (
    Approval,
    Asset,
    Check,
    Consent,
    ReferenceSet,
    Review,
    Revision,
    Withdrawal,
)
from provenance.domain import Decision, ReferenceItemInfo, ReferenceSetInfo
from provenance.review_rules import status_of

CHECK_SCHEMA = "provenance.check/1"
# Checks since geometric verification: /1 plus verification, verifications and priority.
CHECK_SCHEMA_V2 = "provenance.check/2"


def decision_of(review: Review) -> Decision:
    """A stored decision row as the value the use cases hand over (its columns are the
    value's fields, the row's id its ``review_id``)."""
    values = {f.name: getattr(review, f.name) for f in fields(Decision) if f.name != "review_id"}
    return Decision(review_id=review.id, **values)


def review_json(review: Review) -> dict[str, Any]:
    return decision_of(review).to_json()


def review_summary(asset: Asset) -> dict[str, Any]:
    """The asset's status and decision history, for the asset's JSON record."""
    check = asset.checks[-1] if asset.checks else None
    last = asset.reviews[-1] if asset.reviews else None
    state = status_of(check.verdict if check else None, check.id if check else None, last)
    return {
        "status": state.status,
        "reopened": state.reopened,
        "latest_decision_id": state.last_review_id,
        "decisions": [
            {key: value for key, value in review_json(r).items() if key != "schema"}
            for r in asset.reviews
        ],
    }


def stored_check_json(session: Any, check: Check) -> dict[str, Any]:
    """A recorded check as JSON (``provenance.check/2`` without ``best_match``; ``/1`` for
    checks recorded before verification), each match with its reference item's identity and
    its set's rights status."""
    rows = repository.check_matches(session, check.id)
    document = {
        "schema": CHECK_SCHEMA_V2 if "verifications" in check.reasons else CHECK_SCHEMA,
        "check_id": check.id,
        "asset_id": check.asset_id,
        "created_at": check.created_at.isoformat(),
        "actor": check.actor,
        "verdict": check.verdict,
        "reasons": check.reasons.get("reasons", []),
        "context": check.reasons.get("context", []),
        "detectors": check.detectors.get("detectors", []),
        "reference_sets": check.reference_sets.get("reference_sets", []),
        "thresholds": check.thresholds,
        "matches": [repository.match_json(row) for row in rows],
    }
    if "verifications" in check.reasons:
        document["verification"] = check.detectors.get("verification", {})
        document["verifications"] = check.reasons["verifications"]
        document["priority"] = check.reasons.get("priority")
    if "frames" in check.reasons:
        document["frames"] = check.reasons["frames"]
    return document


def consent_json(row: Consent, *, withdrawn: Withdrawal | None) -> dict[str, Any]:
    return {
        "consent_id": row.id,
        "talent": row.talent,
        "scope": row.scope,
        "production": row.production.name if row.production else None,
        "document_sha256": row.document_sha256,
        "document_name": row.document_name,
        "expires": row.expires.isoformat(),
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
        "withdrawn": _withdrawal_json(withdrawn),
    }


def approval_json(row: Approval, *, withdrawn: Withdrawal | None) -> dict[str, Any]:
    return {
        "approval_id": row.id,
        "asset_id": row.asset_id,
        "approver": row.approver,
        "reference": row.reference,
        "document_sha256": row.document_sha256,
        "document_name": row.document_name,
        "covers": list(row.covers.get("triggers", [])),
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
        "withdrawn": _withdrawal_json(withdrawn),
        # Only when known: the digests of approvals recorded before 0006 stay as they were.
        **({"check_id": row.check_id} if row.check_id is not None else {}),
    }


def revision_json(row: Revision) -> dict[str, Any]:
    return {
        "revision_id": row.id,
        "asset_id": row.asset_id,
        "revised_by": row.revised_by,
        "how": row.how,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
    }


def _withdrawal_json(row: Withdrawal | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "reason": row.reason,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
    }


def withdrawal_record(row: Withdrawal) -> dict[str, Any]:
    return {
        "withdrawal_id": row.id,
        "subject_kind": row.subject_kind,
        "subject_id": row.subject_id,
        **(_withdrawal_json(row) or {}),
    }


def set_info(reference_set: ReferenceSet, *, with_items: bool) -> ReferenceSetInfo:
    """A stored reference set as the value the use cases hand over."""
    items = None
    if with_items:
        items = [
            ReferenceItemInfo(item.id, item.sha256, item.source_path, item.attribution)
            for item in reference_set.items
        ]
    return ReferenceSetInfo(
        name=reference_set.name,
        description=reference_set.description,
        rights_status=reference_set.rights_status,
        rights_holder=reference_set.rights_holder,
        source=reference_set.source,
        created_at=reference_set.created_at,
        items=len(reference_set.items),
        item_list=items,
    )
