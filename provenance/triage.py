"""Working a flag as a team: notes on an asset and claiming it.

Both live in the audit log itself, so they are as tamper-evident as the decisions:

- A **note** is an event ``note.added`` about the asset (``asset:N``) holding the text, the
  author's role and, for a reply, the note it answers (``reply_to``: that note's event
  number). Notes are never edited or deleted; a correction is another note. Anyone who may
  read the asset may write one: reviewers and legal on any asset, an artist on their own
  (answering a reviewer's question).
- A **claim** ("I am on this one") is an event ``asset.claimed``; ``asset.released`` ends
  it, and so do a decision on the asset and the passing of ``CLAIM_MINUTES``. Only someone
  who may decide the asset now (a reviewer on a flag, legal on an escalation) claims it; a
  live claim of someone else's is refused as a conflict, naming who and since when. The
  queue shows who is on what; a claim never stops a decision.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db import audit, repository
from provenance.db.session import read_session, write_transaction
from provenance.db.tables import AuditEvent
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, Conflict, NotFound
from provenance.review_rules import outcome_for, written_text
from provenance.workspace import Workspace

NOTE_ACTION = "note.added"
CLAIM_ACTION = "asset.claimed"
RELEASE_ACTION = "asset.released"
DECISION_ACTION = "review.decided"
NOTE_MAX = 5_000
# How long a claim lasts without a decision or a release.
CLAIM_MINUTES = 60


@dataclass
class Note:
    """One note and the replies to it (oldest first), as the audit event recorded it."""

    note_id: int
    asset_id: int
    author: str
    role: str
    written_at: str
    text: str
    reply_to: int | None
    replies: list[Note] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "note_id": self.note_id,
            "asset_id": self.asset_id,
            "author": self.author,
            "role": self.role,
            "written_at": self.written_at,
            "text": self.text,
            "reply_to": self.reply_to,
            "replies": [reply.to_json() for reply in self.replies],
        }


@dataclass(frozen=True)
class Claim:
    """Who is on an asset, since when, and until when the claim lasts."""

    asset_id: int
    claimed_by: str
    since: str
    until: str

    def to_json(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "claimed_by": self.claimed_by,
            "since": self.since,
            "until": self.until,
        }


def check_note(text: str) -> str:
    return written_text(text, "note", "a note needs some text", NOTE_MAX)


def add_note(
    workspace: Workspace,
    ref: str,
    text: str,
    *,
    user: UserInfo | None = None,
    reply_to: int | None = None,
) -> Note:
    """Add ``user``'s note (the acting user's when None) to the asset, or a reply to one of
    its notes; return it."""
    body = check_note(text)
    author = user if user is not None else workspace.acting_user()
    with write_transaction(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        if author.role == "artist" and asset.registered_by != author.name:
            raise AccessDenied("an artist writes notes on the assets they registered only")
        subject = f"asset:{asset.id}"
        if reply_to is not None:
            parent = session.get(AuditEvent, reply_to)
            if parent is None or parent.action != NOTE_ACTION or parent.subject != subject:
                raise NotFound(f"asset {asset.id} has no note #{reply_to}")
        audit.append_event(
            session,
            actor=author.name,
            action=NOTE_ACTION,
            subject=subject,
            payload={"text": body, "role": author.role, "reply_to": reply_to},
        )
        event = session.get(AuditEvent, audit.head(session)[0])  # the one just appended
        assert event is not None
        return _note(asset.id, event)


def notes(workspace: Workspace, ref: str) -> list[Note]:
    """The asset's notes as threads: each note that answers none, oldest first, with its
    replies (and theirs) beneath it."""
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject == f"asset:{asset.id}", AuditEvent.action == NOTE_ACTION)
            .order_by(AuditEvent.id)
        ).all()
        found = [_note(asset.id, event) for event in events]
    by_id = {note.note_id: note for note in found}
    threads = []
    for note in found:
        parent = by_id.get(note.reply_to) if note.reply_to is not None else None
        if parent is None:
            threads.append(note)
        else:
            parent.replies.append(note)
    return threads


def _note(asset_id: int, event: AuditEvent) -> Note:
    payload = json.loads(event.payload)
    return Note(
        note_id=event.id,
        asset_id=asset_id,
        author=event.actor,
        role=str(payload.get("role", "")),
        written_at=event.occurred_at,
        text=str(payload.get("text", "")),
        reply_to=payload.get("reply_to"),
    )


def claim(workspace: Workspace, asset_id: int, *, user: UserInfo) -> Claim:
    """Claim the asset for ``user`` (renewing their own claim); Conflict while someone
    else's claim lasts, AccessDenied when ``user`` may not decide the asset now."""
    with write_transaction(workspace.engine) as session:
        asset = repository.find_asset(session, str(asset_id))
        if asset.registered_by == user.name:
            raise AccessDenied(
                f"{user.name!r} registered asset {asset.id}: someone else reviews it"
            )
        state = repository.asset_state(session, asset.id)
        outcome_for(user.role, "approve" if user.role == "legal" else "escalate", state, asset.id)
        standing = _claims(session, [asset.id], _now()).get(asset.id)
        if standing is not None and standing.claimed_by != user.name:
            raise Conflict(
                f"{standing.claimed_by} has claimed asset {asset.id} since "
                f"{_clock(standing.since)} (until {_clock(standing.until)}, or their decision)"
            )
        audit.append_event(
            session,
            actor=user.name,
            action=CLAIM_ACTION,
            subject=f"asset:{asset.id}",
            payload={"role": user.role, "minutes": CLAIM_MINUTES},
        )
        made = _claims(session, [asset.id], _now()).get(asset.id)
        assert made is not None  # just claimed
        return made


