"""reference sets and checks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rights_status", sa.String(length=32), nullable=False),
        sa.Column("rights_holder", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "reference_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("attribution", sa.Text(), nullable=True),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["reference_sets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("set_id", "sha256"),
    )
    with op.batch_alter_table("reference_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reference_items_set_id"), ["set_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reference_items_sha256"), ["sha256"], unique=False)

    op.create_table(
        "checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("detectors", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("reference_sets", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checks_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checks_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_checks_verdict"), ["verdict"], unique=False)

    op.create_table(
        "reference_vectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["reference_items.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "spec"),
    )
    with op.batch_alter_table("reference_vectors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reference_vectors_item_id"), ["item_id"], unique=False)

    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=False),
        sa.Column("reference_item_id", sa.Integer(), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["checks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reference_item_id"],
            ["reference_items.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matches_check_id"), ["check_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_matches_reference_item_id"), ["reference_item_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_reference_item_id"))
        batch_op.drop_index(batch_op.f("ix_matches_check_id"))

    op.drop_table("matches")
    with op.batch_alter_table("reference_vectors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_vectors_item_id"))

    op.drop_table("reference_vectors")
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_verdict"))
        batch_op.drop_index(batch_op.f("ix_checks_created_at"))
        batch_op.drop_index(batch_op.f("ix_checks_asset_id"))

    op.drop_table("checks")
    with op.batch_alter_table("reference_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_items_sha256"))
        batch_op.drop_index(batch_op.f("ix_reference_items_set_id"))

    op.drop_table("reference_items")
    op.drop_table("reference_sets")
