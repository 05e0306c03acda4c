"""Queries and inserts used by the workspace's use cases."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload, load_only, selectinload

from provenance.db import audit, row_audit
from provenance.db.tables import (
    Approval,
    Asset,
    AssetState,
    AuditCheckpoint,
    AuditEvent,
    Base,
    Check,
    Consent,
    GenerationRecord,
    Match,
    Production,
    ReferenceItem,
    ReferenceSet,
    Review,
    Tool,
)
from provenance.errors import AmbiguousId, InvalidInput, NotFound
from provenance.review_rules import ReviewState, queue_keys, status_of

SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHA_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{8,64})\Z")
# Ids and hashes apart: digits alone are always an id (a hash prefix of digits only is
# written sha256:1999...).
_ASSET_ID = re.compile(r"#?(\d+)\Z")
_MAX_ID = 2**63 - 1


_Named = TypeVar("_Named", Production, Tool)


def _get_or_create(
    session: Session, find: Callable[[], _Named | None], make: Callable[[], _Named]
) -> tuple[_Named, bool]:
    """The row ``find`` returns, or a new one from ``make`` (True: created now). The insert
    runs in a savepoint: on PostgreSQL a concurrent writer may create the same name between
    our look and our insert, and then its row is used, not a unique-key error raised."""
    found = find()
    if found is not None:
        return found, False
    row = make()
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = find()
        if found is None:
            raise
        return found, False
    return row, True


def get_or_create_production(session: Session, name: str) -> Production:
    production, _ = _get_or_create(
        session,
        lambda: session.scalar(select(Production).where(Production.name == name)),
        lambda: Production(name=name),
    )
    return production


def tool_key(name: str) -> str:
    """What makes two tool names the same tool: case and surrounding space do not."""
    return name.strip().casefold()


def get_or_create_tool(session: Session, name: str) -> tuple[Tool, bool]:
    """The tool named ``name``, matched case-insensitively and kept in the spelling first
    seen; True when it was created now."""
    spelled = name.strip()
    return _get_or_create(
        session,
        lambda: session.scalar(select(Tool).where(Tool.name_key == tool_key(spelled))),
        lambda: Tool(name=spelled, name_key=tool_key(spelled)),
    )


def asset_id_by_sha256(session: Session | Connection, sha256: str) -> int | None:
    """The id of the asset with these bytes, without loading the asset."""
    return session.scalar(select(Asset.id).where(Asset.sha256 == sha256))


# Built once: statements without per-call .values() are compiled once and cached.
_TABLES = Base.metadata.tables
_INSERT_ASSET = insert(_TABLES["assets"]).returning(_TABLES["assets"].c.id)
# With their ids back: the registration's audit event vouches for each row written.
_INSERT_GENERATION = insert(_TABLES["generation_records"]).returning(
    _TABLES["generation_records"].c.id
)
_INSERT_FINGERPRINT = insert(_TABLES["fingerprints"]).returning(_TABLES["fingerprints"].c.id)
_INSERT_STATE = insert(AssetState)


def insert_registration(
    session: Session,
    *,
    asset: dict[str, Any],
    generation: dict[str, Any],
    fingerprints: list[dict[str, Any]],
) -> int:
    """Insert an asset with its generation record and fingerprints; return the asset id.

    Plain INSERT statements rather than the ORM's unit of work: registration is the hot
    path, and this is several times cheaper per file.
    """
    connection = session.connection()
    asset_id = int(connection.execute(_INSERT_ASSET, asset).scalar_one())
    generation_id = connection.execute(
        _INSERT_GENERATION, dict(generation, asset_id=asset_id)
    ).scalar_one()
    fingerprint_ids = connection.execute(
        _INSERT_FINGERPRINT, [dict(f, asset_id=asset_id) for f in fingerprints]
    ).scalars()
    connection.execute(_INSERT_STATE, {"asset_id": asset_id, "status": "registered"})
    # Plain INSERTs pass the ORM by: name the rows for the registration's audit event.
    row_audit.touch(session, "assets", [asset_id])
    row_audit.touch(session, "generation_records", [generation_id])
    row_audit.touch(session, "fingerprints", fingerprint_ids)
    return asset_id


def _with_details(statement: Select[Asset]) -> Select[Asset]:
    return statement.options(
        selectinload(Asset.production),
        selectinload(Asset.fingerprints),
        selectinload(Asset.checks),
        selectinload(Asset.reviews),
        selectinload(Asset.generation_records).selectinload(GenerationRecord.tool),
    )


def _with_production(statement: Select[Asset]) -> Select[Asset]:
    return statement.options(joinedload(Asset.production))


def with_details(statement: Select[Any]) -> Select[Any]:
    """``statement`` loading what an asset's JSON record needs."""
    return _with_details(statement)


