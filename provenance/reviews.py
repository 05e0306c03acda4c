"""Review decisions and the queue: recording sign-offs by the rules of
``provenance.review_rules``, and listing the assets waiting for one. (The digests that let
``audit verify`` notice an altered decision are in ``provenance.record_digests``.)

An asset's review status follows from its newest check and its newest decision::

    registered ──check──> clear
                    └───> flagged ──reviewer──> approved | rejected | needs_changes
                                         └────> escalated ──legal──> legal_approved
                                                                     | legal_rejected

- Only reviewers decide on flagged assets; only legal decides escalations. Nobody decides
  on an asset they registered (separation of duties).
- A decision names the check it refers to and keeps the evidence that check showed (verdict,
  reasons, matches and scores) as it was at that moment. Decisions are never edited: a new
  decision supersedes the last, and must name it (``previous``), so a reviewer never
  overwrites a decision they did not see. Of two reviewers deciding on the same state at
  once, exactly one succeeds; the other gets ``Conflict``.
- A decision stands while later checks keep the verdict it was made on. A check that
  changes the verdict reopens review (status ``flagged`` again, ``reopened``), or clears the
  asset when the new verdict is ``clear``.
- Every decision is an audit event holding the sha256 of the decision row, so that
  ``audit verify`` notices a decision row altered or deleted after the fact.

JSON of one decision, schema ``provenance.review/1``::

    {"schema": "provenance.review/1", "review_id", "asset_id", "seq", "check_id",
     "check_verdict", "decision", "outcome", "rationale", "decided_by", "role",
     "decided_at", "previous_id", "evidence": {"verdict", "reasons", "matches", ...}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance.db import audit, repository
from provenance.db.session import read_session, write_transaction
from provenance.db.tables import (
    Asset,
    AssetState,
    Check,
    GenerationRecord,
    Match,
    Production,
    Review,
    Tool,
    utcnow,
)
from provenance.domain import Decision, UserInfo
from provenance.errors import AccessDenied, Conflict, InvalidInput, NotFound
from provenance.export.documents import decision_of
from provenance.record_digests import decision_digest
from provenance.review_rules import (
    OPEN_STATUSES,
    SORTS,
    check_decision,
    check_rationale,
    outcome_for,
    status_of,
)
from provenance.scoring import Thresholds
from provenance.workspace import Workspace

# Matches kept in a decision's evidence, strongest first.
EVIDENCE_MATCHES = 20
QUEUE_SCHEMA = "provenance.queue/1"


def review(
    workspace: Workspace,
    ref: str,
    decision: str,
    rationale: str,
    *,
    supersedes: int | None = None,
    user: UserInfo | None = None,
    previous: int | None = None,
    explicit_previous: bool = False,
    seen_check: int | None = None,
) -> Decision:
    """Record a decision on the asset's newest check (see ``decide``).

    From the CLI: ``supersedes`` names the standing decision being replaced. From the
    web layer: ``user`` is the signed-in user and ``previous`` the newest decision the
    page showed (``explicit_previous``), so a decision made meanwhile is a conflict.
    ``seen_check``: the check the decider was shown (a newer one is a conflict).
    """
    check_decision(decision)
    check_rationale(rationale)
    acting = user if user is not None else workspace.acting_user()
    with read_session(workspace.engine) as session:
        asset_id = repository.find_asset(session, ref).id
    if supersedes is not None:
        previous, explicit_previous = supersedes, True
    return decide(
        workspace,
        asset_id,
        decision,
        rationale,
        user=acting,
        previous=previous,
        explicit_previous=explicit_previous,
        seen_check=seen_check,
    )


def decide(
    workspace: Workspace,
    asset_id: int,
    decision: str,
    rationale: str,
    *,
    user: UserInfo,
    previous: int | None,
    explicit_previous: bool,
    seen_check: int | None = None,
) -> Decision:
    """Record ``user``'s decision on the asset's newest check; return it as JSON.

    ``previous`` is the newest decision the decider saw (None: none). When it is not the
    newest decision any more, someone decided meanwhile: ``Conflict``. Without
    ``explicit_previous`` (the CLI's default), a standing decision is not replaced.
    ``seen_check``: the check whose evidence the decider was shown; a newer check since
    is a ``Conflict`` too (the decision would otherwise rest on evidence nobody saw).
    """
    check_decision(decision)
    rationale = check_rationale(rationale)
    name, role = user.name, user.role
    try:
        with write_transaction(workspace.engine) as session:
            asset = session.get(Asset, asset_id)
            if asset is None:
                raise NotFound(f"no asset with id {asset_id}")
            if asset.registered_by == name:
                raise AccessDenied(
                    f"{name!r} registered asset {asset_id} and cannot sign it off "
                    "(separation of duties)"
                )
            check = repository.latest_check(session, asset_id)
            if seen_check is not None and check is not None and check.id != seen_check:
                raise Conflict(
                    f"asset {asset_id} was checked again (check {check.id}) after the check "
                    f"{seen_check} you saw; reload and decide on the new evidence"
                )
            last = repository.latest_review(session, asset_id)
            state = status_of(check.verdict if check else None, check.id if check else None, last)
            if explicit_previous and previous != state.last_review_id:
                raise _conflict(asset_id, last)
            outcome = outcome_for(role, decision, state, asset_id)
            if not explicit_previous and last is not None and state.status not in OPEN_STATUSES:
                raise Conflict(
                    f"asset {asset_id} has a standing decision #{last.id} "
                    f"({last.decision} by {last.decided_by}); to replace it, pass "
                    f"--supersedes {last.id}"
                )
            assert check is not None  # status_of gave registered otherwise
            review = Review(
                asset_id=asset_id,
                seq=state.last_seq + 1,
                check_id=check.id,
                check_verdict=check.verdict,
                decision=decision,
                outcome=outcome,
                rationale=rationale,
                decided_by=name,
                role=role,
                decided_at=utcnow(),
                previous_id=state.last_review_id,
                evidence=evidence_of(session, check),
            )
            session.add(review)
            # The INSERT runs here: a concurrent decision on the same state fails on the
            # (asset_id, seq) key before anything else is written.
            session.flush()
            repository.settle_state(session, asset_id)
            audit.append_event(
                session,
                actor=name,
                action="review.decided",
                subject=f"asset:{asset_id}",
                payload={
                    "review_id": review.id,
                    "seq": review.seq,
                    "check_id": check.id,
                    "decision": decision,
                    "outcome": outcome,
                    "role": role,
                    "previous_id": review.previous_id,
                    "status_before": state.status,
                    "record_sha256": decision_digest(review),
                },
            )
            return decision_of(review)
    except IntegrityError:
        with read_session(workspace.engine) as session:
            raise _conflict(asset_id, repository.latest_review(session, asset_id)) from None


def _conflict(asset_id: int, last: Review | None) -> Conflict:
    if last is None:
        return Conflict(
            f"asset {asset_id} has no decision yet, but one was expected; reload and decide again"
        )
    return Conflict(
        f"asset {asset_id} was decided meanwhile: #{last.id} {last.decision} by "
        f"{last.decided_by} at {last.decided_at.isoformat(timespec='seconds')}; "
        "reload and decide again"
    )


def evidence_of(session: Session, check: Check) -> dict[str, Any]:
    """What the check showed: its verdict and reasons, thresholds, and its strongest
    matches with the reference items' identities."""
    # By rank, then in the order recorded (the sort is stable).
    rows = sorted(repository.check_matches(session, check.id), key=lambda row: row[0].rank)
    bands = {name: Thresholds(**t) for name, t in check.thresholds.items()}

    def strength(match: Match) -> float:
        band = bands.get(match.detector)
        return band.strength(match.score) if band else 0.0

    ordered = sorted(rows, key=lambda r: strength(r[0]), reverse=True)[:EVIDENCE_MATCHES]
    return {
        "check_id": check.id,
        "checked_at": check.created_at.isoformat(),
        "verdict": check.verdict,
        "reasons": check.reasons.get("reasons", []),
        "thresholds": check.thresholds,
        # Without the items' credit lines: the evidence kept with a decision has never
        # held them, and its digest covers exactly these fields.
        "matches": [repository.match_json(row, attribution=False) for row in ordered],
    }


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    verdict: str | None = None
    production: str | None = None
    tool: str | None = None
    sort: str = "score"
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class QueueEntry:
    """An asset waiting for a decision: who made it, its status, and the check it waits on
    with that check's strongest reason (times as ISO 8601 text)."""

    asset_id: int
    sha256: str
    original_name: str
    production: str | None
    tool: str | None
    intended_use: str
    registered_by: str
    registered_at: str
    status: str
    reopened: bool
    check_id: int
    checked_at: str
    verdict: str
    best_reason: dict[str, Any] | None
    strength: float
    latest_decision_id: int | None
    # "normal" when the flag is high or has geometric support, "low" when it has neither,
    # None for checks recorded before verification.
    priority: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Queue:
    """One page of the queue, the number of entries on every page, and how many assets wait
    for a check (not in the queue until checked); as JSON, ``provenance.queue/1``."""

    total: int
    offset: int
    pending_checks: int
    entries: list[QueueEntry]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": QUEUE_SCHEMA,
            "total": self.total,
            "offset": self.offset,
            "pending_checks": self.pending_checks,
            "entries": [entry.to_json() for entry in self.entries],
        }


