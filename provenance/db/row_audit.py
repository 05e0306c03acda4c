"""Audit coverage of the records: every row that matters to legal is vouched for by the
audit event that wrote it.

Each write transaction notes the rows it adds or changes (``touch``; ORM rows are noted on
flush by ``track``). When the transaction appends its audit event, the event's payload gets
``"rows": [[table, id, sha256], ...]``: the digest of each noted row as the database holds
it, read back raw (no type conversion), so that a value a program could not even parse (a
date that is not a date, text in a number column, JSON that is not JSON) still has a digest
and is found altered instead of crashing the verification. The newest event naming a row
vouches for it.

``verify_rows`` compares every row of every covered table with its newest voucher: an
altered row, a row no event vouches for (inserted behind provenance's back) and a vouched
row that is gone (deleted) are each named.

A digest leaves out NULL columns, so a migration adding a nullable column keeps every
existing row's digest; a migration that fills a new column for existing rows must vouch
for them again (as 0006 vouched for the rows written before coverage began).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import column, event, func, select, table
from sqlalchemy.orm import Session

from provenance.db.tables import AuditEvent, Base

# The tables whose rows legal relies on; web sessions and the audit log itself are not.
COVERED_TABLES = (
    "productions",
    "tools",
    "tool_profiles",
    "users",
    "assets",
    "generation_records",
    "fingerprints",
    "declarations",
    "revisions",
    "reference_sets",
    "reference_items",
    "reference_vectors",
    "checks",
    "matches",
    "reviews",
    "consents",
    "approvals",
    "withdrawals",
)
_TOUCHED = "provenance_touched_rows"
# Rows read per query when verifying or vouching.
_CHUNK = 500


def track(session: Session) -> None:
    """Note every covered ORM row that ``session`` inserts or updates, as it flushes."""
    event.listen(session, "after_flush", _note_flushed)


def _note_flushed(session: Session, _context: Any) -> None:
    for row in (*session.new, *session.dirty):
        name = getattr(getattr(row, "__table__", None), "name", None)
        if name in COVERED_TABLES and getattr(row, "id", None) is not None:
            touch(session, name, [int(row.id)])


def touch(session: Session, table_name: str, ids: Iterable[int]) -> None:
    """Note rows written outside the ORM's unit of work (plain INSERT statements)."""
    noted: dict[str, set[int]] = session.info.setdefault(_TOUCHED, {})
    noted.setdefault(table_name, set()).update(int(i) for i in ids)


def take_touched(session: Session) -> list[list[Any]]:
    """The rows noted since the last event, as ``[table, id, sha256]`` (read back now), and
    forget them. Rows noted and then rolled back (a savepoint) are left out."""
    session.flush()
    noted: dict[str, set[int]] = session.info.pop(_TOUCHED, {})
    entries: list[list[Any]] = []
    for table_name in COVERED_TABLES:
        ids = sorted(noted.get(table_name, ()))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for row_id, digest in _digests(session, table_name, chunk):
                entries.append([table_name, row_id, digest])
    return entries


def pending(session: Session) -> bool:
    """Whether rows were noted that no event has vouched for yet."""
    session.flush()
    return bool(session.info.get(_TOUCHED))


def row_digest(values: dict[str, Any]) -> str:
    """The sha256 of a row's raw values in canonical JSON."""
    document = {name: _plain(value) for name, value in values.items() if value is not None}
    # The spelling audit.canonical_json uses (this module sits below it).
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview | bytearray):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _digests(
    session: Session,
    table_name: str,
    ids: list[int] | None = None,
    names: list[str] | None = None,
    *,
    after_id: int | None = None,
) -> Iterator[tuple[int, str]]:
    """(id, digest) of rows of ``table_name`` (those of ``ids``, or with an id over
    ``after_id``, else all), by id; ``names``: the columns, when not those of this code's
    schema (in a migration)."""
    if names is None:
        names = [c.name for c in Base.metadata.tables[table_name].columns]
    raw = table(table_name, *[column(name) for name in names])
    statement = select(*[raw.c[name] for name in names]).order_by(raw.c.id)
    if ids is not None:
        statement = statement.where(raw.c.id.in_(ids))
    if after_id is not None:
        statement = statement.where(raw.c.id > after_id)
    for row in session.execute(statement).yield_per(1000):
        values = dict(zip(names, row, strict=True))
        yield _row_id(values["id"]), row_digest(values)