def find_tool(session: Session, name: str) -> Tool | None:
    return session.scalar(select(Tool).where(Tool.name_key == tool_key(name)))


def find_asset(session: Session, ref: str, *, details: bool = True) -> Asset:
    """The asset named by an id (``42`` or ``#42``: digits are always an id) or a sha256
    prefix of 8+ hex digits (``sha256:1999...`` when the prefix has no letter).
    ``details``: with what its JSON record needs loaded (else its production only)."""
    loading = _with_details if details else _with_production
    text = ref.strip().lower()
    id_match = _ASSET_ID.match(text)
    if id_match:
        number = int(id_match[1])
        asset = (
            session.scalar(loading(select(Asset).where(Asset.id == number)))
            if number <= _MAX_ID
            else None
        )
        if asset is None:
            raise NotFound(f"no asset with id {id_match[1]}")
        return asset
    prefix_match = _SHA_PREFIX.match(text)
    if not prefix_match:
        raise InvalidInput(
            f"{ref!r} is neither an asset id (a number) nor a sha256 prefix (8 to 64 hex "
            "digits, or sha256:PREFIX)"
        )
    text = prefix_match[1]
    matches = session.scalars(
        loading(select(Asset).where(Asset.sha256.startswith(text)).limit(2))
    ).all()
    if not matches:
        raise NotFound(f"no asset whose sha256 starts with {text}")
    if len(matches) > 1:
        raise AmbiguousId(f"more than one asset's sha256 starts with {text}; give more digits")
    return matches[0]


def unchecked_asset_ids(session: Session) -> list[int]:
    """Ids of the assets that have no check, oldest first."""
    statement = select(AssetState.asset_id).where(AssetState.status == "registered")
    return list(session.scalars(statement.order_by(AssetState.asset_id)))


def pending_check_count(session: Session) -> int:
    """Assets waiting for a check: those without one, while a reference set exists to
    check them against (none otherwise)."""
    if active_reference_set_count(session) == 0:
        return 0
    statement = select(func.count()).where(AssetState.status == "registered")
    return int(session.scalar(statement) or 0)


def list_assets(
    session: Session,
    *,
    production: str | None = None,
    tool: str | None = None,
    use: str | None = None,
    since: dt.datetime | None = None,
    registered_by: str | None = None,
    verdict: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Asset]:
    statement = _asset_filter(
        _with_details(select(Asset)).order_by(Asset.id),
        production=production,
        tool=tool,
        use=use,
        since=since,
        registered_by=registered_by,
        verdict=verdict,
        status=status,
    )
    if offset:
        statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement).all())


def count_assets(session: Session, **filters: Any) -> int:
    """How many assets ``list_assets`` would give with these filters and no limit."""
    statement = _asset_filter(select(func.count(Asset.id)), **filters)
    return int(session.scalar(statement) or 0)


def _asset_filter(
    statement: Select[Any],
    *,
    production: str | None = None,
    tool: str | None = None,
    use: str | None = None,
    since: dt.datetime | None = None,
    registered_by: str | None = None,
    verdict: str | None = None,
    status: str | None = None,
) -> Select[Any]:
    """``verdict``: that of the newest check (``unchecked``: no check yet); ``status``:
    the review status (``asset_states``)."""
    if production is not None:
        statement = statement.join(Production).where(Production.name == production)
    if tool is not None:
        latest = select(GenerationRecord.asset_id).join(Tool).where(Tool.name_key == tool_key(tool))
        statement = statement.where(Asset.id.in_(latest))
    if use is not None:
        statement = statement.where(Asset.intended_use == use)
    if since is not None:
        statement = statement.where(Asset.registered_at >= since)
    if registered_by is not None:
        statement = statement.where(Asset.registered_by == registered_by)
    if verdict is not None or status is not None:
        statement = statement.join(AssetState, AssetState.asset_id == Asset.id)
    if verdict == "unchecked":
        statement = statement.where(AssetState.check_id.is_(None))
    elif verdict is not None:
        statement = statement.where(AssetState.verdict == verdict)
    if status is not None:
        statement = statement.where(AssetState.status == status)
    return statement