def release(workspace: Workspace, asset_id: int, *, user: UserInfo) -> None:
    """End ``user``'s claim on the asset (an admin may end anyone's)."""
    with write_transaction(workspace.engine) as session:
        asset = repository.find_asset(session, str(asset_id))
        standing = _claims(session, [asset.id], _now()).get(asset.id)
        if standing is None:
            raise Conflict(f"asset {asset.id} is not claimed")
        if standing.claimed_by != user.name and user.role != "admin":
            raise AccessDenied(f"asset {asset.id} is claimed by {standing.claimed_by}, not you")
        audit.append_event(
            session,
            actor=user.name,
            action=RELEASE_ACTION,
            subject=f"asset:{asset.id}",
            payload={"claimed_by": standing.claimed_by},
        )


def claims(workspace: Workspace, asset_ids: Iterable[int]) -> dict[int, Claim]:
    """The live claims on these assets, by asset id."""
    with read_session(workspace.engine) as session:
        return _claims(session, list(asset_ids), _now())


def _claims(session: Session, asset_ids: list[int], now: dt.datetime) -> dict[int, Claim]:
    found: dict[int, Claim] = {}
    for start in range(0, len(asset_ids), 500):
        subjects = [f"asset:{n}" for n in asset_ids[start : start + 500]]
        newest: dict[str, AuditEvent] = {}
        for event in session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.subject.in_(subjects),
                AuditEvent.action.in_((CLAIM_ACTION, RELEASE_ACTION, DECISION_ACTION)),
            )
            .order_by(AuditEvent.id)
        ):
            newest[event.subject] = event
        for subject, event in newest.items():
            if event.action != CLAIM_ACTION:
                continue
            since = dt.datetime.fromisoformat(event.occurred_at)
            until = since + dt.timedelta(minutes=CLAIM_MINUTES)
            if until <= now:
                continue
            asset_id = int(subject.split(":", 1)[1])
            found[asset_id] = Claim(asset_id, event.actor, since.isoformat(), until.isoformat())
    return found


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _clock(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%H:%M UTC")
