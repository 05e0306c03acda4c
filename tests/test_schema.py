"""Schema versions: migrations match the tables, and mismatched databases are refused."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

from provenance.config import WORKSPACE_FILE, load_settings, read_workspace_file
from provenance.db import schema
from provenance.db.session import resolve_database_url
from provenance.db.tables import Base
from tests import filemakers as fm
from tests.conftest import run, sql


def _engine(workspace_dir: Path) -> Engine:
    """An engine on the workspace's database that runs no migration when it connects."""
    settings = load_settings(read_workspace_file(workspace_dir / WORKSPACE_FILE))
    return create_engine(resolve_database_url(settings["database_url"], workspace_dir))


def _revision(workspace_dir: Path) -> str | None:
    engine = _engine(workspace_dir)
    try:
        return schema.current_revision(engine)
    finally:
        engine.dispose()


def test_code_head_is_alembic_head() -> None:
    assert ScriptDirectory(str(schema.MIGRATIONS_DIR)).get_current_head() == schema.SCHEMA_HEAD


def test_migrated_schema_matches_the_tables(db_workspace_dir: Path) -> None:
    engine = _engine(db_workspace_dir)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_newer_schema_is_refused(workspace_dir: Path) -> None:
    sql(workspace_dir, "UPDATE alembic_version SET version_num = '0099'")
    result = run("-w", workspace_dir, "list")
    assert result.exit_code == 1
    assert "newer than this version of provenance understands" in result.stderr


def _downgrade(workspace_dir: Path, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS_DIR))
    engine = _engine(workspace_dir)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    engine.dispose()


def test_an_older_database_is_upgraded_on_open_and_keeps_its_records(
    db_workspace_dir: Path,
) -> None:
    workspace_dir = db_workspace_dir
    registered = run("-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg", "--json")
    assert registered.exit_code == 0
    _downgrade(workspace_dir, "0001")
    assert _revision(workspace_dir) == "0001"

    refused = run("-w", workspace_dir, "list", env={"PROVENANCE_AUTO_UPGRADE": "false"})
    assert refused.exit_code == 1
    assert "schema is at 0001" in refused.stderr
    assert "run `provenance db upgrade`" in refused.stderr

    listed = run("-w", workspace_dir, "list", "--json")
    assert listed.exit_code == 0
    assert [a["original_name"] for a in json.loads(listed.stdout)["assets"]] == ["coffee.jpg"]
    assert sql(workspace_dir, "SELECT version_num FROM alembic_version") == [(schema.SCHEMA_HEAD,)]
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def test_db_upgrade_command_upgrades(workspace_dir: Path) -> None:
    _downgrade(workspace_dir, "0001")
    result = run("-w", workspace_dir, "db", "upgrade")
    assert result.exit_code == 0
    assert f"revision {schema.SCHEMA_HEAD}" in result.stdout


def test_database_without_schema_is_refused(workspace_dir: Path) -> None:
    (workspace_dir / "provenance.db").unlink()
    for suffix in ("-wal", "-shm"):
        (workspace_dir / f"provenance.db{suffix}").unlink(missing_ok=True)
    result = run("-w", workspace_dir, "list")
    assert result.exit_code == 1
    assert "has no provenance schema" in result.stderr


def test_db_status(workspace_dir: Path) -> None:
    status = run("-w", workspace_dir, "db", "status")
    head = schema.SCHEMA_HEAD
    assert f"schema revision: {head} (this code: {head})" in status.stdout


def test_upgrading_merges_tools_whose_names_differ_only_in_case(db_workspace_dir: Path) -> None:
    """Before 0006 two artists naming a new tool at once could make "ComfyUI" and "comfyui";
    the upgrade makes them one (the oldest), keeps every asset on it, and vouches for the
    records as they then are."""
    ws = db_workspace_dir
    for name in ("coffee.jpg", "rocket.jpg"):
        result = run("-w", ws, "register", fm.SAMPLES / name, "--tool", "ComfyUI")
        assert result.exit_code == 0, result.output
    _downgrade(ws, "0005")
    engine = _engine(ws)  # not Workspace.open: that would upgrade first
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tools (name, stores_inputs, trains_on_inputs, enterprise_secured, "
                "created_at) VALUES ('comfyui', 'unknown', 'unknown', 'unknown', '2026-11-01')"
            )
        )
        connection.execute(
            text("UPDATE generation_records SET tool_id = (SELECT max(id) FROM tools) WHERE id = 2")
        )
        assert len(connection.execute(text("SELECT id FROM tools")).all()) == 2
    engine.dispose()
    assert run("-w", ws, "db", "upgrade").exit_code == 0
    assert sql(ws, "SELECT name, name_key FROM tools") == [("ComfyUI", "comfyui")]
    assert sql(ws, "SELECT DISTINCT tool_id FROM generation_records") == [(1,)]
    assert run("-w", ws, "audit", "verify").exit_code == 0
    listed = json.loads(run("-w", ws, "tools", "list", "--json").stdout)
    assert [t["name"] for t in listed["tools"]] == ["ComfyUI"]
    # And from now on, any spelling is the same tool.
    again = run("-w", ws, "register", fm.SAMPLES / "chelsea.png", "--tool", "COMFYUI")
    assert again.exit_code == 0
    assert sql(ws, "SELECT count(*) FROM tools") == [(1,)]