def active_reference_sets(session: Session) -> list[ReferenceSet]:
    return list(
        session.scalars(
            select(ReferenceSet)
            .where(ReferenceSet.removed_at.is_(None))
            .options(selectinload(ReferenceSet.items))
            .order_by(ReferenceSet.name)
        ).all()
    )


def active_reference_set_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(ReferenceSet).where(ReferenceSet.removed_at.is_(None))
        )
        or 0
    )


def check_matches(session: Session, check_id: int) -> list[tuple[Match, ReferenceItem, str, str]]:
    """A check's matches in the order they were recorded, each with its reference item and
    the item's set name and rights status."""
    rows = session.execute(
        select(Match, ReferenceItem, ReferenceSet.name, ReferenceSet.rights_status)
        .join(ReferenceItem, Match.reference_item_id == ReferenceItem.id)
        .join(ReferenceSet, ReferenceItem.set_id == ReferenceSet.id)
        .where(Match.check_id == check_id)
        .order_by(Match.id)
    ).all()
    return [(m, item, str(name), str(rights)) for m, item, name, rights in rows]


def match_json(
    row: tuple[Match, ReferenceItem, str, str], *, attribution: bool = True
) -> dict[str, Any]:
    """One row of ``check_matches`` as JSON: the match with its item's identity and its
    set's rights status (``attribution``: with the item's credit line)."""
    match, item, set_name, rights = row
    document: dict[str, Any] = {
        "reference_set": set_name,
        "rights_status": rights,
        "item_id": item.id,
        "sha256": item.sha256,
        "source_path": item.source_path,
    }
    if attribution:
        document["attribution"] = item.attribution
    document.update(
        {
            "detector": match.detector,
            "region": match.region,
            "score": round(match.score, 6),
            "rank": match.rank,
            **({"frame": match.frame} if match.frame is not None else {}),
        }
    )
    return document


def events_about(session: Session, subject: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.id)
        ).all()
    )


def is_known_image(session: Session, sha256: str, *, registered_by: str | None = None) -> bool:
    """Whether these bytes are a registered asset or a reference item; with
    ``registered_by`` (an artist), only an asset that artist registered: reference material
    is shown to the roles that review."""
    statement = select(Asset.id).where(Asset.sha256 == sha256)
    if registered_by is not None:
        statement = statement.where(Asset.registered_by == registered_by)
    if session.scalar(statement) is not None:
        return True
    if registered_by is not None:
        return False
    found = session.scalar(select(ReferenceItem.id).where(ReferenceItem.sha256 == sha256).limit(1))
    return found is not None


def referenced_blobs(session: Session) -> set[str]:
    """The sha256 of every stored file a record names: assets (and each frame of a frame
    sequence, named by its media facts), reference items, and the signed documents of
    consents and approvals."""
    found: set[str] = set()
    for column in (
        Asset.sha256,
        ReferenceItem.sha256,
        Consent.document_sha256,
        Approval.document_sha256,
    ):
        found.update(session.scalars(select(column).distinct()))
    sequences = select(Asset.media).where(Asset.media["kind"].as_string() == "sequence")
    for media in session.scalars(sequences):
        found.update(media.get("frame_sha256", {}).values())
    return found


def row_counts(session: Session) -> dict[str, int]:
    """Rows per table, every table of the schema: used to prove that a failed operation
    changed nothing."""
    return {
        table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
        for table in Base.metadata.sorted_tables
    }


def latest_check(session: Session, asset_id: int) -> Check | None:
    return session.scalar(
        select(Check).where(Check.asset_id == asset_id).order_by(Check.id.desc()).limit(1)
    )


def latest_review(session: Session, asset_id: int) -> Review | None:
    return session.scalar(
        select(Review).where(Review.asset_id == asset_id).order_by(Review.seq.desc()).limit(1)
    )


def settle_state(session: Session, asset_id: int) -> ReviewState:
    """Work the asset's status out from its newest check and decision and keep it in
    ``asset_states``: called by the transaction that records a check or a decision, so the
    column changes with what changes it."""
    state, rank, strength = _derived(
        latest_check(session, asset_id), latest_review(session, asset_id)
    )
    row = session.get(AssetState, asset_id)
    if row is None:
        row = AssetState(asset_id=asset_id)
        session.add(row)
    row.status = state.status
    row.reopened = state.reopened
    row.check_id = state.check_id
    row.verdict = state.verdict
    row.last_review_id = state.last_review_id
    row.rank = rank
    row.strength = strength
    session.flush()
    return state


