"""each asset's review status kept in asset_states, filled for the assets recorded before;
audit_checkpoints, where incremental audit verification starts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from provenance.review_rules import queue_keys, status_of

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CHUNK = 1000


class _Review:
    """The fields of a decision the status rules read."""

    def __init__(self, row: Any) -> None:
        self.id, self.seq, self.check_verdict, self.outcome = row


def upgrade() -> None:
    states = op.create_table(
        "asset_states",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("last_review_id", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"]),
        sa.PrimaryKeyConstraint("asset_id"),
    )
    assert states is not None
    op.create_index(
        "ix_asset_states_queue", "asset_states", ["status", "rank", "strength", "asset_id"]
    )
    op.create_index("ix_asset_states_age", "asset_states", ["status", "check_id"])
    op.create_index("ix_asset_states_verdict", "asset_states", ["verdict"])
    _fill(states)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_hash", sa.String(length=64), nullable=False),
        sa.Column("row_ids", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_checkpoints_event_id", "audit_checkpoints", ["event_id"])


def _fill(states: sa.Table) -> None:
    """The status of every asset recorded before this table, by the rules that keep it."""
    bind = op.get_bind()
    asset_ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM assets ORDER BY id"))]
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = asset_ids[start : start + _CHUNK]
        checks = {
            asset_id: (check_id, verdict, reasons)
            for asset_id, check_id, verdict, reasons in bind.execute(
                sa.text(
                    "SELECT c.asset_id, c.id, c.verdict, c.reasons FROM checks c WHERE c.id IN "
                    "(SELECT max(id) FROM checks WHERE asset_id IN :ids GROUP BY asset_id)"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": chunk},
            )
        }
        reviews = {
            row[0]: _Review(row[1:])
            for row in bind.execute(
                sa.text(
                    "SELECT r.asset_id, r.id, r.seq, r.check_verdict, r.outcome FROM reviews r "
                    "JOIN (SELECT asset_id, max(seq) AS seq FROM reviews WHERE asset_id IN :ids "
                    "GROUP BY asset_id) newest "
                    "ON newest.asset_id = r.asset_id AND newest.seq = r.seq"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": chunk},
            )
        }
        rows = []
        for asset_id in chunk:
            check_id, verdict, reasons = checks.get(asset_id, (None, None, None))
            if isinstance(reasons, str):
                reasons = json.loads(reasons)
            state = status_of(verdict, check_id, reviews.get(asset_id))
            rank, strength = queue_keys(verdict, reasons)
            rows.append(
                {
                    "asset_id": asset_id,
                    "status": state.status,
                    "reopened": state.reopened,
                    "check_id": state.check_id,
                    "verdict": state.verdict,
                    "last_review_id": state.last_review_id,
                    "rank": rank,
                    "strength": strength,
                }
            )
        if rows:
            op.bulk_insert(states, rows)


def downgrade() -> None:
    op.drop_index("ix_audit_checkpoints_event_id", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_asset_states_verdict", table_name="asset_states")
    op.drop_index("ix_asset_states_age", table_name="asset_states")
    op.drop_index("ix_asset_states_queue", table_name="asset_states")
    op.drop_table("asset_states")