def _row_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # an id that is not a number: no voucher can name it


def all_rows(session: Session, columns: dict[str, list[str]] | None = None) -> list[list[Any]]:
    """Every covered row as ``[table, id, sha256]``: what a schema upgrade that starts
    vouching vouches for at once. ``columns``: each table's columns as the database has
    them (a migration passes them; default: this code's schema)."""
    return [
        [name, row_id, digest]
        for name in COVERED_TABLES
        for row_id, digest in _digests(session, name, names=(columns or {}).get(name))
    ]


def _newest_vouchers(session: Session, after_event: int) -> dict[str, dict[int, tuple[int, str]]]:
    """Per covered table, each row id the events after ``after_event`` vouch for, with its
    newest voucher (event id, digest)."""
    vouched: dict[str, dict[int, tuple[int, str]]] = {name: {} for name in COVERED_TABLES}
    events = session.execute(
        select(AuditEvent.id, AuditEvent.payload)
        .where(AuditEvent.id > after_event, AuditEvent.payload.contains('"rows":'))
        .order_by(AuditEvent.id)
    )
    for event_id, payload in events:
        try:
            entries = json.loads(payload).get("rows") or []
            for table_name, row_id, digest in entries:
                vouched.setdefault(str(table_name), {})[int(row_id)] = (int(event_id), str(digest))
        except (ValueError, TypeError, AttributeError):
            continue  # the chain check has already vouched for every event's payload
    return vouched


def verify_rows(session: Session) -> list[tuple[int | None, str]]:
    """Every covered row against the newest audit event vouching for it: each problem as
    (event id, message), in table order."""
    vouched = _newest_vouchers(session, 0)
    problems: list[tuple[int | None, str]] = []
    for table_name in COVERED_TABLES:
        problems += _compared(table_name, vouched[table_name], _digests(session, table_name))
    return problems


def _compared(
    table_name: str, vouchers: dict[int, tuple[int, str]], digests: Iterable[tuple[int, str]]
) -> list[tuple[int | None, str]]:
    """Rows (``digests``) against their vouchers: a row without one was added behind the
    product's back, a row unlike its voucher was altered, a vouched row not among the rows
    was deleted."""
    problems: list[tuple[int | None, str]] = []
    seen: set[int] = set()
    for row_id, digest in digests:
        seen.add(row_id)
        voucher = vouchers.get(row_id)
        if voucher is None:
            problems.append(
                (
                    None,
                    f"row {row_id} of {table_name} has no audit event: it was added "
                    "outside provenance",
                )
            )
        elif voucher[1] != digest:
            problems.append(
                (
                    voucher[0],
                    f"row {row_id} of {table_name} was altered: it does not match "
                    f"audit event {voucher[0]}",
                )
            )
    for row_id, (event_id, _) in sorted(vouchers.items()):
        if row_id not in seen:
            problems.append(
                (
                    event_id,
                    f"row {row_id} of {table_name}, recorded by audit event "
                    f"{event_id}, is missing: it was deleted",
                )
            )
    return problems


def highest_ids(session: Session) -> dict[str, int]:
    """The highest row id of every covered table (0 when empty): a checkpoint's rows."""
    found: dict[str, int] = {}
    for table_name in COVERED_TABLES:
        raw = table(table_name, column("id"))
        found[table_name] = int(session.scalar(select(func.max(raw.c.id))) or 0)
    return found


def verify_rows_since(
    session: Session, after_event: int, highest: dict[str, int]
) -> list[tuple[int | None, str]]:
    """The rows the events after ``after_event`` vouch for, against their newest voucher,
    and every row added since the checkpoint whose ``highest`` ids are given (each must be
    vouched for by one of those events): each problem as (event id, message). Rows no new
    event names are left to a full verification."""
    vouched = _newest_vouchers(session, after_event)
    problems: list[tuple[int | None, str]] = []
    for table_name in COVERED_TABLES:
        vouchers = vouched[table_name]
        last = highest.get(table_name, 0)
        # The older rows new events name, then every row added since (each needs one).
        older = sorted(row_id for row_id in vouchers if row_id <= last)
        digests = itertools.chain(
            *(
                _digests(session, table_name, older[start : start + _CHUNK])
                for start in range(0, len(older), _CHUNK)
            ),
            _digests(session, table_name, after_id=last),
        )
        problems += _compared(table_name, vouchers, digests)
    return problems
