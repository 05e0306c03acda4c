"""The review state machine: the statuses an asset moves through and who may decide what.

Pure rules, no database: ``provenance.reviews`` records decisions by them, the queue and the
asset documents report the status they give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from provenance.errors import AccessDenied, Conflict, InvalidInput
from provenance.scoring import Thresholds

DECISIONS = ("approve", "reject", "needs-changes", "escalate")
# The status each role's decision leads to.
_OUTCOMES = {
    "reviewer": {
        "approve": "approved",
        "reject": "rejected",
        "needs-changes": "needs_changes",
        "escalate": "escalated",
    },
    "legal": {"approve": "legal_approved", "reject": "legal_rejected"},
}
# The statuses from which each role may decide (a standing decision is superseded).
_DECIDES_FROM = {
    "reviewer": frozenset({"flagged", "approved", "rejected", "needs_changes"}),
    "legal": frozenset({"escalated", "legal_approved", "legal_rejected"}),
}
STATUSES = (
    "registered",
    "clear",
    "flagged",
    "approved",
    "rejected",
    "needs_changes",
    "escalated",
    "legal_approved",
    "legal_rejected",
)
# Statuses waiting for someone: the queue.
OPEN_STATUSES = ("flagged", "escalated")
RATIONALE_MAX = 10_000


@dataclass(frozen=True)
class ReviewState:
    """An asset's status, and the facts it follows from."""

    status: str
    reopened: bool
    check_id: int | None
    verdict: str | None
    last_review_id: int | None
    last_seq: int


class Decision(Protocol):
    """What the rules need of the newest decision (a stored review row)."""

    @property
    def id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def check_verdict(self) -> str: ...
    @property
    def outcome(self) -> str: ...


def status_of(verdict: str | None, check_id: int | None, last: Decision | None) -> ReviewState:
    """The review status given the newest check's verdict and the newest decision."""
    last_id = last.id if last is not None else None
    last_seq = last.seq if last is not None else 0
    if verdict is None:
        return ReviewState("registered", False, None, None, last_id, last_seq)
    if last is not None and last.check_verdict == verdict:
        return ReviewState(last.outcome, False, check_id, verdict, last_id, last_seq)
    if verdict == "clear":
        return ReviewState("clear", False, check_id, verdict, last_id, last_seq)
    return ReviewState("flagged", last is not None, check_id, verdict, last_id, last_seq)


def queue_keys(verdict: str | None, reasons: dict[str, Any] | None) -> tuple[int, float]:
    """The queue's strongest-first keys of a check: the rank (2 for ``high``, plus 1 for
    a flag with geometric support, i.e. not ``low`` priority; 0 when not flagged) and the
    strength of its best reason (0 to 1)."""
    if verdict is None or verdict == "clear" or reasons is None:
        return 0, 0.0
    rank = (2 if verdict == "high" else 0) + (reasons.get("priority") != "low")
    found = reasons.get("reasons", [])
    strength = 0.0
    if found:
        strength = Thresholds(**found[0]["thresholds"]).strength(found[0]["score"])
    return rank, round(strength, 4)


def check_rationale(text: str) -> str:
    return written_text(
        text, "rationale", "a decision needs a rationale (--rationale TEXT)", RATIONALE_MAX
    )


def written_text(text: str, name: str, missing: str, limit: int) -> str:
    """What a person wrote about an asset (a rationale, a note), trimmed: refused with
    ``missing`` when empty, and when over ``limit`` characters or holding a NUL character
    (which PostgreSQL cannot store)."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(missing)
    if len(cleaned) > limit:
        raise InvalidInput(f"the {name} is longer than {limit} characters")
    if "\x00" in cleaned:
        raise InvalidInput(f"the {name} contains a NUL character")
    return cleaned


def check_decision(decision: str) -> str:
    if decision not in DECISIONS:
        raise InvalidInput(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    return decision


def outcome_for(role: str, decision: str, state: ReviewState, asset_id: int) -> str:
    """The status ``decision`` by someone with ``role`` leads to; refuse what the rules do
    not allow, saying why."""
    if role not in _OUTCOMES:
        raise AccessDenied(
            f"signing off needs the reviewer role (legal for escalations); this user is {role}"
        )
    if state.status == "registered":
        raise Conflict(f"asset {asset_id} has not been checked; run `provenance check {asset_id}`")
    if state.status == "clear":
        raise Conflict(f"asset {asset_id} is clear: there is no flag to sign off")
    if state.status not in _DECIDES_FROM[role]:
        if role == "reviewer":
            raise AccessDenied(
                f"asset {asset_id} is {state.status.replace('_', ' ')}: only legal decides it"
            )
        raise AccessDenied(
            f"asset {asset_id} is {state.status.replace('_', ' ')}: legal decides only "
            "escalated assets; reviewers sign off flags"
        )
    outcome = _OUTCOMES[role].get(decision)
    if outcome is None:
        raise InvalidInput(f"legal decides an escalation with approve or reject, not {decision}")
    return outcome


SORTS = ("score", "age")
