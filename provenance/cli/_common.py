"""What every command module shares: the context holding the workspace option, the
error handling that turns a ProvenanceError into one line, and the printing helpers.

Importing this module loads only click: a workspace (SQLAlchemy and the rest) is imported
when a command opens one.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from provenance.domain import IntendedUse
from provenance.errors import ProvenanceError
from provenance.files import display_name
from provenance.scoring import nearest_words, score_words

if TYPE_CHECKING:
    from provenance.checking import CheckResult
    from provenance.registration import RegisterResult
    from provenance.workspace import Workspace

P = ParamSpec("P")


R = TypeVar("R")


# The largest count or number an option takes: past it, SQL integers overflow.
MAX_COUNT = 10**9


# Exit status when a verdict reaches --fail-on (1 is kept for errors).
FAIL_ON_EXIT = 3


USE_HELP = "; ".join(f"{use.value}: {use.description}" for use in IntendedUse.declarable())


def check_use(
    _context: click.Context, _parameter: click.Parameter, value: str | None
) -> str | None:
    """A --use value must name an intended use one can declare: an unknown one is a usage
    error (exit status 2), refused before the workspace opens."""
    if value is not None:
        try:
            IntendedUse.parse(value)
        except ProvenanceError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def check_use_filter(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> str | None:
    """As ``check_use``, also taking ``undeclared`` (a filter for assets that declared none)."""
    if value is not None and value.strip().lower() == IntendedUse.UNDECLARED.value:
        return value
    return check_use(context, parameter, value)


class Context:
    """What the top-level options say, handed to every command."""

    def __init__(self, workspace: Path | None) -> None:
        self.workspace_dir = workspace

    @contextmanager
    def open(self) -> Iterator[Workspace]:
        from provenance.workspace import Workspace

        workspace = Workspace.open(self.workspace_dir)
        try:
            yield workspace
        finally:
            workspace.close()


pass_context = click.make_pass_decorator(Context)


def fail_cleanly(function: Callable[P, R]) -> Callable[P, R]:
    """Turn a ProvenanceError into ``Error: <message>`` and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ProvenanceError as exc:
            raise click.ClickException(display_name(str(exc))) from None

    return wrapper


HANDLING_CHOICE = click.Choice(("yes", "no", "unknown"))

# The folder an export or a signed copy is written into.
out_folder = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write into.",
)


def as_of_date(text: str | None) -> dt.date | None:
    from provenance.clearance import parse_date

    return parse_date(text, "--as-of") if text else None


def print_json(document: Any) -> None:
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


