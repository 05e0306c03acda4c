"""human revisions of assets, server-side web sessions, the check an approval saw,
tool names unique whatever their case, rows vouched for by the audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("revised_by", sa.String(length=200), nullable=False),
        sa.Column("how", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_revisions_asset_id", "revisions", ["asset_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("check_id", sa.Integer(), nullable=True))
    merged = _merge_tools_differing_in_case()
    _vouch_for_existing_rows(merged)


def _merge_tools_differing_in_case() -> list[list[Any]]:
    """Tools whose names differ only in case (made by a race before names were unique
    that way) become one: the oldest; its assets and vettings are the merged ones'."""
    bind = op.get_bind()
    # Plain ADD COLUMN and CREATE INDEX: rebuilding the table (SQLite's batch mode) would
    # break the foreign keys that point at it.
    op.add_column("tools", sa.Column("name_key", sa.String(length=200), nullable=True))
    kept: dict[str, int] = {}
    merged: list[list[Any]] = []
    for tool_id, name in bind.execute(sa.text("SELECT id, name FROM tools ORDER BY id")).all():
        key = name.strip().casefold()
        if key not in kept:
            kept[key] = tool_id
            bind.execute(
                sa.text("UPDATE tools SET name_key = :key WHERE id = :id"),
                {"key": key, "id": tool_id},
            )
            continue
        into = kept[key]
        for table in ("generation_records", "tool_profiles"):
            bind.execute(
                sa.text(f"UPDATE {table} SET tool_id = :into WHERE tool_id = :id"),
                {"into": into, "id": tool_id},
            )
        bind.execute(sa.text("DELETE FROM tools WHERE id = :id"), {"id": tool_id})
        merged.append([tool_id, name, into])
    op.create_index("ix_tools_name_key", "tools", ["name_key"], unique=True)
    return merged


def _vouch_for_existing_rows(merged_tools: list[list[Any]]) -> None:
    """From this revision on, every row's audit event holds the row's digest; the rows of a
    workspace written before are vouched for by one event, as they are now."""
    from sqlalchemy.orm import Session

    from provenance.db import audit, row_audit

    bind = op.get_bind()
    session = Session(bind=bind)
    if session.execute(sa.text("SELECT count(*) FROM audit_head")).scalar_one() == 0:
        return  # a new workspace: its chain starts after the migrations
    inspector = sa.inspect(bind)
    columns = {
        name: [c["name"] for c in inspector.get_columns(name)] for name in row_audit.COVERED_TABLES
    }
    rows = row_audit.all_rows(session, columns)
    audit.append_event(
        session,
        actor="provenance",
        action="audit.rows_adopted",
        subject="workspace",
        payload={"schema_revision": revision, "merged_tools": merged_tools, "rows": rows},
    )
    session.flush()


def downgrade() -> None:
    op.drop_index("ix_tools_name_key", table_name="tools")
    with op.batch_alter_table("tools") as batch:
        batch.drop_column("name_key")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("check_id")
    op.drop_index("ix_web_sessions_user_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_revisions_asset_id", table_name="revisions")
    op.drop_table("revisions")
