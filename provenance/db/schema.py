"""Schema versions: creating, checking and upgrading the database through Alembic.

Checking is cheap (one query for ``alembic_version``); Alembic itself is imported only when
a migration has to run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from provenance.errors import SchemaOutdated, SchemaTooNew, WorkspaceError

logger = logging.getLogger(__name__)

# The newest revision in migrations/versions; a test checks it against Alembic's head.
SCHEMA_HEAD = "0008"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, or None for a database without a schema."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])


def known_revisions() -> list[str]:
    """Every revision this code can migrate to, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run migrations up to ``revision`` on ``engine``'s database."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_current(engine: Engine, *, auto_upgrade: bool) -> None:
    """Make sure the schema is this code's; upgrade an older one when allowed."""
    revision = current_revision(engine)
    if revision == SCHEMA_HEAD:
        return
    if revision is None:
        raise WorkspaceError(
            "the database has no provenance schema; run `provenance init` to create a workspace"
        )
    if revision not in known_revisions():
        raise SchemaTooNew(
            f"the database schema ({revision}) is newer than this version of provenance "
            f"understands ({SCHEMA_HEAD}); upgrade provenance"
        )
    if not auto_upgrade:
        raise SchemaOutdated(
            f"the database schema is at {revision}, this code needs {SCHEMA_HEAD}; "
            "run `provenance db upgrade`"
        )
    logger.info("upgrading database schema from %s to %s", revision, SCHEMA_HEAD)
    upgrade(engine)
