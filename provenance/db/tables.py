"""The tables, as SQLAlchemy 2.0 typed ORM classes.

Schema changes go through Alembic migrations in ``migrations/versions``; a test fails when
these classes and the migrated schema differ. Rows whose history matters are never updated
in place: a correction is a new row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Production(Base):
    __tablename__ = "productions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Tool(Base):
    """A generative tool, by name. How it handles inputs is in its vettings
    (``ToolProfile``, newest holds; none: unknown)."""

    __tablename__ = "tools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The name case-folded (repository.tool_key): "ComfyUI" and "comfyui" are one tool, and
    # two artists naming it first at the same moment cannot make two. Always set; nullable
    # only because migration 0006 added it to a table it could not rebuild.
    name_key: Mapped[str | None] = mapped_column(String(200), unique=True, index=True)
    # Unused since migration 0005 moved vetting into tool_profiles: always "unknown", never
    # read. Dropping them needs ALTER TABLE ... DROP COLUMN (SQLite 3.35+) or, on older
    # SQLite, a table rebuild with foreign keys switched off outside the migration's
    # transaction; until a migration does that, they stay, with their default.
    stores_inputs: Mapped[str] = mapped_column(String(16), default="unknown")
    trains_on_inputs: Mapped[str] = mapped_column(String(16), default="unknown")
    enterprise_secured: Mapped[str] = mapped_column(String(16), default="unknown")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Asset(Base):
    """One registered file, identified by the sha256 of its bytes."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(Text)
    store_path: Mapped[str] = mapped_column(Text)
    media: Mapped[dict[str, Any]] = mapped_column()
    intended_use: Mapped[str] = mapped_column(String(32), index=True)
    production_id: Mapped[int | None] = mapped_column(ForeignKey("productions.id"), index=True)
    registered_by: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    production: Mapped[Production | None] = relationship()
    generation_records: Mapped[list[GenerationRecord]] = relationship(
        back_populates="asset", order_by="GenerationRecord.id"
    )
    fingerprints: Mapped[list[FingerprintRow]] = relationship(
        back_populates="asset", order_by="FingerprintRow.id"
    )
    checks: Mapped[list[Check]] = relationship(order_by="Check.id", viewonly=True)
    reviews: Mapped[list[Review]] = relationship(order_by="Review.seq", viewonly=True)


class AssetState(Base):
    """An asset's review status as it stands, one row per asset: the queue and the filters
    read it instead of working the status out from every asset's checks and decisions.

    Derived data: ``repository.settle_state`` rewrites it in the transaction that records
    the check or the decision that moves it (and registration writes the first), and
    ``audit verify`` works every asset's status out again and compares. ``rank`` and
    ``strength`` are the queue's strongest-first keys (``review_rules.queue_keys``)."""

    __tablename__ = "asset_states"
    __table_args__ = (
        Index("ix_asset_states_queue", "status", "rank", "strength", "asset_id"),
        Index("ix_asset_states_age", "status", "check_id"),
    )

    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
    # Plain numbers, no foreign keys: a derived row must never stand in the way of
    # what it is derived from (audit verify finds a state that no longer follows).
    check_id: Mapped[int | None] = mapped_column(Integer)
    verdict: Mapped[str | None] = mapped_column(String(16), index=True)
    last_review_id: Mapped[int | None] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    strength: Mapped[float] = mapped_column(Float, default=0.0)


class GenerationRecord(Base):
    """How an asset was made. ``sources`` maps each field and setting to where it came from."""

    __tablename__ = "generation_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    tool_id: Mapped[int | None] = mapped_column(ForeignKey("tools.id"), index=True)
    tool_version: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(Text)
    model_hash: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    # Text, not an integer column: ComfyUI seeds reach 2**64 - 1, past SQL's BIGINT.
    seed: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column()
    sources: Mapped[dict[str, Any]] = mapped_column()
    raw_metadata: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="generation_records")
    tool: Mapped[Tool | None] = relationship()