def _derived(check: Check | None, review: Review | None) -> tuple[ReviewState, int, float]:
    """The status, queue rank and strength an asset's newest check and decision give."""
    state = status_of(check.verdict if check else None, check.id if check else None, review)
    rank, strength = queue_keys(state.verdict, check.reasons if check else None)
    return state, rank, strength


def asset_state(session: Session, asset_id: int) -> ReviewState:
    """The asset's review status, from its newest check and newest decision."""
    return _derived(latest_check(session, asset_id), latest_review(session, asset_id))[0]


def state_problems(session: Session, asset_ids: list[int] | None = None) -> list[str]:
    """Each asset (of ``asset_ids``, else every one) whose ``asset_states`` row does not
    say what its newest check and decision give: the derived column was changed by hand or
    by a write that bypassed the product. One line per asset."""
    if asset_ids is None:
        asset_ids = list(session.scalars(select(Asset.id).order_by(Asset.id)))
    problems: list[str] = []
    for start in range(0, len(asset_ids), 1000):
        chunk = asset_ids[start : start + 1000]
        newest_check = select(func.max(Check.id)).where(Check.asset_id.in_(chunk))
        checks = {
            c.asset_id: c
            for c in session.scalars(
                select(Check).where(Check.id.in_(newest_check.group_by(Check.asset_id)))
            )
        }
        newest_seq = (
            select(Review.asset_id, func.max(Review.seq).label("seq"))
            .where(Review.asset_id.in_(chunk))
            .group_by(Review.asset_id)
            .subquery()
        )
        reviews = {
            r.asset_id: r
            for r in session.scalars(
                select(Review).join(
                    newest_seq,
                    (newest_seq.c.asset_id == Review.asset_id) & (newest_seq.c.seq == Review.seq),
                )
            )
        }
        stored = {
            s.asset_id: s
            for s in session.scalars(select(AssetState).where(AssetState.asset_id.in_(chunk)))
        }
        for asset_id in chunk:
            state, rank, strength = _derived(checks.get(asset_id), reviews.get(asset_id))
            row = stored.get(asset_id)
            if row is None:
                problems.append(f"asset {asset_id} has no review status row")
            elif (row.status, row.check_id, row.verdict, row.last_review_id, row.reopened) != (
                state.status,
                state.check_id,
                state.verdict,
                state.last_review_id,
                state.reopened,
            ) or (row.rank, round(row.strength, 4)) != (rank, strength):
                problems.append(
                    f"asset {asset_id}'s review status reads {row.status!r}, but its checks "
                    f"and decisions give {state.status!r}: the status column was altered"
                )
    return problems


CHECKPOINT_FORMAT = "provenance.audit-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """Where a successful audit verification reached (``AuditCheckpoint``)."""

    event_id: int
    event_hash: str
    rows: dict[str, int]
    kind: str
    made_at: dt.datetime


def newest_checkpoint(session: Session) -> Checkpoint | None:
    row = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
    if row is None or not isinstance(row.row_ids, dict):
        return None
    if row.row_ids.get("format") != CHECKPOINT_FORMAT:
        return None  # written by another version: verify everything
    rows = {str(k): int(v) for k, v in dict(row.row_ids.get("rows", {})).items()}
    return Checkpoint(row.event_id, row.event_hash, rows, row.kind, row.made_at)


def add_checkpoint(
    session: Session, head: tuple[int, str], highest: dict[str, int], kind: str
) -> None:
    session.add(
        AuditCheckpoint(
            event_id=head[0],
            event_hash=head[1],
            row_ids={"format": CHECKPOINT_FORMAT, "rows": highest},
            kind=kind,
        )
    )


def assets_named_since(session: Session, after_event: int, highest_asset: int) -> list[int]:
    """The assets the events after ``after_event`` are about, and those added since the
    asset id ``highest_asset``."""
    named: set[int] = set()
    subjects = session.scalars(
        select(AuditEvent.subject).where(
            AuditEvent.id > after_event, AuditEvent.subject.like("asset:%")
        )
    )
    for subject in subjects:
        with contextlib.suppress(ValueError):
            named.add(int(subject.removeprefix("asset:")))
    named.update(session.scalars(select(Asset.id).where(Asset.id > highest_asset)))
    return sorted(named)


def chain_since_checkpoint(session: Session) -> audit.ChainReport:
    """The audit chain verified from the newest checkpoint (the events written since the
    last successful `audit verify`), or whole when there is none or its event no longer
    has the hash verified then (which the full verification names). What exports state
    about the chain: a big workspace's export then costs the new events, not every one."""
    checkpoint = newest_checkpoint(session)
    if checkpoint is not None:
        stored = audit.event_hashes(session, [checkpoint.event_id]).get(checkpoint.event_id)
        if stored == checkpoint.event_hash:
            report = audit.verify_chain(session, after=(checkpoint.event_id, checkpoint.event_hash))
            if not report.ok:
                return report
            return audit.ChainReport(
                True,
                checkpoint.event_id + report.events,
                None,
                f"{report.events} events verified since the checkpoint at event "
                f"{checkpoint.event_id} ({checkpoint.made_at:%Y-%m-%d %H:%M} UTC), which "
                f"verified the {checkpoint.event_id} before",
            )
    return audit.verify_chain(session)


