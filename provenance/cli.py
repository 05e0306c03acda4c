"""The ``provenance`` command: parse arguments, make one workspace call, print the answer.

Exit codes: 0 success; 1 an error (``Error: <message>`` on stderr) or, for ``register``,
at least one file failed; 2 a usage error (unknown option, missing argument); 3 a check
verdict reached ``--fail-on``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from provenance import __version__
from provenance.domain import GENERATION_FIELDS, IntendedUse
from provenance.errors import ProvenanceError
from provenance.registration import (
    RegisterReport,
    RegisterRequest,
    RegisterResult,
    display_name,
)
from provenance.reviews import DECISIONS, OPEN_STATUSES, SORTS, QueueFilter
from provenance.workspace import Workspace, upgrade_database

P = ParamSpec("P")
R = TypeVar("R")

# The largest count or number an option takes: past it, SQL integers overflow.
MAX_COUNT = 10**9
# Exit status when a verdict reaches --fail-on (1 is kept for errors).
FAIL_ON_EXIT = 3

_USE_HELP = "; ".join(f"{use.value}: {use.description}" for use in IntendedUse.declarable())


class Context:
    """What the top-level options say, handed to every command."""

    def __init__(self, workspace: Path | None) -> None:
        self.workspace_dir = workspace

    @contextmanager
    def open(self) -> Iterator[Workspace]:
        workspace = Workspace.open(self.workspace_dir)
        try:
            yield workspace
        finally:
            workspace.close()


pass_context = click.make_pass_decorator(Context)


def _fail_cleanly(function: Callable[P, R]) -> Callable[P, R]:
    """Turn a ProvenanceError into ``Error: <message>`` and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ProvenanceError as exc:
            raise click.ClickException(display_name(str(exc))) from None

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="provenance")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder. Default: $PROVENANCE_WORKSPACE, else the current folder or the "
    "nearest parent holding provenance.toml.",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None, verbose: int) -> None:
    """Register, fingerprint and check generative-AI assets for a production, offline."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(workspace)


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--database-url",
    help="Keep records in this database (a team's PostgreSQL: postgresql://user@host/db); "
    "written into provenance.toml.",
)
@pass_context
@_fail_cleanly
def init(context: Context, directory: Path | None, database_url: str | None) -> None:
    """Create a workspace in DIRECTORY (default: --workspace, else the current folder)."""
    target = directory or context.workspace_dir or Path.cwd()
    workspace = Workspace.create(target, database_url=database_url)
    workspace.close()
    click.echo(f"Created workspace in {workspace.root}")


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def config_command(context: Context, as_json: bool) -> None:
    """Print every setting's effective value and where it came from."""
    with context.open() as workspace:
        effective = workspace.settings.effective()
    if as_json:
        _print_json(
            {
                "schema": "provenance.config/1",
                "settings": [
                    {
                        "name": e.setting.name,
                        "value": e.value,
                        "source": e.source,
                        "env": e.setting.env_var,
                        "help": e.setting.help,
                    }
                    for e in effective
                ],
            }
        )
        return
    width = max(len(e.setting.name) for e in effective)
    for e in effective:
        click.echo(f"{e.setting.name:<{width}}  {e.value!r}  ({e.source})")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tool", help="Generative tool (comfyui, automatic1111, midjourney, ...).")
@click.option("--tool-version", help="Version of the tool.")
@click.option("--model", help="Model name (sdxl-base-1.0, ...).")
@click.option("--model-version", help="Model version.")
@click.option("--model-hash", help="Checkpoint hash (as the tool reports it).")
@click.option("--prompt", help="Prompt used.")
@click.option("--negative-prompt", help="Negative prompt used.")
@click.option("--seed", help="Seed (integer).")
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A generation setting; repeatable. VALUE is read as JSON when it parses, else text.",
)
@click.option("--use", help=f"Intended use. {_USE_HELP}.")
@click.option("--production", help="Production name (default: the production setting).")
@click.option("--by", help="Who is registering (default: the user setting or login name).")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sidecar JSON applied to every file (schema provenance.sidecar/1).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["review", "high"]),
    help="Exit with status 3 when a new asset's check verdict is at or above this level.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=0, max=1024),
    help="Fingerprinting processes (default: the jobs setting; 0: automatic).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_context
@_fail_cleanly
def register(
    context: Context,
    /,
    paths: tuple[Path, ...],
    settings: tuple[str, ...],
    use: str | None,
    production: str | None,
    by: str | None,
    metadata_file: Path | None,
    fail_on: str | None,
    jobs: int | None,
    as_json: bool,
    **fields: str | None,
) -> None:
    """Register files or folders (walked recursively): store, fingerprint, record.

    Generation metadata inside the files (AUTOMATIC1111, ComfyUI, InvokeAI, EXIF/XMP) and in
    a sidecar <file>.json is read automatically; flags override it. Registering bytes that
    are already registered returns the existing asset. Exit status 1 when any file failed.
    """
    request = RegisterRequest.from_flags(
        fields={name: fields.get(name) for name in GENERATION_FIELDS},
        settings=settings,
        use=use,
        production=production,
        by=by,
        metadata_file=metadata_file,
    )
    with context.open() as workspace, _progress(enabled=not as_json) as progress:
        report = workspace.register(paths, request, progress)
    single = report.results[0] if len(report.results) == 1 and not report.skipped else None
    if single is not None and single.status == "failed" and not as_json:
        raise click.ClickException(f"{printable(single.path)}: {printable(single.error)}")
    if as_json:
        _print_json(report.to_json())
    else:
        _print_register_report(report)
    if report.count("failed"):
        sys.exit(1)
    if fail_on and _reaches([r.check["verdict"] for r in report.results if r.check], fail_on):
        sys.exit(FAIL_ON_EXIT)
    if request.use is None and report.count("new") and not as_json:
        click.echo(
            "Note: no intended use declared; recorded as 'undeclared'. Pass --use.", err=True
        )


