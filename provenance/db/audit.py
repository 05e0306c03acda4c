"""The append-only, hash-chained audit log and its verification.

Each event's hash covers its id, time, actor, action, subject, payload and the previous
event's hash. Changing any field of any event, deleting an event, or inserting one breaks
the chain at that event; ``verify_chain`` names the first event that does not verify. The
``audit_head`` row records the newest event, so removing events from the end is caught too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from provenance.db import row_audit
from provenance.db.session import write_transaction
from provenance.db.tables import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
_HEAD_ID = 1


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value`` that hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# The fields an event's hash covers, in the event's own column names.
HASHED_FIELDS = ("id", "occurred_at", "actor", "action", "subject", "payload", "prev_hash")


def event_hash(fields: Mapping[str, Any]) -> str:
    """The sha256 of an event's hashed fields in canonical JSON."""
    body = canonical_json({name: fields[name] for name in HASHED_FIELDS})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def start_chain(session: Session) -> None:
    """Create the head row of an empty log (done once, when the workspace is created)."""
    session.add(AuditHead(id=_HEAD_ID, last_event_id=0, last_hash=GENESIS_HASH))


def append_event(
    session: Session, *, actor: str, action: str, subject: str, payload: dict[str, Any]
) -> str:
    """Append one event inside the caller's write transaction; return its hash. The rows
    the transaction wrote since its last event are vouched for in the payload (``rows``)."""
    rows = row_audit.take_touched(session)
    if rows:
        payload = {**payload, "rows": rows}
    head = session.execute(
        select(AuditHead.last_event_id, AuditHead.last_hash)
        .where(AuditHead.id == _HEAD_ID)
        .with_for_update()
    ).first()
    if head is None:
        raise RuntimeError("audit log has no head row; the workspace was not initialised")
    last_event_id, prev_hash = head
    fields = {
        "id": last_event_id + 1,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": canonical_json(payload),
        "prev_hash": prev_hash,
    }
    digest = event_hash(fields)
    session.execute(insert(AuditEvent).values(**fields, hash=digest))
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == _HEAD_ID)
        .values(last_event_id=fields["id"], last_hash=digest)
    )
    return digest


def record_event(
    engine: Engine, *, actor: str, action: str, subject: str, payload: dict[str, Any]
) -> str:
    """Append one event in a write transaction of its own; return its hash."""
    with write_transaction(engine) as session:
        return append_event(session, actor=actor, action=action, subject=subject, payload=payload)


def head(session: Session) -> tuple[int, str]:
    """The newest event's number and hash, as the head row records them."""
    row = session.get(AuditHead, _HEAD_ID)
    if row is None:
        raise RuntimeError("audit log has no head row; the workspace was not initialised")
    return int(row.last_event_id), str(row.last_hash)


def event_hashes(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """The stored hash of each of the events ``ids`` that exists."""
    wanted = sorted(set(ids))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(AuditEvent.id, AuditEvent.hash).where(
                AuditEvent.id.in_(wanted[start : start + 500])
            )
        )
        found.update({int(event_id): str(digest) for event_id, digest in rows})
    return found


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "payload": json.loads(event.payload),
        "hash": event.hash,
    }


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying the audit log."""

    ok: bool
    events: int
    first_bad_event: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.audit-verify/1",
            "ok": self.ok,
            "events": self.events,
            "first_bad_event": self.first_bad_event,
            "message": self.message,
        }


def verify_chain(session: Session, after: tuple[int, str] | None = None) -> ChainReport:
    """Check every event against its predecessor and the head; stop at the first failure.
    ``after``: a verified event's id and hash (a checkpoint), to check only the events
    written since it (``events`` then counts those)."""
    start_id, previous_hash = after if after is not None else (0, GENESIS_HASH)
    expected_id, count = start_id + 1, 0
    events = session.execute(
        select(AuditEvent).where(AuditEvent.id > start_id).order_by(AuditEvent.id)
    ).scalars()
    for event in events.yield_per(1000):
        if event.id != expected_id:
            return _broken(
                count,
                expected_id,
                f"event {expected_id} is missing (the next event present is {event.id})",
            )
        recomputed = event_hash({name: getattr(event, name) for name in HASHED_FIELDS})
        if recomputed != event.hash:
            return _broken(
                count, event.id, f"event {event.id} was altered: its hash does not match"
            )
        if event.prev_hash != previous_hash:
            return _broken(
                count,
                event.id,
                f"event {event.id} does not follow event {event.id - 1}: "
                "the chain was altered at or before it",
            )
        previous_hash, expected_id, count = event.hash, expected_id + 1, count + 1
    head = session.get(AuditHead, _HEAD_ID)
    if head is None:
        return _broken(count, None, "the audit head row is missing")
    # A hand-edited head may hold text where a number belongs: named, never a traceback.
    last_id: Any = head.last_event_id
    if not isinstance(last_id, int) or not isinstance(head.last_hash, str):
        return _broken(count, None, "the audit head row is malformed: it was altered")
    if head.last_event_id != start_id + count or head.last_hash != previous_hash:
        first_missing = start_id + count + 1
        return _broken(
            count,
            first_missing,
            f"events {first_missing} to {head.last_event_id} are missing from the end of the log"
            if head.last_event_id > count
            else "the audit head does not match the last event",
        )
    return ChainReport(True, count, None, f"{count} events verified")


def record_digest(document: Any) -> str:
    """The sha256 of a record's canonical JSON: what its audit event vouches for."""
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def verify_records(
    session: Session,
    *,
    action: str,
    key: str,
    noun: str,
    digests: Iterable[tuple[int, str]],
) -> tuple[int | None, str] | None:
    """Compare rows with the audit events that recorded them.

    ``digests``: each row's id and the ``record_digest`` of its content now. The events of
    ``action`` name the row in ``payload[key]`` and hold ``record_sha256`` (events written
    before a record kind was vouched for hold none: only their presence is checked). The
    first problem as (event id, message): a row altered, a row without its event (added
    behind provenance's back), an event whose row is gone."""
    recorded: dict[int, tuple[int, str | None]] = {}
    events = session.execute(
        select(AuditEvent.id, AuditEvent.payload)
        .where(AuditEvent.action == action)
        .order_by(AuditEvent.id)
    )
    for event_id, payload in events:
        fields = json.loads(payload)
        if key in fields:
            recorded[int(fields[key])] = (event_id, fields.get("record_sha256"))
    seen = set()
    for row_id, digest in digests:
        seen.add(row_id)
        entry = recorded.get(row_id)
        if entry is None:
            return None, f"{noun} #{row_id} has no audit event: it was added outside provenance"
        if entry[1] is not None and entry[1] != digest:
            return entry[0], (
                f"{noun} #{row_id} does not match its audit event {entry[0]}: "
                f"the {noun} row was altered"
            )
    for row_id, (event_id, _) in sorted(recorded.items()):
        if row_id not in seen:
            return event_id, f"{noun} #{row_id} recorded by audit event {event_id} is missing"
    return None


def _broken(count: int, event_id: int | None, message: str) -> ChainReport:
    return ChainReport(False, count, event_id, message)