class FingerprintRow(Base):
    """An exact or perceptual hash (later: an embedding reference) with its spec."""

    __tablename__ = "fingerprints"
    __table_args__ = (Index("ix_fingerprints_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    bits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="fingerprints")


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log.

    ``hash`` is the sha256 of the event's canonical form, which includes ``prev_hash``;
    ``prev_hash`` is unique, so the log can never fork into two chains.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The newest event's id and hash, so that deleting the last events is detected."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """Where a successful ``audit verify`` reached: the head it verified (event and hash)
    and the highest row id of every covered table then. An incremental verify starts from
    the newest checkpoint whose event still has that hash, so it costs the events written
    since; a full verify (the default) reads everything again."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)
    event_hash: Mapped[str] = mapped_column(String(64))
    # {"format": "provenance.audit-checkpoint/1", "rows": {table: highest id}}
    row_ids: Mapped[dict[str, Any]] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))  # full or incremental
    made_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class User(Base):
    """Someone who registers, reviews or decides, with one role. Only the sha256 of a
    token is stored; a disabled user keeps the row, so past decisions still name them."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_issued_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column()


class ReferenceSet(Base):
    """Material the production must not recreate (or owns), with its rights status."""

    __tablename__ = "reference_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rights_status: Mapped[str] = mapped_column(String(32))
    rights_holder: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A removed set keeps its rows: old checks still name its items.
    removed_at: Mapped[dt.datetime | None] = mapped_column()

    items: Mapped[list[ReferenceItem]] = relationship(
        back_populates="reference_set", order_by="ReferenceItem.id"
    )


class ReferenceItem(Base):
    """One reference image; its bytes are in the content store under ``sha256``."""

    __tablename__ = "reference_items"
    __table_args__ = (UniqueConstraint("set_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("reference_sets.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    attribution: Mapped[str | None] = mapped_column(Text)
    media: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    reference_set: Mapped[ReferenceSet] = relationship(back_populates="items")


class ReferenceVector(Base):
    """A reference item's vector under one detector spec (kept so indexes can be rebuilt
    and interrupted ingestion resumed)."""

    __tablename__ = "reference_vectors"
    __table_args__ = (UniqueConstraint("item_id", "spec"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("reference_items.id"), index=True)
    detector: Mapped[str] = mapped_column(String(32))
    spec: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Check(Base):
    """One similarity check of an asset: what ran, against what, with which thresholds,
    and the verdict with its reasons. A re-check is a new row."""

    __tablename__ = "checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(16), index=True)
    detectors: Mapped[dict[str, Any]] = mapped_column()
    thresholds: Mapped[dict[str, Any]] = mapped_column()
    reference_sets: Mapped[dict[str, Any]] = mapped_column()
    reasons: Mapped[dict[str, Any]] = mapped_column()

    matches: Mapped[list[Match]] = relationship(back_populates="check", order_by="Match.id")


class Match(Base):
    """A candidate reference item found by a check (top-k per set and detector)."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    reference_item_id: Mapped[int] = mapped_column(ForeignKey("reference_items.id"), index=True)
    detector: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    # The frame of a movie or frame sequence the match was found in; None for a still.
    frame: Mapped[int | None] = mapped_column(Integer, default=None)

    check: Mapped[Check] = relationship(back_populates="matches")


class Review(Base):
    """One review decision on an asset. Never updated: a later decision supersedes it.

    ``seq`` numbers an asset's decisions 1, 2, ...; (asset_id, seq) is unique, so of two
    reviewers deciding on the same state at once exactly one insert succeeds. ``evidence``
    is what the check showed when the decision was made (verdict, reasons, matches).
    """

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("asset_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id"), index=True)
    check_verdict: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(24), index=True)
    rationale: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    evidence: Mapped[dict[str, Any]] = mapped_column()


class ToolProfile(Base):
    """A vetting of a tool's data handling. Never updated: the newest profile is current."""

    __tablename__ = "tool_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id"), index=True)
    vendor: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(Text)
    stores_inputs: Mapped[str] = mapped_column(String(16))
    trains_on_inputs: Mapped[str] = mapped_column(String(16))
    enterprise_secured: Mapped[str] = mapped_column(String(16))
    terms_url: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """A performer's consent to a use of their likeness, voice or performance; the signed
    document's bytes are in the content store under ``document_sha256``."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    talent: Mapped[str] = mapped_column(String(200), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    production_id: Mapped[int | None] = mapped_column(ForeignKey("productions.id"))
    document_sha256: Mapped[str] = mapped_column(String(64))
    document_name: Mapped[str] = mapped_column(Text)
    expires: Mapped[dt.date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    production: Mapped[Production | None] = relationship()


class Approval(Base):
    """A written approval from the studio contact for one asset. ``covers`` lists what made
    approval necessary when it was given (intended use, matches, tool, personal data)."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    approver: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(Text)
    document_sha256: Mapped[str] = mapped_column(String(64))
    document_name: Mapped[str] = mapped_column(Text)
    covers: Mapped[dict[str, Any]] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The check the approver saw (None before migration 0006): what ``covers`` came from.
    check_id: Mapped[int | None] = mapped_column(Integer)


class Withdrawal(Base):
    """The withdrawal of a consent or an approval (which themselves stay as they were)."""

    __tablename__ = "withdrawals"
    __table_args__ = (UniqueConstraint("subject_kind", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Declaration(Base):
    """Facts declared about an asset after registration: personal data, an expiry date for
    temporary material, the talent depicted. The newest value of each field holds."""

    __tablename__ = "declarations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    personal_data: Mapped[bool | None] = mapped_column(Boolean)
    expires: Mapped[dt.date | None] = mapped_column(Date)
    talent: Mapped[dict[str, Any] | None] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Revision(Base):
    """Human work done on a generated asset: who revised it and how. Never updated."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    revised_by: Mapped[str] = mapped_column(String(200))
    how: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser session. The cookie names the row; signing out, disabling the
    user or a new token deletes it, so a copied cookie stops working at once."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