def asset_field(asset: dict[str, Any], name: str) -> str:
    entry = asset["generation"]["fields"].get(name)
    return "-" if entry is None else printable(entry["value"])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(headers), *[[printable(c) for c in row] for row in rows]]
    widths = [min(40, max(len(row[i]) for row in cells)) for i in range(len(headers))]
    for row in cells:
        click.echo(
            "  ".join(clip(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_asset(record: dict[str, Any]) -> None:
    media = record["media"]
    click.echo(f"asset {record['id']}  {printable(record['original_name'])}")
    click.echo(f"  sha256        {record['sha256']}")
    click.echo(f"  media         {media_text(media)}")
    click.echo(f"  intended use  {record['intended_use']}")
    click.echo(f"  production    {printable(record['production'] or '-')}")
    click.echo(f"  registered    {record['registered_at']} by {printable(record['registered_by'])}")
    click.echo("  fingerprints")
    for fingerprint in record["fingerprints"]:
        click.echo(f"    {fingerprint['kind']:<9} {fingerprint['value']}  [{fingerprint['spec']}]")
    click.echo("  generation")
    generation = record["generation"]
    # Names line up, up to a width; a longer setting name (a tool's own) pushes its value on.
    names = [n for n, e in generation["fields"].items() if e is not None]
    width = min(24, max([15, *(len(printable(n)) for n in [*names, *generation["settings"]])]))
    for name, entry in generation["fields"].items():
        if entry is not None:
            # Prompts keep their line breaks, indented under the first line.
            indent = "\n" + " " * (width + 5)
            text = printable(entry["value"], one_line=False).replace("\n", indent)
            click.echo(f"    {name:<{width}} {text}  ({entry['source']})")
    for key, entry in generation["settings"].items():
        value = entry["value"] if isinstance(entry["value"], str) else json.dumps(entry["value"])
        click.echo(
            f"    {printable(key):<{width}} {clip(printable(value), 100)}  ({entry['source']})"
        )
    for line in credentials_text(record.get("content_credentials")):
        click.echo(line)
    review = record["review"]
    reopened = " (reopened: a new check changed the verdict)" if review["reopened"] else ""
    click.echo(f"  status        {review['status']}{reopened}")
    if record["checks"]:
        click.echo("  checks")
    for check in record["checks"]:
        reason = check["reasons"][0] if check["reasons"] else None
        detector, score = reason_cells(reason)
        item = f"{reason['reference_set']}#{reason['item_id']} " if reason else ""
        click.echo(
            f"    check {check['check_id']:<5} {check['created_at'][:19].replace('T', ' ')}  "
            f"{check['verdict']:<7} {item}{detector} {score}".rstrip(" -")
        )
        for line in frame_ranges_text(check.get("frames")):
            click.echo(f"      {line}")
    if review["decisions"]:
        click.echo("  decisions")
    for made in review["decisions"]:
        click.echo(
            f"    #{made['review_id']:<5} {made['decided_at'][:19].replace('T', ' ')}  "
            f"{made['decision']:<13} by {printable(made['decided_by'])} ({made['role']}) "
            f"on check {made['check_id']}: {clip(printable(made['rationale']), 100)}"
        )


def credentials_text(found: dict[str, Any] | None) -> list[str]:
    """The lines ``show`` prints about a file's Content Credentials (C2PA)."""
    if found is None:
        return ["  content credentials  none (the file carries no C2PA manifest)"]
    made = found.get("claim_generator") or "unknown generator"
    if found.get("claim_generator_version"):
        made += f" {found['claim_generator_version']}"
    lines = [
        f"  content credentials  {found['validation_state']}",
        f"    claim generator  {printable(made)}",
        f"    signed by        {printable(found.get('signer') or 'unknown')}"
        + (f", issued by {printable(found['issuer'])}" if found.get("issuer") else "")
        + f"; {'at ' + found['signing_time'] if found.get('signing_time') else 'no trusted time'}",
    ]
    for action in found.get("actions") or []:
        source = str(action.get("digital_source_type") or "").rsplit("/", 1)[-1]
        agent = action.get("software_agent")
        lines.append(
            f"    action           {action.get('action')}"
            + (f" ({printable(source)})" if source else "")
            + (f" by {printable(agent)}" if agent else "")
        )
    for ingredient in found.get("ingredients") or []:
        inner = ingredient.get("manifest")
        signed = f", signed by {printable(inner.get('signer'))}" if inner else ""
        lines.append(
            f"    ingredient       {printable(ingredient.get('title') or '?')} "
            f"({ingredient.get('relationship')}{signed})"
        )
    if found.get("sidecar"):
        lines.append(f"    read from        {printable(found['sidecar'])}")
    return lines


def media_text(media: dict[str, Any]) -> str:
    """An asset's media facts on one line."""
    size = f"{media['width']}x{media['height']}"
    if media.get("kind") == "movie":
        seconds = media.get("duration_seconds")
        duration = f" ({seconds:g} s)" if seconds else ""
        timecode = f", timecode {media['timecode']}" if media.get("timecode") else ""
        return (
            f"movie: {media['codec']} {media.get('profile') or ''} {size}, "
            f"{media.get('frame_rate') or '?'} fps, {media['frames']} frames{duration}"
            f"{timecode}, {media.get('pixel_format') or '?'}".replace("  ", " ")
        )
    if media.get("kind") == "sequence":
        return (
            f"sequence: {media['format']} {size} {media['mode']} {media['bit_depth']}-bit, "
            f"frames {media['first_frame']}-{media['last_frame']} ({media['frames']}), "
            f"{media.get('frame_rate')} fps"
            + (f", timecode {media['timecode']}" if media.get("timecode") else "")
        )
    return (
        f"{media['format']} {size} {media['mode']} {media['bit_depth']}-bit, "
        f"{media['frames']} frame(s)"
    )


def frame_ranges_text(frames: dict[str, Any] | None) -> list[str]:
    """A movie's or sequence's matching frame ranges in words, one line per range:
    "frames 30-60 recreate studio-ip#3 (high; strongest: frame 48, sscd 0.987)"."""
    if not frames:
        return []
    lines = []
    for r in frames.get("ranges", []):
        span = (
            f"frame {r['first']}"
            if r["first"] == r["last"]
            else (f"frames {r['first']}-{r['last']}")
        )
        lines.append(
            f"{span} recreate {r['reference_set']}#{r['item_id']} ({r['verdict']}; strongest: "
            f"frame {r['strongest_frame']}, {r['detector']} "
            f"{score_words(r['detector'], r['score'], r['detector'] != 'phash')})"
        )
    return lines


def print_checks(checks: list[CheckResult]) -> None:
    rows = []
    for check in checks:
        best = check.best_match
        reason = check.reasons[0] if check.reasons else None
        rows.append(
            (
                str(check.asset_id),
                check.verdict,
                f"{best['reference_set']}#{best['item_id']} {Path(best['source_path']).name}"
                if best and check.verdict != "clear"
                else "-",
                *reason_cells(reason),
            )
        )
    print_table(("asset", "verdict", "best match", "detector", "score"), rows)
    for check in checks:
        words = best_verification_words(check)
        if words:
            click.echo(f"asset {check.asset_id}: {words}")
        if check.verdict == "clear":
            nearest = nearest_words({"thresholds": check.thresholds, "matches": check.matches})
            click.echo(f"asset {check.asset_id}: clear; {nearest}")
        for line in frame_ranges_text(check.frames):
            click.echo(f"asset {check.asset_id}: {line}")
    for check in checks:
        if check.verification.get("status") == "unavailable":
            click.echo(
                f"warning: geometric verification did not run: {check.verification['reason']}",
                err=True,
            )
        for detector in check.detectors:
            if detector["status"] != "ran":
                click.echo(
                    f"warning: {detector['name']} did not run: {detector['reason']}", err=True
                )
        for reference_set in check.reference_sets:
            for problem in reference_set["problems"]:
                click.echo(f"warning: {reference_set['name']}: {problem}", err=True)
        break  # the same detectors and sets apply to every check of one run


def best_verification_words(check: CheckResult) -> str | None:
    """The geometric verification of the check's best match, in words (None when the check
    is clear or that item was not verified)."""
    best = check.best_match
    if best is None or check.verdict == "clear":
        return None
    for verification in check.verifications:
        if (verification["reference_set"], verification["item_id"]) == (
            best["reference_set"],
            best["item_id"],
        ):
            return str(verification["summary"])
    return None


def reason_cells(reason: dict[str, Any] | None) -> tuple[str, str]:
    """A reason's detector (with region) and score, in the detector's own unit."""
    if reason is None:
        return "-", "-"
    score = score_words(
        reason["detector"], reason["score"], reason["thresholds"]["higher_is_closer"]
    )
    return f"{reason['detector']} ({reason['region']})", score


def verdict_text(check: CheckResult) -> str:
    best = check.best_match
    if check.verdict == "clear" or best is None:
        return "clear"
    ranges = [
        r
        for r in (check.frames or {}).get("ranges", [])
        if (r["reference_set"], r["item_id"]) == (best["reference_set"], best["item_id"])
    ]
    spans = ", ".join(
        str(r["first"]) if r["first"] == r["last"] else f"{r['first']}-{r['last']}" for r in ranges
    )
    where = f" (frames {spans})" if spans else ""
    return f"{check.verdict}: {best['reference_set']}#{best['item_id']}{where}"


@contextmanager
def progress_bar(
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


def on_a_cluster(
    work: str, *, shared: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The --scheduler and --workers options of a command whose ``work`` ("Decode and
    embed") can run on a Dask cluster; ``shared``: its workers read the files and the
    workspace themselves."""
    reach = ", reaching the files and the workspace at the same paths" if shared else ""

    def options(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--workers",
            type=click.IntRange(min=1),
            help=f"{work} on a local Dask cluster of N worker processes.",
        )(command)
        return click.option(
            "--scheduler",
            metavar="tcp://HOST:PORT",
            help=f"{work} on this Dask cluster's workers (provenance installed on each, "
            f"with the same detectors{reach}); this process writes the records.",
        )(command)

    return options
