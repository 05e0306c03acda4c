from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from provenance import admin
from provenance.cli import cli
from provenance.workspace import Workspace


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the PROVENANCE_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("PROVENANCE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    Workspace.create(directory).close()
    return directory


# The URL of a PostgreSQL role allowed to create databases (scripts/postgres.sh prints one).
POSTGRES_ENV = "TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (the workspace's own SQLite file), then a fresh database on a real PostgreSQL
    server, dropped afterwards. Without TEST_POSTGRES_URL the PostgreSQL runs are skipped,
    except in CI, where that is a failure."""
    if request.param == "sqlite":
        yield None
        return
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: CI must test PostgreSQL")
        pytest.skip(f"set {POSTGRES_ENV} (bash scripts/postgres.sh prints one) to test PostgreSQL")
    name = "pvt_" + uuid.uuid4().hex[:16]
    admin = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            _drop_database(engine, name)
        finally:
            engine.dispose()


def _drop_database(engine: Any, name: str) -> None:
    """Drop a test database. FORCE ends its sessions; an autovacuum worker that has just
    started on it may need a moment (or pg_signal_backend, which scripts/postgres.sh grants)."""
    for attempt in range(10):
        try:
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 9:
                raise
            time.sleep(0.5)


@pytest.fixture
def db_workspace_dir(tmp_path: Path, database_url: str | None) -> Path:
    """A workspace on SQLite, then on PostgreSQL: for tests of what the database holds."""
    directory = tmp_path / "ws"
    Workspace.create(directory, database_url=database_url).close()
    return directory


def sql(workspace_dir: Path, statement: str, **params: Any) -> list[Any]:
    """Run SQL on a workspace's database, whichever it is (for tests that tamper or look)."""
    with Workspace.open(workspace_dir) as opened, opened.engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def dump(workspace_dir: Path) -> str:
    """Every row of every table of a workspace's database, as text."""
    from provenance.db.tables import Base

    with Workspace.open(workspace_dir) as opened, opened.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(table.select())
        )


@pytest.fixture
def workspace(workspace_dir: Path) -> Iterator[Workspace]:
    with Workspace.open(workspace_dir) as opened:
        yield opened


def run(*args: Any, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process, as a user would type it."""
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def run_json(*args: Any) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def snapshot(workspace_dir: Path) -> dict[str, Any]:
    """Everything a failed command must leave unchanged: row counts and stored files."""
    with Workspace.open(workspace_dir) as workspace:
        counts = admin.row_counts(workspace)
    store = sorted(
        p.relative_to(workspace_dir).as_posix() for p in (workspace_dir / "store").rglob("*")
    )
    return {"rows": counts, "store": store}
