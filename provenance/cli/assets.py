"""Commands about assets: init, config, register, show, list, check, demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provenance import (
    assets,
    checking,
    registration,
)
from provenance.cli import _common as common
from provenance.domain import GENERATION_FIELDS
from provenance.errors import ProvenanceError
from provenance.registration import RegisterReport, RegisterRequest
from provenance.workspace import Workspace


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--database-url",
    help="Keep records in this database (a team's PostgreSQL: postgresql://user@host/db); "
    "written into provenance.toml.",
)
@common.pass_context
@common.fail_cleanly
def init(context: common.Context, directory: Path | None, database_url: str | None) -> None:
    """Create a workspace in DIRECTORY (default: --workspace, else the current folder)."""
    target = directory or context.workspace_dir or Path.cwd()
    workspace = Workspace.create(target, database_url=database_url)
    workspace.close()
    click.echo(f"Created workspace in {workspace.root}")


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def config_command(context: common.Context, as_json: bool) -> None:
    """Print every setting's effective value and where it came from."""
    with context.open() as workspace:
        effective = workspace.settings.effective()
    if as_json:
        common.print_json(
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


@click.command()
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
@click.option("--use", callback=common.check_use, help=f"Intended use. {common.USE_HELP}.")
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
    help="Processes fingerprinting the files, then finding their checks' matches (default: "
    "the jobs setting; 0: automatic).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail, registering nothing, when a folder holds a file that would be skipped.",
)
@common.on_a_cluster("Fingerprint the files and find their checks' matches", shared=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@common.pass_context
@common.fail_cleanly
def register(
    context: common.Context,
    /,
    paths: tuple[Path, ...],
    settings: tuple[str, ...],
    use: str | None,
    production: str | None,
    by: str | None,
    metadata_file: Path | None,
    fail_on: str | None,
    jobs: int | None,
    strict: bool,
    scheduler: str | None,
    workers: int | None,
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
        strict=strict,
    )
    with context.open() as workspace, common.progress_bar(enabled=not as_json) as progress:
        report = registration.register(
            workspace, paths, request, progress, jobs=jobs, scheduler=scheduler, workers=workers
        )
    single = report.results[0] if len(report.results) == 1 and not report.skipped else None
    if single is not None and single.status == "failed" and not as_json:
        raise click.ClickException(
            f"{common.printable(single.path)}: {common.printable(single.error)}"
        )
    if as_json:
        common.print_json(report.to_json())
    else:
        _print_register_report(report)
    if report.count("failed"):
        sys.exit(1)
    if fail_on and _reaches([r.check.verdict for r in report.results if r.check], fail_on):
        sys.exit(common.FAIL_ON_EXIT)
    if request.use is None and report.count("new") and not as_json:
        click.echo(
            "Note: no intended use declared; recorded as 'undeclared'. Pass --use.", err=True
        )


@click.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the full record as JSON.")
@common.pass_context
@common.fail_cleanly
def show(context: common.Context, ref: str, as_json: bool) -> None:
    """Show one asset by id (42) or sha256 prefix (8+ hex digits)."""
    with context.open() as workspace:
        record = assets.show(workspace, ref)
    if as_json:
        common.print_json(record)
        return
    common.print_asset(record)


@click.command("list")
@click.option("--production", help="Only this production.")
@click.option("--tool", help="Only assets made with this tool.")
@click.option(
    "--use", callback=common.check_use_filter, help="Only this intended use (or 'undeclared')."
)
@click.option("--since", help="Only assets registered at or after this date or ISO time.")
@click.option(
    "--status",
    help="Only assets in this review status (flagged, escalated, approved, rejected, "
    "needs_changes, legal_approved, legal_rejected, clear, registered).",
)
@click.option(
    "--verdict", help="Only assets whose newest check says this (high, review, clear, unchecked)."
)
@click.option("--by", "registered_by", help="Only assets this person registered.")
@click.option(
    "--limit", type=click.IntRange(min=1, max=common.MAX_COUNT), help="At most this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def list_command(
    context: common.Context,
    production: str | None,
    tool: str | None,
    use: str | None,
    since: str | None,
    status: str | None,
    verdict: str | None,
    registered_by: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List registered assets, oldest first, with their newest verdict and review status."""
    with context.open() as workspace:
        found = assets.list_assets(
            workspace,
            production=production,
            tool=tool,
            use=use,
            since=since,
            status=status,
            verdict=verdict,
            registered_by=registered_by,
            limit=limit,
        )
    if as_json:
        common.print_json({"schema": "provenance.asset-list/1", "assets": found})
        return
    if not found:
        click.echo("No assets.")
        return
    rows = [
        (
            str(a["id"]),
            a["sha256"][:12],
            a["checks"][-1]["verdict"] if a["checks"] else "unchecked",
            a["review"]["status"],
            a["intended_use"],
            a["production"] or "-",
            common.asset_field(a, "tool"),
            common.asset_field(a, "model"),
            a["registered_at"][:19].replace("T", " "),
            a["original_name"],
        )
        for a in found
    ]
    common.print_table(
        (
            "id",
            "sha256",
            "verdict",
            "status",
            "use",
            "production",
            "tool",
            "model",
            "registered",
            "file",
        ),
        rows,
    )


@click.command("check")
@click.argument("refs", nargs=-1)
@click.option(
    "--pending",
    is_flag=True,
    help="Check every asset still waiting for a check (e.g. after an interrupted register).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["review", "high"]),
    help=f"Exit with status {common.FAIL_ON_EXIT} when any verdict is at or above this level.",
)
@click.option("--by", help="Who is checking (default: the user setting or login name).")
@click.option(
    "--jobs",
    type=click.IntRange(min=0, max=1024),
    help="With --pending: processes finding the checks' matches (default: the jobs setting; "
    "0: automatic).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@common.pass_context
@common.fail_cleanly
def check_command(
    context: common.Context,
    refs: tuple[str, ...],
    pending: bool,
    fail_on: str | None,
    by: str | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Check assets (ids or sha256 prefixes) against every reference set.

    Each check is recorded (a re-check adds a new one). JSON follows provenance.check/2.
    With --pending, the assets that have no check yet are checked (JSON:
    provenance.check-pending/1). Exit status: 0 done; 1 error (or a pending check failed);
    3 a verdict reached --fail-on.
    """
    if pending == bool(refs):
        raise click.UsageError("give asset ids or --pending (not both)")
    if jobs is not None and not pending:
        raise click.UsageError("--jobs goes with --pending")
    failed: dict[int, str] = {}
    with context.open() as workspace:
        if pending:
            outcome = checking.check_pending(workspace, by=by, jobs=jobs)
            checks, failed = list(outcome.checks.values()), outcome.failed
        else:
            checks = checking.check(workspace, refs, by=by)
    if as_json:
        common.print_json(
            outcome.to_json()
            if pending
            else {"schema": "provenance.check-list/1", "checks": [c.to_json() for c in checks]}
        )
    else:
        if pending and not checks and not failed:
            click.echo("No asset is waiting for a check.")
        common.print_checks(checks)
        for asset_id, error in sorted(failed.items()):
            click.echo(f"failed  asset {asset_id}: {common.printable(error)}", err=True)
    if failed:
        sys.exit(1)
    if fail_on and _reaches([c.verdict for c in checks], fail_on):
        sys.exit(common.FAIL_ON_EXIT)


def _reaches(verdicts: list[str], level: str) -> bool:
    levels = {"clear": 0, "review": 1, "high": 2}
    return any(levels[v] >= levels[level] for v in verdicts)


@click.command()
@click.argument(
    "directory",
    required=False,
    default="demo-workspace",
    type=click.Path(file_okay=False, path_type=Path),
)
def demo(directory: Path) -> None:
    """Build a demo workspace offline and print its triage table.

    A reference set of real photographs; generated assets recreating six of them (crop,
    resize, recolour, text overlay, composite, mirror), four unrelated pictures and an
    animatic (a movie) with one of them in a frame range, each registered with generation
    metadata and checked.
    """
    from provenance.demo import build_demo

    try:
        rows = build_demo(directory)
    except ProvenanceError as exc:
        raise click.ClickException(str(exc)) from None
    common.print_table(
        ("asset", "file", "use", "recreates", "verdict", "best match", "detector", "score"),
        [
            (
                str(r.asset_id),
                r.file,
                r.use,
                r.recreates or "-",
                f"{r.verdict} (frames {r.frames})" if r.frames else r.verdict,
                r.best_match,
                *common.reason_cells(r.reason),
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


# A batch up to this size lists every file; a larger one lists the flagged and failed only.
LIST_EVERY_FILE = 20


def _print_register_report(report: RegisterReport) -> None:
    every = len(report.results) <= LIST_EVERY_FILE
    for result in report.results:
        if result.status == "failed":
            click.echo(
                f"failed  {common.printable(result.path)}: {common.printable(result.error)}",
                err=True,
            )
            continue
        for note in result.notes:
            click.echo(
                f"note    {common.printable(result.path)}: {common.printable(note)}", err=True
            )
        if result.error:  # registered, but something after it (the check) failed
            click.echo(
                f"warning {common.printable(result.path)}: {common.printable(result.error)}",
                err=True,
            )
        flagged = result.check is not None and result.check.verdict != "clear"
        if (every or flagged) and result.asset is not None:
            asset = result.asset
            label = "new    " if result.status == "new" else "known  "
            verdict = f"  {common.verdict_text(result.check)}" if result.check else ""
            click.echo(
                f"{label} asset {asset['id']}  {asset['sha256'][:12]}  {asset['intended_use']}  "
                f"{common.printable(result.path)}{verdict}"
            )
    for skipped in report.skipped:
        click.echo(
            f"skipped {common.printable(skipped.path)}: {common.printable(skipped.reason)}",
            err=True,
        )
    click.echo(
        f"{report.count('new')} new, {report.count('known')} already registered, "
        f"{report.count('failed')} failed, {len(report.skipped)} skipped."
    )
    verdicts = report.verdicts()
    if any(verdicts.values()):
        counted = ", ".join(f"{n} {verdict}" for verdict, n in verdicts.items() if n)
        shown = "" if every or not (verdicts["high"] or verdicts["review"]) else " (flagged listed)"
        click.echo(f"Checked: {counted}{shown}.")
    if report.earlier_checked:
        click.echo(f"Also checked {report.earlier_checked} asset(s) an earlier run left unchecked.")
    for asset_id, error in report.earlier_failed:
        click.echo(
            f"warning asset {asset_id} (registered earlier) is still unchecked: "
            f"{common.printable(error)}",
            err=True,
        )