def assets_for_status(session: Session, asset_ids: list[int]) -> list[Asset]:
    """The assets ``asset_ids`` (in id order) with the columns and production a clearance
    status reads; their newest check, decision and tool come from ``newest_facts``."""
    wanted = set(asset_ids)
    found = session.scalars(
        select(Asset)
        .where(id_span(Asset.id, asset_ids))
        .options(
            load_only(
                Asset.id,
                Asset.sha256,
                Asset.original_name,
                Asset.intended_use,
                Asset.production_id,
                Asset.registered_by,
                Asset.registered_at,
            ),
            joinedload(Asset.production),
        )
        .order_by(Asset.id)
    )
    return [asset for asset in found if asset.id in wanted]


def id_span(column: InstrumentedAttribute[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """``column`` between the least and the greatest of ``ids`` (the caller keeps the rows
    of ``ids``): two bound values where an ``IN`` list of hundreds costs more to send than
    the rows of a few ids between (PostgreSQL's driver parses such a query anew each time).
    For ids read in order, as a production's assets are."""
    return column.between(min(ids), max(ids))


class NewestCheck(NamedTuple):
    id: int
    verdict: str
    reasons: dict[str, Any]


class NewestDecision(NamedTuple):
    """What the review rules read of a decision (``review_rules.Decision``)."""

    id: int
    seq: int
    check_verdict: str
    outcome: str


class NewestFacts(NamedTuple):
    """An asset's newest check and decision, and the tool (id, name) of its newest
    generation record."""

    check: Any
    decision: Any
    tool: tuple[int, str] | None


def newest_facts(session: Session, asset_ids: list[int]) -> dict[int, NewestFacts]:
    """``NewestFacts`` of each of ``asset_ids``, as plain values, in one query (the newest
    check and decision are named by ``asset_states``)."""
    statement = (
        select(
            AssetState.asset_id,
            Check.id,
            Check.verdict,
            Check.reasons,
            Review.id,
            Review.seq,
            Review.check_verdict,
            Review.outcome,
            Tool.id,
            Tool.name,
        )
        .select_from(AssetState)
        .outerjoin(Check, Check.id == AssetState.check_id)
        .outerjoin(Review, Review.id == AssetState.last_review_id)
        .outerjoin(Tool, Tool.id == newest_tool_id(AssetState.asset_id))
        .where(id_span(AssetState.asset_id, asset_ids))
    )
    wanted = set(asset_ids)
    found = {
        row[0]: NewestFacts(
            NewestCheck(*row[1:4]) if row[1] is not None else None,
            NewestDecision(*row[4:8]) if row[4] is not None else None,
            (row[8], row[9]) if row[8] is not None else None,
        )
        for row in session.execute(statement)
        if row[0] in wanted
    }
    return {asset_id: found.get(asset_id, NewestFacts(None, None, None)) for asset_id in asset_ids}


def newest_tool_id(asset_id: Any) -> Any:
    """The tool id of the newest generation record of the asset ``asset_id`` (a column of
    the enclosing query): a correlated scalar subquery, run per row of the enclosing query
    through the index on ``generation_records.asset_id``."""
    return (
        select(GenerationRecord.tool_id)
        .where(GenerationRecord.asset_id == asset_id)
        .order_by(GenerationRecord.id.desc())
        .limit(1)
        .scalar_subquery()
    )