@cli.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the full record as JSON.")
@pass_context
@_fail_cleanly
def show(context: Context, ref: str, as_json: bool) -> None:
    """Show one asset by id (42) or sha256 prefix (8+ hex digits)."""
    with context.open() as workspace:
        record = workspace.show(ref)
    if as_json:
        _print_json(record)
        return
    _print_asset(record)


@cli.command("list")
@click.option("--production", help="Only this production.")
@click.option("--tool", help="Only assets made with this tool.")
@click.option("--use", help="Only this intended use (or 'undeclared').")
@click.option("--since", help="Only assets registered at or after this date or ISO time.")
@click.option("--limit", type=click.IntRange(min=1, max=MAX_COUNT), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def list_command(
    context: Context,
    production: str | None,
    tool: str | None,
    use: str | None,
    since: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List registered assets, oldest first."""
    with context.open() as workspace:
        assets = workspace.list_assets(
            production=production, tool=tool, use=use, since=since, limit=limit
        )
    if as_json:
        _print_json({"schema": "provenance.asset-list/1", "assets": assets})
        return
    if not assets:
        click.echo("No assets.")
        return
    rows = [
        (
            str(a["id"]),
            a["sha256"][:12],
            a["intended_use"],
            a["production"] or "-",
            _field(a, "tool"),
            _field(a, "model"),
            a["registered_at"][:19].replace("T", " "),
            a["original_name"],
        )
        for a in assets
    ]
    _print_table(("id", "sha256", "use", "production", "tool", "model", "registered", "file"), rows)


@cli.command("check")
@click.argument("refs", nargs=-1)
@click.option(
    "--pending",
    is_flag=True,
    help="Check every asset still waiting for a check (e.g. after an interrupted register).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["review", "high"]),
    help=f"Exit with status {FAIL_ON_EXIT} when any verdict is at or above this level.",
)
@click.option("--by", help="Who is checking (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@pass_context
@_fail_cleanly
def check_command(
    context: Context,
    refs: tuple[str, ...],
    pending: bool,
    fail_on: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Check assets (ids or sha256 prefixes) against every reference set.

    Each check is recorded (a re-check adds a new one). JSON follows provenance.check/1.
    With --pending, the assets that have no check yet are checked (JSON:
    provenance.check-pending/1). Exit status: 0 done; 1 error (or a pending check failed);
    3 a verdict reached --fail-on.
    """
    if pending == bool(refs):
        raise click.UsageError("give asset ids or --pending (not both)")
    failed: dict[int, str] = {}
    with context.open() as workspace:
        if pending:
            outcome = workspace.check_pending(by=by)
            checks, failed = list(outcome.checks.values()), outcome.failed
        else:
            checks = workspace.check(refs, by=by)
    if as_json:
        _print_json(
            outcome.to_json()
            if pending
            else {"schema": "provenance.check-list/1", "checks": checks}
        )
    else:
        if pending and not checks and not failed:
            click.echo("No asset is waiting for a check.")
        _print_checks(checks)
        for asset_id, error in sorted(failed.items()):
            click.echo(f"failed  asset {asset_id}: {printable(error)}", err=True)
    if failed:
        sys.exit(1)
    if fail_on and _reaches([c["verdict"] for c in checks], fail_on):
        sys.exit(FAIL_ON_EXIT)


def _reaches(verdicts: list[str], level: str) -> bool:
    levels = {"clear": 0, "review": 1, "high": 2}
    return any(levels[v] >= levels[level] for v in verdicts)


@cli.command()
@click.argument(
    "directory",
    required=False,
    default="demo-workspace",
    type=click.Path(file_okay=False, path_type=Path),
)
def demo(directory: Path) -> None:
    """Build a demo workspace offline and print its triage table.

    A reference set of real photographs; generated assets recreating six of them (crop,
    resize, recolour, text overlay, composite, mirror) and four unrelated pictures, each
    registered with generation metadata and checked.
    """
    from provenance.demo import build_demo

    try:
        rows = build_demo(directory)
    except ProvenanceError as exc:
        raise click.ClickException(str(exc)) from None
    _print_table(
        ("asset", "file", "use", "recreates", "verdict", "best match", "detector", "score"),
        [
            (
                str(r.asset_id),
                r.file,
                r.use,
                r.recreates or "-",
                r.verdict,
                r.best_match,
                *_reason_cells(r.reason),
            )
            for r in rows
        ],
    )
    missed = [r.file for r in rows if r.recreates and r.best_match != r.recreates]
    false_flags = [r.file for r in rows if not r.recreates and r.verdict != "clear"]
    flagged = sum(1 for r in rows if r.recreates) - len(missed)
    clear = sum(1 for r in rows if not r.recreates) - len(false_flags)
    click.echo(
        f"\n{flagged} of {flagged + len(missed)} recreations flagged against the right "
        f"reference; {clear} of {clear + len(false_flags)} unrelated images clear."
    )
    click.echo(f"Workspace: {directory}  (try: provenance -w {directory} show 1)")
    if missed or false_flags:
        raise click.ClickException(
            f"demo expectations not met: missed {missed or 'none'}, "
            f"wrongly flagged {false_flags or 'none'}"
        )


@cli.command("review")
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
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="The standing decision this one replaces (its number from `show`).",
)
@click.option(
    "--check",
    "check_id",
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="The check whose evidence you looked at; refused if the asset was checked since.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.review/1).")
@pass_context
@_fail_cleanly
def review_command(
    context: Context,
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
        made = workspace.review(
            ref, decision, rationale, supersedes=supersedes, seen_check=check_id
        )
    if as_json:
        _print_json(made)
        return
    click.echo(
        f"Decision #{made['review_id']} on asset {made['asset_id']}: {made['decision']} "
        f"by {printable(made['decided_by'])} ({made['role']}); status {made['outcome']}."
    )


@cli.command("queue")
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
@click.option("--limit", type=click.IntRange(min=1, max=MAX_COUNT), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.queue/1).")
@pass_context
@_fail_cleanly
def queue_command(
    context: Context,
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
        found = workspace.queue(where)
    if as_json:
        _print_json(found)
        return
    if found["pending_checks"]:
        click.echo(
            f"{found['pending_checks']} asset(s) are waiting for a check and not in the queue "
            "yet: run `provenance check --pending`.",
            err=True,
        )
    if not found["entries"]:
        click.echo("The queue is empty.")
        return
    rows = []
    for entry in found["entries"]:
        detector, score = _reason_cells(entry["best_reason"])
        rows.append(
            (
                str(entry["asset_id"]),
                entry["status"] + (" (reopened)" if entry["reopened"] else ""),
                entry["verdict"],
                detector,
                score,
                printable(entry["production"] or "-"),
                printable(entry["tool"] or "-"),
                entry["checked_at"][:19].replace("T", " "),
                printable(entry["original_name"]),
            )
        )
    _print_table(
        ("id", "status", "verdict", "detector", "score", "production", "tool", "checked", "file"),
        rows,
    )
    if found["total"] > len(found["entries"]):
        click.echo(f"({len(found['entries'])} of {found['total']} shown)")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
@click.option(
    "--print-openapi",
    is_flag=True,
    help="Print the REST API's OpenAPI schema (as in docs/openapi.json) and exit.",
)
@pass_context
@_fail_cleanly
def serve(context: Context, host: str, port: int, print_openapi: bool) -> None:
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
        outcome = workspace.check_pending()
        if outcome.checks:
            click.echo(f"Checked {len(outcome.checks)} asset(s) that were waiting for a check.")
        for asset_id, error in sorted(outcome.failed.items()):
            click.echo(f"warning asset {asset_id} is still unchecked: {printable(error)}")
        app = create_app(workspace)
        click.echo(f"Serving {workspace.root} on http://{host}:{port}/ (Ctrl+C stops)")
        uvicorn.run(app, host=host, port=port, log_level="warning")


HANDLING_CHOICE = click.Choice(("yes", "no", "unknown"))


@cli.group("tools")
def tools_group() -> None:
    """Generative tools and their vetted data handling."""


@tools_group.command("add")
@click.argument("name")
@click.option("--vendor", help="Who makes it.")
@click.option("--version", "tool_version", help="The version vetted.")
@click.option("--stores-inputs", type=HANDLING_CHOICE, required=True, help="Keeps prompts/assets?")
@click.option("--trains-on-inputs", type=HANDLING_CHOICE, required=True, help="Trains on them?")
@click.option(
    "--enterprise-secured", type=HANDLING_CHOICE, required=True, help="Enterprise-secured setup?"
)
@click.option("--terms-url", help="Where its data-handling terms are published.")
@click.option("--notes", help="Anything else legal should know.")
@click.option("--by", help="Who vetted it (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.tool/1).")
@pass_context
@_fail_cleanly
def tools_add(
    context: Context,
    name: str,
    vendor: str | None,
    tool_version: str | None,
    stores_inputs: str,
    trains_on_inputs: str,
    enterprise_secured: str,
    terms_url: str | None,
    notes: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Record how tool NAME handles data (a new vetting supersedes the previous one).

    A tool first seen at registration has unknown handling until vetted here. A tool that
    stores or trains on inputs, or whose handling is unknown, is a finding on every asset
    made with it and needs written approval for final deliverables.
    """
    with context.open() as workspace:
        tool = workspace.vet_tool(
            name,
            vendor=vendor,
            version=tool_version,
            stores_inputs=stores_inputs,
            trains_on_inputs=trains_on_inputs,
            enterprise_secured=enterprise_secured,
            terms_url=terms_url,
            notes=notes,
            by=by,
        )
    if as_json:
        _print_json(tool)
    else:
        click.echo(
            f"Vetted {printable(tool['name'])}: stores inputs {tool['stores_inputs']}, trains on "
            f"inputs {tool['trains_on_inputs']}, enterprise-secured {tool['enterprise_secured']}."
        )


@tools_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def tools_list(context: Context, as_json: bool) -> None:
    """List tools with their data handling and how many assets each made."""
    with context.open() as workspace:
        found = workspace.list_tools()
    if as_json:
        _print_json({"schema": "provenance.tool-list/1", "tools": found})
        return
    if not found:
        click.echo("No tools.")
        return
    _print_table(
        ("tool", "vetted", "stores inputs", "trains on inputs", "enterprise-secured", "assets"),
        [
            (
                printable(t["name"]),
                (t["vetted_at"] or "")[:10] or "no",
                t["stores_inputs"],
                t["trains_on_inputs"],
                t["enterprise_secured"],
                str(t["assets"]),
            )
            for t in found
        ],
    )


@tools_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.tool/1).")
@pass_context
@_fail_cleanly
def tools_show(context: Context, name: str, as_json: bool) -> None:
    """Show tool NAME, its current vetting and every earlier one."""
    with context.open() as workspace:
        tool = workspace.show_tool(name)
    if as_json:
        _print_json(tool)
        return
    click.echo(f"tool {printable(tool['name'])}  ({tool['assets']} assets)")
    for key in ("vendor", "version", "stores_inputs", "trains_on_inputs", "enterprise_secured",
                "terms_url", "notes", "vetted_by", "vetted_at"):  # fmt: skip
        click.echo(f"  {key.replace('_', ' '):<19} {printable(str(tool[key] or '-'))}")


@cli.group("consent")
def consent_group() -> None:
    """Performers' consents to the use of their likeness, voice or performance."""


@consent_group.command("add")
@click.option("--talent", required=True, help="The performer, as credited.")
@click.option(
    "--scope", type=click.Choice(("likeness", "voice", "performance")), required=True, help="What."
)
@click.option("--production", help="The production it covers (default: any).")
@click.option(
    "--new-production",
    is_flag=True,
    help="The production has no assets yet (otherwise an unknown name is refused as a typo).",
)
@click.option(
    "--document",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The signed consent; its bytes go into the content store.",
)
@click.option("--expires", required=True, help="Last day it holds (YYYY-MM-DD).")
@click.option("--by", help="Who records it (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def consent_add(
    context: Context,
    talent: str,
    scope: str,
    production: str | None,
    new_production: bool,
    document: Path,
    expires: str,
    by: str | None,
    as_json: bool,
) -> None:
    """Record a consent (append-only; `provenance withdraw consent N` withdraws it)."""
    with context.open() as workspace:
        made = workspace.add_consent(
            talent=talent,
            scope=scope,
            production=production,
            new_production=new_production,
            document=document,
            expires=expires,
            by=by,
        )
    if as_json:
        _print_json({"schema": "provenance.consent/1", **made})
    else:
        click.echo(
            f"Consent #{made['consent_id']}: {printable(made['talent'])}, {made['scope']}, "
            f"until {made['expires']} (document {made['document_sha256'][:12]})."
        )


@consent_group.command("list")
@click.option("--talent", help="Only this performer's consents (any case).")
@click.option("--production", help="Only those covering this production (or any production).")
@click.option("--as-of", help="Judge expiry on this day instead of today (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.consent-list/1).")
@pass_context
@_fail_cleanly
def consent_list(
    context: Context,
    talent: str | None,
    production: str | None,
    as_of: str | None,
    as_json: bool,
) -> None:
    """List consents: valid, expired or withdrawn, with their numbers (for `withdraw`)."""
    today = _as_of(as_of) or dt.datetime.now(dt.UTC).date()
    with context.open() as workspace:
        found = workspace.list_consents(talent=talent, production=production, today=today)
    if as_json:
        _print_json(
            {"schema": "provenance.consent-list/1", "as_of": today.isoformat(), "consents": found}
        )
        return
    if not found:
        click.echo("No consents.")
        return
    _print_table(
        ("#", "talent", "scope", "production", "expires", "state", "document"),
        [
            (
                str(c["consent_id"]),
                printable(c["talent"]),
                c["scope"],
                printable(c["production"] or "any"),
                c["expires"],
                c["state"] + (f" ({c['days_left']} days left)" if c["state"] == "valid" else ""),
                c["document_sha256"][:12],
            )
            for c in found
        ],
    )


@cli.command("approve")
@click.argument("ref")
@click.option("--approver", required=True, help="The studio contact who approved in writing.")
@click.option("--reference", required=True, help="Where: the email, memo or ticket.")
@click.option(
    "--document",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The written approval; its bytes go into the content store.",
)
@click.option("--by", help="Who records it (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def approve_command(
    context: Context,
    ref: str,
    approver: str,
    reference: str,
    document: Path,
    by: str | None,
    as_json: bool,
) -> None:
    """Record the studio's written approval of asset REF.

    The approval covers what needs approval now (intended use, matches against unowned
    material, a risky tool, personal data); anything that appears later needs a new one.
    """
    with context.open() as workspace:
        made = workspace.approve(
            ref, approver=approver, reference=reference, document=document, by=by
        )
    if as_json:
        _print_json({"schema": "provenance.approval/1", **made})
    else:
        click.echo(
            f"Approval #{made['approval_id']} of asset {made['asset_id']} by "
            f"{printable(made['approver'])}; covers {', '.join(made['covers'])}."
        )


@cli.command("withdraw")
@click.argument("kind", type=click.Choice(("consent", "approval")))
@click.argument("number", type=click.IntRange(min=1, max=MAX_COUNT))
@click.option("--reason", required=True, help="Why it no longer holds.")
@click.option("--by", help="Who records it (default: the user setting or login name).")
@pass_context
@_fail_cleanly
def withdraw_command(context: Context, kind: str, number: int, reason: str, by: str | None) -> None:
    """Withdraw consent or approval NUMBER (the record stays; the withdrawal is added)."""
    with context.open() as workspace:
        workspace.withdraw(kind, number, reason, by=by)
    click.echo(f"Withdrew {kind} #{number}.")


def _talent(values: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, _, scope = value.rpartition(":") if ":" in value else (value, "", "likeness")
        pairs.append((name.strip(), scope.strip() or "likeness"))
    return pairs


@cli.command("declare")
@click.argument("ref")
@click.option(
    "--personal-data", type=click.Choice(("yes", "no")), help="Whether it holds personal data."
)
@click.option("--expires", help="For temporary material: the day it is to be deleted.")
@click.option(
    "--talent",
    multiple=True,
    help="A performer depicted, as NAME or NAME:likeness|voice|performance (repeatable).",
)
@click.option("--by", help="Who declares (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def declare_command(
    context: Context,
    ref: str,
    personal_data: str | None,
    expires: str | None,
    talent: tuple[str, ...],
    by: str | None,
    as_json: bool,
) -> None:
    """Declare facts about asset REF that the policy needs (the newest declaration holds)."""
    with context.open() as workspace:
        made = workspace.declare(
            ref,
            personal_data=None if personal_data is None else personal_data == "yes",
            expires=expires,
            talent=_talent(talent) if talent else None,
            by=by,
        )
    if as_json:
        _print_json({"schema": "provenance.declaration/1", **made})
    else:
        click.echo(f"Declared on asset {made['asset_id']}.")


@cli.command("revise")
@click.argument("ref")
@click.option("--revised-by", required=True, help="Who did the human work on the asset.")
@click.option(
    "--how", required=True, help="What they did (repainted the signage, recomposited, ...)."
)
@click.option("--by", help="Who records it (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.revision/1).")
@pass_context
@_fail_cleanly
def revise_command(
    context: Context, ref: str, revised_by: str, how: str, by: str | None, as_json: bool
) -> None:
    """Record the human work done on asset REF: final deliverables need it on record."""
    with context.open() as workspace:
        made = workspace.revise(ref, revised_by=revised_by, how=how, by=by)
    if as_json:
        _print_json({"schema": "provenance.revision/1", **made})
    else:
        click.echo(f"Revision #{made['revision_id']} recorded on asset {made['asset_id']}.")


@cli.command("status")
@click.argument("ref")
@click.option("--as-of", help="Judge on this day instead of today (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.status/1).")
@pass_context
@_fail_cleanly
def status_command(context: Context, ref: str, as_of: str | None, as_json: bool) -> None:
    """What asset REF must meet to be cleared for final: met, missing, and findings."""
    today = _as_of(as_of)
    with context.open() as workspace:
        found = workspace.status(ref, today=today)
    if as_json:
        _print_json(found)
        return
    asset, verdict_policy = found["asset"], found["policy"]
    cleared = (
        "CLEARED for final" if verdict_policy["cleared_for_final"] else "NOT cleared for final"
    )
    click.echo(
        f"asset {asset['id']}  {printable(asset['original_name'])}  ({asset['intended_use']}): "
        f"{cleared} as of {found['as_of']}"
    )
    for entry in verdict_policy["requirements"]:
        mark = "met    " if entry["met"] else "MISSING"
        detail = f" - {printable(entry['detail'])}" if entry["detail"] else ""
        click.echo(f"  {mark}  {printable(entry['text'])}{detail}  [{entry['guideline']}]")
    for entry in verdict_policy["findings"]:
        click.echo(f"  finding  {printable(entry['text'])}  [{entry['guideline']}]")


@cli.command("expired")
@click.option("--as-of", help="Judge on this day instead of today (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def expired_command(context: Context, as_of: str | None, as_json: bool) -> None:
    """Temporary assets (ideation, previz) past their declared expiry date."""
    with context.open() as workspace:
        found = workspace.expired(today=_as_of(as_of))
    if as_json:
        _print_json({"schema": "provenance.expired/1", "assets": found})
        return
    if not found:
        click.echo("No temporary asset is past its expiry date.")
        return
    _print_table(
        ("id", "file", "use", "production", "expired", "days past"),
        [
            (
                str(a["asset_id"]),
                printable(a["original_name"]),
                a["intended_use"],
                printable(a["production"] or "-"),
                a["expires"],
                str(a["days_past"]),
            )
            for a in found
        ],
    )


def _as_of(text: str | None) -> dt.date | None:
    from provenance.clearance import parse_date

    return parse_date(text, "--as-of") if text else None


@cli.group("store")
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
@pass_context
@_fail_cleanly
def store_gc(context: Context, min_age: float, as_json: bool) -> None:
    """Remove stored copies no record names and temporary files of killed writes.

    A registration that fails after storing its copy removes it again, unless the database
    stays locked past the busy timeout; such copies, and the temporary files of a killed
    process, are what this removes.
    """
    with context.open() as workspace:
        report = workspace.collect_garbage(min_age_seconds=min_age)
    if as_json:
        _print_json(report)
        return
    click.echo(
        f"Removed {report['removed_blobs']} unreferenced copies and "
        f"{report['removed_temporaries']} temporary files; {report['referenced']} copies are "
        f"in use, {report['kept_young']} unreferenced ones are younger than --min-age."
    )


@cli.group("export")
def export_group() -> None:
    """Provenance records, evidence packs and disclosure summaries for legal."""


@export_group.command("asset")
@click.argument("ref")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write into.",
)
@click.option("--as-of", help="Judge the policy on this day instead of today (YYYY-MM-DD).")
@click.option("--no-pdf", is_flag=True, help="Skip the PDF (JSON and HTML only).")
@pass_context
@_fail_cleanly
def export_asset(context: Context, ref: str, out: Path, as_of: str | None, no_pdf: bool) -> None:
    """Write asset REF's record (asset-ID.json, provenance.record/1) and its evidence pack
    (asset-ID.html and asset-ID.pdf)."""
    today = _as_of(as_of)
    with context.open() as workspace:
        paths = workspace.export_asset(ref, out, today=today, pdf=not no_pdf)
    for path in paths:
        click.echo(f"wrote {path}")


@export_group.command("production")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write into.",
)
@click.option("--as-of", help="Judge the policy on this day instead of today (YYYY-MM-DD).")
@click.option("--no-pdf", is_flag=True, help="Skip the PDF (JSON and HTML only).")
@pass_context
@_fail_cleanly
def export_production(
    context: Context, name: str, out: Path, as_of: str | None, no_pdf: bool
) -> None:
    """Write production NAME's disclosure summary (disclosure.json, provenance.disclosure/1,
    .html, .pdf) and every asset's record and evidence pack under assets/."""
    today = _as_of(as_of)
    with context.open() as workspace:
        paths = workspace.export_production(name, out, today=today, pdf=not no_pdf)
    shown = [p for p in paths if p.parent == out]
    for path in shown:
        click.echo(f"wrote {path}")
    click.echo(
        f"wrote {len(paths) - len(shown)} asset records and evidence packs in {out / 'assets'}"
    )


@cli.group("users")
def users_group() -> None:
    """Users and their roles (artist, reviewer, legal, admin) and tokens."""


@users_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["artist", "reviewer", "legal", "admin"]),
    help="What the user may do.",
)
@click.option("--by", help="Who is adding (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
@pass_context
@_fail_cleanly
def users_add(context: Context, name: str, role: str, by: str | None, as_json: bool) -> None:
    """Add user NAME with a role (no token yet: see `users token`)."""
    with context.open() as workspace:
        user = workspace.add_user(name, role, by=by)
    if as_json:
        _print_json({"schema": "provenance.user/1", **user})
    else:
        click.echo(f"Added {printable(name)} ({role}).")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def users_list(context: Context, as_json: bool) -> None:
    """List users, their roles and whether they hold a token."""
    with context.open() as workspace:
        found = workspace.list_users()
    if as_json:
        _print_json({"schema": "provenance.user-list/1", "users": found})
        return
    if not found:
        click.echo("No users.")
        return
    _print_table(
        ("name", "role", "token", "status"),
        [
            (
                u["name"],
                u["role"],
                f"issued {u['token_issued_at']}" if u["has_token"] else "-",
                f"disabled {u['disabled_at']}" if u["disabled_at"] else "active",
            )
            for u in found
        ],
    )


@users_group.command("token")
@click.argument("name")
@click.option("--by", help="Who is issuing (default: the user setting or login name).")
@pass_context
@_fail_cleanly
def users_token(context: Context, name: str, by: str | None) -> None:
    """Issue a new token for NAME and print it once (the previous one stops working)."""
    with context.open() as workspace:
        token = workspace.issue_token(name, by=by)
    click.echo(token)
    if sys.stderr.isatty():
        click.echo("Shown once: only its hash is kept.", err=True)


@users_group.command("disable")
@click.argument("name")
@click.option("--by", help="Who is disabling (default: the user setting or login name).")
@pass_context
@_fail_cleanly
def users_disable(context: Context, name: str, by: str | None) -> None:
    """Disable NAME: their token stops working; their past records stay."""
    with context.open() as workspace:
        workspace.disable_user(name, by=by)
    click.echo(f"Disabled {printable(name)}.")


@cli.group()
def refs() -> None:
    """Reference sets: material the production must not recreate."""


@refs.command("add")
@click.argument("name")
@click.option(
    "--from",
    "sources",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder or file of reference images; repeatable.",
)
@click.option(
    "--rights",
    type=click.Choice(["third-party", "owned", "licensed", "talent"]),
    default="third-party",
    show_default=True,
    help="Rights status of the material.",
)
@click.option("--holder", help="Rights holder.")
@click.option("--description", default="", help="What the set is.")
@click.option("--attribution", help="Credit recorded for every item (attributions.json overrides).")
@click.option("--by", help="Who is adding (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
@_fail_cleanly
def refs_add(
    context: Context,
    name: str,
    sources: tuple[Path, ...],
    rights: str,
    holder: str | None,
    description: str,
    attribution: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Create reference set NAME from images, fingerprint them and build its indexes."""
    with context.open() as workspace, _refs_progress(not as_json) as progress:
        report = workspace.add_reference_set(
            name,
            sources,
            rights=rights,
            holder=holder,
            description=description,
            attribution=attribution,
            by=by,
            progress=progress,
        )
    _print_ingest(report, as_json)


@refs.command("add-items")
@click.argument("name")
@click.option(
    "--from",
    "sources",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder or file of reference images; repeatable.",
)
@click.option("--attribution", help="Credit recorded for every new item.")
@click.option("--by", help="Who is adding (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
@_fail_cleanly
def refs_add_items(
    context: Context,
    name: str,
    sources: tuple[Path, ...],
    attribution: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Add images to reference set NAME; items already in it are skipped (resumes)."""
    with context.open() as workspace, _refs_progress(not as_json) as progress:
        report = workspace.add_reference_items(
            name, sources, attribution=attribution, by=by, progress=progress
        )
    _print_ingest(report, as_json)


@refs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def refs_list(context: Context, as_json: bool) -> None:
    """List the active reference sets."""
    with context.open() as workspace:
        sets = workspace.list_reference_sets()
    if as_json:
        _print_json({"schema": "provenance.refs-list/1", "reference_sets": sets})
        return
    if not sets:
        click.echo("No reference sets.")
        return
    _print_table(
        ("name", "rights", "holder", "items", "description"),
        [
            (
                s["name"],
                s["rights_status"],
                s["rights_holder"] or "-",
                str(s["items"]),
                s["description"],
            )
            for s in sets
        ],
    )


@refs.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def refs_show(context: Context, name: str, as_json: bool) -> None:
    """Show reference set NAME with its items."""
    with context.open() as workspace:
        document = workspace.show_reference_set(name)
    if as_json:
        _print_json({"schema": "provenance.refs-show/1", **document})
        return
    click.echo(f"{printable(document['name'])}: {printable(document['description'])}")
    holder = printable(document["rights_holder"] or "-")
    click.echo(f"  rights  {document['rights_status']}  holder {holder}")
    _print_table(
        ("item", "sha256", "source", "attribution"),
        [
            (str(i["id"]), i["sha256"][:12], i["source_path"], i["attribution"] or "-")
            for i in document["item_list"]
        ],
    )


@refs.command("rebuild")
@click.argument("name")
@click.option("--by", help="Who is rebuilding (default: the user setting or login name).")
@pass_context
@_fail_cleanly
def refs_rebuild(context: Context, name: str, by: str | None) -> None:
    """Rebuild NAME's indexes under the detectors' current specs."""
    with context.open() as workspace:
        built = workspace.rebuild_reference_set(name, by=by)
    for detector, facts in built.items():
        click.echo(f"{detector}: {facts['count']} vectors, {facts['index_type']}")


@refs.command("remove")
@click.argument("name")
@click.option("--by", help="Who is removing (default: the user setting or login name).")
@pass_context
@_fail_cleanly
def refs_remove(context: Context, name: str, by: str | None) -> None:
    """Retire reference set NAME: no longer checked against; past checks keep naming it."""
    with context.open() as workspace:
        workspace.remove_reference_set(name, by=by)
    click.echo(f"Removed reference set {name}.")


@cli.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
@_fail_cleanly
def audit_verify(context: Context, as_json: bool) -> None:
    """Check every audit event against the one before it; exit 1 naming the first bad one."""
    with context.open() as workspace:
        report = workspace.verify_audit()
    if as_json:
        _print_json(report.to_json())
        if not report.ok:
            sys.exit(1)
        return
    if not report.ok:
        raise click.ClickException(f"audit chain broken: {report.message}")
    click.echo(f"Audit chain OK: {report.message}.")


@cli.group()
def db() -> None:
    """The workspace database's schema."""


@db.command("status")
@pass_context
@_fail_cleanly
def db_status(context: Context) -> None:
    """Print the database URL and schema revision."""
    with context.open() as workspace:
        status = workspace.database_status()
    click.echo(f"database: {status['url']}")
    click.echo(f"schema revision: {status['revision']} (this code: {status['code_revision']})")


@db.command("upgrade")
@pass_context
@_fail_cleanly
def db_upgrade(context: Context) -> None:
    """Upgrade the database schema to this version of provenance."""
    revision = upgrade_database(context.workspace_dir)
    click.echo(f"Database schema at revision {revision}.")


# -- output ---------------------------------------------------------------------------------


def _print_json(document: Any) -> None:
    # ASCII-only JSON: control and bidi characters in prompts arrive escaped, never raw.
    click.echo(json.dumps(document, indent=2, ensure_ascii=True))


def printable(value: Any, *, one_line: bool = True) -> str:
    """Text safe for a terminal: control characters (ANSI escapes included) shown escaped,
    and the undecodable bytes of a non-UTF-8 file name as \\xNN."""
    text = display_name("" if value is None else str(value))
    out = []
    for char in text:
        code = ord(char)
        if char == "\n" and not one_line:
            out.append(char)
        elif (
            code < 0x20
            or 0x7F <= code < 0xA0
            or 0x202A <= code <= 0x202E
            or 0x2066 <= code <= 0x2069
        ):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _field(asset: dict[str, Any], name: str) -> str:
    entry = asset["generation"]["fields"].get(name)
    return "-" if entry is None else printable(entry["value"])


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(headers), *[[printable(c) for c in row] for row in rows]]
    widths = [min(40, max(len(row[i]) for row in cells)) for i in range(len(headers))]
    for row in cells:
        click.echo(
            "  ".join(_clip(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_asset(record: dict[str, Any]) -> None:
    media = record["media"]
    click.echo(f"asset {record['id']}  {printable(record['original_name'])}")
    click.echo(f"  sha256        {record['sha256']}")
    click.echo(
        f"  media         {media['format']} {media['width']}x{media['height']} {media['mode']} "
        f"{media['bit_depth']}-bit, {media['frames']} frame(s)"
    )
    click.echo(f"  intended use  {record['intended_use']}")
    click.echo(f"  production    {printable(record['production'] or '-')}")
    click.echo(f"  registered    {record['registered_at']} by {printable(record['registered_by'])}")
    click.echo("  fingerprints")
    for fingerprint in record["fingerprints"]:
        click.echo(f"    {fingerprint['kind']:<9} {fingerprint['value']}  [{fingerprint['spec']}]")
    click.echo("  generation")
    for name, entry in record["generation"]["fields"].items():
        if entry is not None:
            # Prompts keep their line breaks, indented under the first line.
            text = printable(entry["value"], one_line=False).replace("\n", "\n" + " " * 20)
            click.echo(f"    {name:<15} {text}  ({entry['source']})")
    for key, entry in record["generation"]["settings"].items():
        value = entry["value"] if isinstance(entry["value"], str) else json.dumps(entry["value"])
        click.echo(f"    {printable(key):<15} {_clip(printable(value), 100)}  ({entry['source']})")
    review = record["review"]
    reopened = " (reopened: a new check changed the verdict)" if review["reopened"] else ""
    click.echo(f"  status        {review['status']}{reopened}")
    if record["checks"]:
        click.echo("  checks")
    for check in record["checks"]:
        reason = check["reasons"][0] if check["reasons"] else None
        detector, score = _reason_cells(reason)
        item = f"{reason['reference_set']}#{reason['item_id']} " if reason else ""
        click.echo(
            f"    check {check['check_id']:<5} {check['created_at'][:19].replace('T', ' ')}  "
            f"{check['verdict']:<7} {item}{detector} {score}".rstrip(" -")
        )
    if review["decisions"]:
        click.echo("  decisions")
    for made in review["decisions"]:
        click.echo(
            f"    #{made['review_id']:<5} {made['decided_at'][:19].replace('T', ' ')}  "
            f"{made['decision']:<13} by {printable(made['decided_by'])} ({made['role']}) "
            f"on check {made['check_id']}: {_clip(printable(made['rationale']), 100)}"
        )


def _print_checks(checks: list[dict[str, Any]]) -> None:
    rows = []
    for check in checks:
        best = check["best_match"]
        reason = check["reasons"][0] if check["reasons"] else None
        rows.append(
            (
                str(check["asset_id"]),
                check["verdict"],
                f"{best['reference_set']}#{best['item_id']} {Path(best['source_path']).name}"
                if best and check["verdict"] != "clear"
                else "-",
                *_reason_cells(reason),
            )
        )
    _print_table(("asset", "verdict", "best match", "detector", "score"), rows)
    for check in checks:
        for detector in check["detectors"]:
            if detector["status"] != "ran":
                click.echo(
                    f"warning: {detector['name']} did not run: {detector['reason']}", err=True
                )
        for reference_set in check["reference_sets"]:
            for problem in reference_set["problems"]:
                click.echo(f"warning: {reference_set['name']}: {problem}", err=True)
        break  # the same detectors and sets apply to every check of one run


def _reason_cells(reason: dict[str, Any] | None) -> tuple[str, str]:
    """A reason's detector (with region) and score, in the detector's own unit."""
    if reason is None:
        return "-", "-"
    if reason["thresholds"]["higher_is_closer"]:
        score = f"cosine {reason['score']:.3f}"
    else:
        score = f"{int(reason['score'])} bits differ"
    return f"{reason['detector']} ({reason['region']})", score


def _verdict_text(check: dict[str, Any]) -> str:
    best = check["best_match"]
    if check["verdict"] == "clear" or best is None:
        return "clear"
    return f"{check['verdict']}: {best['reference_set']}#{best['item_id']}"


def _print_ingest(report: Any, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_json())
    else:
        for path, error in report.failed:
            click.echo(f"failed  {printable(path)}: {printable(error)}", err=True)
        click.echo(
            f"{report.name}: {report.added} added, {report.known} already present, "
            f"{len(report.failed)} failed."
        )
        for detector, facts in report.indexes.items():
            click.echo(f"  {detector} index: {facts['count']} vectors, {facts['index_type']}")
        for detector, reason in report.unavailable.items():
            click.echo(f"warning: {detector} did not run: {reason}", err=True)
    if report.failed:
        sys.exit(1)


@contextmanager
def _refs_progress(enabled: bool) -> Iterator[Callable[[str, str, int, int], None] | None]:
    with _progress(enabled, "fingerprinting") as step:
        if step is None:
            yield None
            return

        def on_file(path: str, outcome: str, done: int, total: int) -> None:
            step(outcome.split(":")[0], done, total)

        yield on_file


def _print_register_report(report: RegisterReport) -> None:
    for result in report.results:
        if result.status == "failed":
            click.echo(f"failed  {printable(result.path)}: {printable(result.error)}", err=True)
            continue
        if result.error:  # registered, but something after it (the check) failed
            click.echo(f"warning {printable(result.path)}: {printable(result.error)}", err=True)
        if len(report.results) <= 20 and result.asset is not None:
            asset = result.asset
            label = "new    " if result.status == "new" else "known  "
            verdict = f"  {_verdict_text(result.check)}" if result.check else ""
            click.echo(
                f"{label} asset {asset['id']}  {asset['sha256'][:12]}  {asset['intended_use']}  "
                f"{printable(result.path)}{verdict}"
            )
    click.echo(
        f"{report.count('new')} new, {report.count('known')} already registered, "
        f"{report.count('failed')} failed, {len(report.skipped)} skipped (not images)."
    )
    if report.earlier_checked:
        click.echo(f"Also checked {report.earlier_checked} asset(s) an earlier run left unchecked.")
    for asset_id, error in report.earlier_failed:
        click.echo(
            f"warning asset {asset_id} (registered earlier) is still unchecked: {printable(error)}",
            err=True,
        )


@contextmanager
def _progress(
    enabled: bool, label: str = "registering"
) -> Iterator[Callable[[Any, int, int], None] | None]:
    """A progress bar on a terminal; nothing when output is piped or JSON."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    # A terminal that reports no size (a bare pty) would otherwise get no bar at all.
    size = shutil.get_terminal_size((80, 24))
    with tqdm(
        unit="file",
        desc=label,
        file=sys.stderr,
        leave=False,
        ncols=size.columns,
        nrows=size.lines,
    ) as bar:

        def step(result: RegisterResult | str, done: int, total: int) -> None:
            bar.total = total
            bar.update(1)
            bar.set_postfix_str(result if isinstance(result, str) else result.status)

        yield step


def main() -> None:
    """Console entry point."""
    cli(prog_name="provenance")