def check_queue_filter(where: QueueFilter) -> QueueFilter:
    """``where``, refused when it names a status, verdict or order the queue has not."""
    if where.status is not None and where.status not in OPEN_STATUSES:
        raise InvalidInput(
            f"queue status {where.status!r} is not one of {', '.join(OPEN_STATUSES)}"
        )
    if where.verdict is not None and where.verdict not in ("review", "high"):
        raise InvalidInput(f"queue verdict {where.verdict!r} is not review or high")
    if where.sort not in SORTS:
        raise InvalidInput(f"sort {where.sort!r} is not one of {', '.join(SORTS)}")
    return where


def queue(workspace: Workspace, where: QueueFilter | None = None) -> Queue:
    """Assets waiting for a decision (flagged: reviewers; escalated: legal), strongest
    flag first (``sort="score"``: high, then flags with geometric support, then by
    strength) or oldest first (``sort="age"``)."""
    where = check_queue_filter(where or QueueFilter())
    with read_session(workspace.engine) as session:
        counted = _open_states(where, AssetState.asset_id).subquery()
        total = int(session.scalar(select(func.count()).select_from(counted)) or 0)
        # The page's ids first (in the queue's order, offset and limit), then what their
        # entries show: joined before the limit, every open asset would be joined.
        page = _in_queue_order(_open_states(where, AssetState.asset_id), where.sort)
        page = page.offset(where.offset)
        if where.limit is not None:
            page = page.limit(where.limit)
        chosen = page.subquery()
        statement = (
            select(*_ENTRY_COLUMNS)
            .select_from(chosen)
            .join(AssetState, AssetState.asset_id == chosen.c.asset_id)
        )
        statement = _in_queue_order(_with_entry_joins(statement), where.sort)
        entries = [_entry(row) for row in session.execute(statement)]
        # Assets not checked yet cannot be judged: the queue says how many wait.
        pending = repository.pending_check_count(session)
    return Queue(total, where.offset, pending, entries)


