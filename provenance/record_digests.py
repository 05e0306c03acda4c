"""The digests that audit events hold of checks, decisions, consents, approvals and
withdrawals, and their verification.

Every write since row coverage is vouched for by ``row_audit`` as well; these per-record
digests are what events written before it hold, so ``audit verify`` still checks them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db import audit
from provenance.db.tables import Approval, Check, Consent, Match, Review, Withdrawal
from provenance.export.documents import approval_json, consent_json, withdrawal_record

WITHDRAWABLE = ("consent", "approval")


def check_digest(check: Check, matches: list[Match]) -> str:
    """The sha256 of a check row and its matches: what its audit event vouches for."""
    return audit.record_digest(
        {
            "check_id": check.id,
            "asset_id": check.asset_id,
            "created_at": check.created_at.isoformat(timespec="microseconds"),
            "actor": check.actor,
            "verdict": check.verdict,
            "detectors": check.detectors,
            "thresholds": check.thresholds,
            "reference_sets": check.reference_sets,
            "reasons": check.reasons,
            "matches": [
                # A frame only where there is one: checks of stills keep their digests.
                [m.reference_item_id, m.detector, m.region, round(m.score, 6), m.rank]
                + ([m.frame] if m.frame is not None else [])
                for m in sorted(matches, key=lambda m: m.id)
            ],
        }
    )


def verify_checks(session: Any) -> tuple[int | None, str] | None:
    """Every check row (and its matches) against the audit event that recorded it."""
    grouped: dict[int, list[Match]] = {}
    for match in session.scalars(select(Match).order_by(Match.id)).yield_per(5000):
        grouped.setdefault(match.check_id, []).append(match)
    checks = session.scalars(select(Check).order_by(Check.id)).yield_per(1000)
    return audit.verify_records(
        session,
        action="asset.checked",
        key="check_id",
        noun="check",
        digests=((c.id, check_digest(c, grouped.get(c.id, []))) for c in checks),
    )


# The fields of a decision row its audit event vouches for.
_RECORD_FIELDS = (
    "id",
    "asset_id",
    "seq",
    "check_id",
    "check_verdict",
    "decision",
    "outcome",
    "rationale",
    "decided_by",
    "role",
    "previous_id",
)


def decision_digest(review: Review) -> str:
    """The sha256 of a decision row's canonical form (including its evidence)."""
    body = {name: getattr(review, name) for name in _RECORD_FIELDS}
    body["decided_at"] = review.decided_at.isoformat(timespec="microseconds")
    body["evidence"] = review.evidence
    return audit.record_digest(body)


def verify_decisions(session: Session) -> tuple[int | None, str] | None:
    """Check every decision row against the audit event that recorded it; the first
    mismatch as (event id, message), or None when all agree."""
    rows = session.scalars(select(Review).order_by(Review.id)).yield_per(1000)
    return audit.verify_records(
        session,
        action="review.decided",
        key="review_id",
        noun="decision",
        digests=((review.id, decision_digest(review)) for review in rows),
    )


def verify_clearance_records(session: Session) -> tuple[int | None, str] | None:
    """Consents, approvals and withdrawals against the audit events that recorded them."""
    consents = session.scalars(select(Consent).order_by(Consent.id)).all()
    problem = audit.verify_records(
        session,
        action="consent.recorded",
        key="consent_id",
        noun="consent",
        digests=((c.id, audit.record_digest(consent_json(c, withdrawn=None))) for c in consents),
    )
    if problem is not None:
        return problem
    approvals = session.scalars(select(Approval).order_by(Approval.id)).all()
    problem = audit.verify_records(
        session,
        action="approval.recorded",
        key="approval_id",
        noun="approval",
        digests=((a.id, audit.record_digest(approval_json(a, withdrawn=None))) for a in approvals),
    )
    if problem is not None:
        return problem
    for kind in WITHDRAWABLE:
        rows = session.scalars(
            select(Withdrawal).where(Withdrawal.subject_kind == kind).order_by(Withdrawal.id)
        ).all()
        problem = audit.verify_records(
            session,
            action=f"{kind}.withdrawn",
            key="withdrawal_id",
            noun=f"{kind} withdrawal",
            digests=((w.id, audit.record_digest(withdrawal_record(w))) for w in rows),
        )
        if problem is not None:
            return problem
    return None
