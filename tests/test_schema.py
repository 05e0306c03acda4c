"""Schema versions: migrations match the tables, and mismatched databases are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from provenance.db import schema
from provenance.db.tables import Base
from tests.conftest import run


def test_code_head_is_alembic_head() -> None:
    assert ScriptDirectory(str(schema.MIGRATIONS_DIR)).get_current_head() == schema.SCHEMA_HEAD


def test_migrated_schema_matches_the_tables(workspace_dir: Path) -> None:
    engine = create_engine(f"sqlite:///{workspace_dir / 'provenance.db'}")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_newer_schema_is_refused(workspace_dir: Path) -> None:
    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
    result = run("-w", workspace_dir, "list")
    assert result.exit_code == 1
    assert "newer than this version of provenance understands" in result.stderr


def test_older_schema_without_auto_upgrade_says_what_to_run(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand in for the next release of the code: its head is one revision past the database's.
    monkeypatch.setattr(schema, "SCHEMA_HEAD", "0002")
    monkeypatch.setattr(schema, "known_revisions", lambda: ["0001", "0002"])
    result = run("-w", workspace_dir, "list", env={"PROVENANCE_AUTO_UPGRADE": "false"})
    assert result.exit_code == 1
    assert "run `provenance db upgrade`" in result.stderr


def test_database_without_schema_is_refused(workspace_dir: Path) -> None:
    (workspace_dir / "provenance.db").unlink()
    for suffix in ("-wal", "-shm"):
        (workspace_dir / f"provenance.db{suffix}").unlink(missing_ok=True)
    result = run("-w", workspace_dir, "list")
    assert result.exit_code == 1
    assert "has no provenance schema" in result.stderr


def test_db_status_and_upgrade(workspace_dir: Path) -> None:
    status = run("-w", workspace_dir, "db", "status")
    assert "schema revision: 0001 (this code: 0001)" in status.stdout
    upgrade = run("-w", workspace_dir, "db", "upgrade")
    assert upgrade.exit_code == 0
    assert "revision 0001" in upgrade.stdout