def queue_ids(workspace: Workspace, where: QueueFilter) -> list[int]:
    """The asset ids of the whole queue ``where`` selects, in its order (limit and offset
    ignored): where an asset stands among the others."""
    check_queue_filter(where)
    statement = _open_states(where, AssetState.asset_id)
    with read_session(workspace.engine) as session:
        return list(session.scalars(_in_queue_order(statement, where.sort)))


def _in_queue_order(statement: Select[Any], sort: str) -> Select[Any]:
    if sort == "score":
        return statement.order_by(
            AssetState.rank.desc(), AssetState.strength.desc(), AssetState.asset_id
        )
    # Oldest check first: check ids grow with the time they were recorded.
    return statement.order_by(AssetState.check_id, AssetState.asset_id)


def _open_states(where: QueueFilter, *columns: Any) -> Select[Any]:
    """``columns`` of the ``asset_states`` rows of the queue with ``where``'s filters,
    unordered."""
    statuses = OPEN_STATUSES if where.status is None else (where.status,)
    statement = select(*columns).select_from(AssetState).where(AssetState.status.in_(statuses))
    if where.verdict is not None:
        statement = statement.where(AssetState.verdict == where.verdict)
    if where.production is not None:
        statement = statement.where(
            AssetState.asset_id.in_(
                select(Asset.id).join(Production).where(Production.name == where.production)
            )
        )
    if where.tool is not None:
        newest = select(func.max(GenerationRecord.id)).group_by(GenerationRecord.asset_id)
        key = repository.tool_key(where.tool)
        made_with = (
            select(GenerationRecord.asset_id)
            .join(Tool)
            .where(GenerationRecord.id.in_(newest), Tool.name_key == key)
        )
        statement = statement.where(AssetState.asset_id.in_(made_with))
    return statement


# What a queue entry shows, read with its state in one query (``_with_entry_joins``).
_ENTRY_COLUMNS = (
    AssetState.asset_id,
    AssetState.status,
    AssetState.reopened,
    AssetState.strength,
    AssetState.last_review_id,
    Asset.sha256,
    Asset.original_name,
    Asset.intended_use,
    Asset.registered_by,
    Asset.registered_at,
    Check.id,
    Check.created_at,
    Check.verdict,
    Check.reasons,
    Production.name,
    Tool.name,
)


def _with_entry_joins(statement: Select[Any]) -> Select[Any]:
    """``statement`` over ``asset_states`` joined to what ``_ENTRY_COLUMNS`` read: the
    asset, the check it waits on, its production and its newest generation record's
    tool."""
    return (
        statement.join(Asset, Asset.id == AssetState.asset_id)
        .join(Check, Check.id == AssetState.check_id)
        .outerjoin(Production, Production.id == Asset.production_id)
        .outerjoin(Tool, Tool.id == repository.newest_tool_id(AssetState.asset_id))
    )


def _entry(row: Any) -> QueueEntry:
    """The queue entry of one row of ``_ENTRY_COLUMNS``."""
    (asset_id, status, reopened, strength, last_review_id, sha256, original_name, use,
     registered_by, registered_at, check_id, checked_at, verdict, reasons, production,
     tool) = row  # fmt: skip
    best = reasons.get("reasons", [])
    return QueueEntry(
        asset_id=asset_id,
        sha256=sha256,
        original_name=original_name,
        production=production,
        tool=tool,
        intended_use=use,
        registered_by=registered_by,
        registered_at=registered_at.isoformat(),
        status=status,
        reopened=reopened,
        check_id=check_id,
        checked_at=checked_at.isoformat(),
        verdict=verdict,
        best_reason=best[0] if best else None,
        strength=strength,
        latest_decision_id=last_review_id,
        priority=reasons.get("priority"),
    )
