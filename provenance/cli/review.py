"""Commands of reviewers: review, queue, note, notes, and serve (the API and reviewer
pages)."""

from __future__ import annotations

import click

from provenance import (
    checking,
    processes,
    reviews,
    triage,
)
from provenance.cli import _common as common
from provenance.review_rules import DECISIONS, OPEN_STATUSES, SORTS
from provenance.reviews import QueueFilter


@click.command("note")
@click.argument("ref")
@click.argument("text")
@click.option(
    "--reply-to",
    type=click.IntRange(min=1, max=common.MAX_COUNT),
    help="The note this answers (its number from `provenance notes`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the note as JSON.")
@common.pass_context
@common.fail_cleanly
def note_command(
    context: common.Context, ref: str, text: str, reply_to: int | None, as_json: bool
) -> None:
    """Add a note to asset REF for the team (or a reply to one): kept in the audit log,
    with who wrote it and when. Needs a user of the workspace: a token, or the user
    setting naming one."""
    with context.open() as workspace:
        made = triage.add_note(workspace, ref, text, reply_to=reply_to)
    if as_json:
        common.print_json({"schema": "provenance.note/1", **made.to_json()})
        return
    click.echo(f"note #{made.note_id} on asset {made.asset_id} by {made.author}")


@click.command("notes")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the threads as JSON.")
@common.pass_context
@common.fail_cleanly
def notes_command(context: common.Context, ref: str, as_json: bool) -> None:
    """Show asset REF's notes as threads, oldest first."""
    with context.open() as workspace:
        threads = triage.notes(workspace, ref)
    if as_json:
        common.print_json(
            {"schema": "provenance.notes/1", "notes": [note.to_json() for note in threads]}
        )
        return
    if not threads:
        click.echo("No notes.")

    def show(note: triage.Note, depth: int) -> None:
        indent = "  " * depth
        when = note.written_at[:16].replace("T", " ")
        click.echo(f"{indent}#{note.note_id} {common.printable(note.author)} ({note.role}) {when}")
        for line in common.printable(note.text, one_line=False).splitlines():
            click.echo(f"{indent}  {line}")
        for reply in note.replies:
            show(reply, depth + 1)

    for note in threads:
        show(note, 0)


@click.command("review")
@click.argument("ref")
@click.option(
    "--decision",
    type=click.Choice(DECISIONS),
    required=True,
    help="approve, reject, needs-changes or escalate (legal: approve or reject).",
)
@click.option("--rationale", required=True, help="Why: kept with the decision as evidence.")
@click.option(
    "--supersedes",
    type=click.IntRange(min=1, max=common.MAX_COUNT),
    help="The standing decision this one replaces (its number from `show`).",
)
@click.option(
    "--check",
    "check_id",
    type=click.IntRange(min=1, max=common.MAX_COUNT),
    help="The check whose evidence you looked at; refused if the asset was checked since.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.review/1).")
@common.pass_context
@common.fail_cleanly
def review_command(
    context: common.Context,
    ref: str,
    decision: str,
    rationale: str,
    supersedes: int | None,
    check_id: int | None,
    as_json: bool,
) -> None:
    """Sign off the flagged asset REF (id or sha256 prefix) with a decision and a rationale.

    Reviewers decide flagged assets; legal decides escalated ones; nobody decides an asset
    they registered. The decision is made by PROVENANCE_TOKEN's user, or without a token by
    the local user (the user setting or login name), who must be a user of the workspace.
    """
    with context.open() as workspace:
        made = reviews.review(
            workspace, ref, decision, rationale, supersedes=supersedes, seen_check=check_id
        )
    if as_json:
        common.print_json(made.to_json())
        return
    click.echo(
        f"Decision #{made.review_id} on asset {made.asset_id}: {made.decision} "
        f"by {common.printable(made.decided_by)} ({made.role}); status {made.outcome}."
    )


@click.command("queue")
@click.option("--status", type=click.Choice(OPEN_STATUSES), help="flagged or escalated.")
@click.option("--verdict", type=click.Choice(("review", "high")), help="Only this verdict.")
@click.option("--production", help="Only this production.")
@click.option("--tool", help="Only assets made with this tool.")
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="score",
    show_default=True,
    help="score: strongest flag first; age: oldest check first.",
)
@click.option(
    "--limit", type=click.IntRange(min=1, max=common.MAX_COUNT), help="At most this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.queue/1).")
@common.pass_context
@common.fail_cleanly
def queue_command(
    context: common.Context,
    status: str | None,
    verdict: str | None,
    production: str | None,
    tool: str | None,
    sort: str,
    limit: int | None,
    as_json: bool,
) -> None:
    """List assets waiting for a decision: flagged (reviewers) and escalated (legal)."""
    where = QueueFilter(
        status=status, verdict=verdict, production=production, tool=tool, sort=sort, limit=limit
    )
    with context.open() as workspace:
        found = reviews.queue(workspace, where)
    if as_json:
        common.print_json(found.to_json())
        return
    if found.pending_checks:
        click.echo(
            f"{found.pending_checks} asset(s) are waiting for a check and not in the queue "
            "yet: run `provenance check --pending`.",
            err=True,
        )
    if not found.entries:
        click.echo("The queue is empty.")
        return
    rows = []
    for entry in found.entries:
        detector, score = common.reason_cells(entry.best_reason)
        rows.append(
            (
                str(entry.asset_id),
                entry.status + (" (reopened)" if entry.reopened else ""),
                entry.verdict + (" (low priority)" if entry.priority == "low" else ""),
                detector,
                score,
                common.printable(entry.production or "-"),
                common.printable(entry.tool or "-"),
                entry.checked_at[:19].replace("T", " "),
                common.printable(entry.original_name),
            )
        )
    common.print_table(
        ("id", "status", "verdict", "detector", "score", "production", "tool", "checked", "file"),
        rows,
    )
    if found.total > len(found.entries):
        click.echo(f"({len(found.entries)} of {found.total} shown)")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.option(
    "--print-openapi",
    is_flag=True,
    help="Print the REST API's OpenAPI schema (as in docs/openapi.json) and exit.",
)
@common.pass_context
@common.fail_cleanly
def serve(context: common.Context, host: str, port: int, print_openapi: bool) -> None:
    """Serve the reviewer pages and the REST API (/api/v1) for this workspace.

    Reviewers sign in with their token. For a team, run it on a machine that reaches the
    PostgreSQL server and the workspace folder, behind the studio's HTTPS proxy.
    """
    from provenance.web.app import create_app, openapi_text

    if print_openapi:
        click.echo(openapi_text(), nl=False)
        return
    import uvicorn

    with context.open() as workspace:
        # Finish what an interrupted register left: every asset is checked before review.
        outcome = checking.check_pending(workspace)
        if outcome.checks:
            click.echo(f"Checked {len(outcome.checks)} asset(s) that were waiting for a check.")
        for asset_id, error in sorted(outcome.failed.items()):
            click.echo(f"warning asset {asset_id} is still unchecked: {common.printable(error)}")
        app = create_app(workspace)
        processes.settle_long_lived()
        click.echo(f"Serving {workspace.root} on http://{host}:{port}/ (Ctrl+C stops)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
