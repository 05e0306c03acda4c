"""Looking after a workspace: store gc, audit verify, db status and upgrade."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provenance import (
    admin,
)
from provenance.cli import _common as common
from provenance.workspace import upgrade_database


@click.group("store")
def store_group() -> None:
    """The content store: stored copies of registered files and documents."""


@store_group.command("gc")
@click.option(
    "--min-age",
    type=click.FloatRange(min=0, max=10**9),
    default=3600,
    show_default=True,
    help="Only remove files at least this many seconds old (younger ones may belong to a "
    "registration in progress).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.store-gc/1).")
@common.pass_context
@common.fail_cleanly
def store_gc(context: common.Context, min_age: float, as_json: bool) -> None:
    """Remove stored copies no record names, temporary files of killed writes, and cached
    local features no reference needs.

    A registration that fails after storing its copy removes it again, unless the database
    stays locked past the busy timeout; such copies, and the temporary files of a killed
    process, are what this removes.
    """
    with context.open() as workspace:
        report = admin.collect_garbage(workspace, min_age_seconds=min_age)
    if as_json:
        common.print_json(report.to_json())
        return
    click.echo(
        f"Removed {len(report.removed_blobs)} unreferenced copies, "
        f"{report.removed_temporaries} temporary files and {report.removed_features} "
        f"cached feature files; {report.referenced} copies are in use, "
        f"{report.kept_young} unreferenced ones are younger than --min-age."
    )


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option(
    "--anchors",
    "anchors_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also compare the log with every anchor in this file (setting audit_anchors): "
    "finds a log rewritten, or cut and its head row rewritten, since each anchor.",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="Verify only what was written since the last successful verify (its checkpoint): "
    "the new events, the rows they vouch for, rows added since and the statuses of the "
    "assets they name. A daily run; keep a full verify (the default) weekly.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def audit_verify(
    context: common.Context, anchors_file: Path | None, incremental: bool, as_json: bool
) -> None:
    """Check every audit event against the one before it, and every record against the
    event vouching for it; exit 1 naming the first bad one."""
    with context.open() as workspace:
        report = admin.verify_audit(workspace, anchors_file, incremental=incremental)
    if as_json:
        common.print_json(report.to_json())
        if not report.ok:
            sys.exit(1)
        return
    if not report.ok:
        raise click.ClickException(f"audit chain broken: {report.message}")
    click.echo(f"Audit chain OK: {report.message}.")


@audit.command("anchor")
@click.option("--reason", default="anchor", show_default=True, help="Why, written with it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.audit-anchor/1).")
@common.pass_context
@common.fail_cleanly
def audit_anchor(context: common.Context, reason: str, as_json: bool) -> None:
    """Write the log's head (event number and hash), signed with the studio's key, to the
    anchors file outside the database (setting audit_anchors). Every export does too."""
    from provenance import signatures

    with context.open() as workspace:
        anchor = signatures.anchor_audit(workspace, reason)
        path = signatures.anchors_path(workspace)
    if as_json:
        common.print_json(anchor.to_json())
        return
    signed = "signed" if anchor.signature is not None else "unsigned (no studio key)"
    click.echo(f"Anchored event {anchor.event} ({anchor.hash[:16]}), {signed}, in {path}.")


@click.group()
def db() -> None:
    """The workspace database's schema."""


@db.command("status")
@common.pass_context
@common.fail_cleanly
def db_status(context: common.Context) -> None:
    """Print the database URL and schema revision."""
    with context.open() as workspace:
        status = admin.database_status(workspace)
    click.echo(f"database: {status.url}")
    click.echo(f"schema revision: {status.revision} (this code: {status.code_revision})")


@db.command("upgrade")
@common.pass_context
@common.fail_cleanly
def db_upgrade(context: common.Context) -> None:
    """Upgrade the database schema to this version of provenance."""
    revision = upgrade_database(context.workspace_dir)
    click.echo(f"Database schema at revision {revision}.")
