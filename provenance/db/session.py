"""Engines and transactions.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, and every
write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up front, so two
processes never both read the audit chain's head and then both try to extend it.

PostgreSQL (psycopg 3) runs at READ COMMITTED: writers serialise on the audit head row
(``SELECT ... FOR UPDATE``), and unique keys (an asset's sha256, a decision's place in its
asset's history) decide races, which the callers turn into "already there" or a conflict.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session

from provenance.db import row_audit
from provenance.errors import ConfigError, DatabaseBusy

_BEGIN_OPTION = "provenance_sqlite_begin"


def resolve_database_url(url: str, workspace_dir: Path) -> str:
    """Make a relative SQLite path relative to the workspace; check the URL's form.

    A value without a scheme (``records/provenance.db``) is taken as a SQLite file path.
    """
    if "://" not in url and url.strip() and url.strip() != ":memory:":
        path = Path(url.strip()).expanduser()
        return "sqlite:///" + str(path if path.is_absolute() else workspace_dir / path)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database_url {url!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            raise ConfigError("database_url must name a SQLite file, not an in-memory database")
        path = Path(database)
        if not path.is_absolute():
            path = workspace_dir / path
        return parsed.set(database=str(path)).render_as_string(hide_password=False)
    if parsed.get_backend_name() == "postgresql":
        # psycopg 3 whatever driver the URL named: the one this code is tested with.
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ConfigError(f"database_url {url!r}: only SQLite and PostgreSQL URLs are supported")


def create_database_engine(url: str, *, busy_timeout_seconds: float) -> Engine:
    """An engine for ``url`` with the connection settings the workspace relies on."""
    busy_ms = int(busy_timeout_seconds * 1000)
    if url.startswith("postgresql"):
        # lock_timeout plays SQLite's busy timeout: a writer waiting longer for a lock
        # (the audit head, a row) gives up with DatabaseBusy instead of hanging.
        return create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10, "options": f"-c lock_timeout={busy_ms}"},
        )
    engine = create_engine(url, connect_args={"timeout": busy_timeout_seconds})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, instead of pysqlite's own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits at the end of the block or rolls back on any error."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection = connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                row_audit.track(session)
                yield session
                if row_audit.pending(session):
                    # A programming error, not a user's: every write names its audit event.
                    raise RuntimeError("rows were written after the transaction's audit event")
    except OperationalError as exc:
        text = str(exc.orig)
        if "locked" in text or "busy" in text or "lock timeout" in text:
            raise DatabaseBusy(
                "the database stayed locked by another writer past the busy timeout "
                "(setting busy_timeout_seconds); try again or raise the timeout"
            ) from None
        raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading; anything it wrote is discarded."""
    with Session(bind=engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


def one_line(exc: Exception) -> str:
    """An unexpected error as one line: the database's own words, not the SQL and its
    parameters (which would repeat the prompt)."""
    return f"unexpected error ({type(_detail(exc)).__name__}): {driver_message(exc)}"


def driver_message(exc: Exception) -> str:
    """The first line of the database driver's own message (libpq adds hints below it;
    SQLAlchemy's wrapper adds the SQL), or of any other error's."""
    return (str(_detail(exc)).strip().splitlines() or [""])[0]


def _detail(exc: Exception) -> BaseException:
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
