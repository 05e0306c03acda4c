"""Commands of legal and admins about the records the policy rests on: tools, consent,
approve, withdraw, declare, revise, status, expired, export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import click

from provenance import (
    clearance,
    compliance,
    exports,
)
from provenance.cli import _common as common


@click.group("tools")
def tools_group() -> None:
    """Generative tools and their vetted data handling."""


@tools_group.command("add")
@click.argument("name")
@click.option("--vendor", help="Who makes it.")
@click.option("--version", "tool_version", help="The version vetted.")
@click.option(
    "--stores-inputs", type=common.HANDLING_CHOICE, required=True, help="Keeps prompts/assets?"
)
@click.option(
    "--trains-on-inputs", type=common.HANDLING_CHOICE, required=True, help="Trains on them?"
)
@click.option(
    "--enterprise-secured",
    type=common.HANDLING_CHOICE,
    required=True,
    help="Enterprise-secured setup?",
)
@click.option("--terms-url", help="Where its data-handling terms are published.")
@click.option("--notes", help="Anything else legal should know.")
@click.option("--by", help="Who vetted it (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.tool/1).")
@common.pass_context
@common.fail_cleanly
def tools_add(
    context: common.Context,
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
        tool = clearance.vet_tool(
            workspace,
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
        common.print_json(tool)
    else:
        click.echo(
            f"Vetted {common.printable(tool['name'])}: stores inputs {tool['stores_inputs']}, "
            f"trains on inputs {tool['trains_on_inputs']}, "
            f"enterprise-secured {tool['enterprise_secured']}."
        )


@tools_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def tools_list(context: common.Context, as_json: bool) -> None:
    """List tools with their data handling and how many assets each made."""
    with context.open() as workspace:
        found = clearance.list_tools(workspace)
    if as_json:
        common.print_json({"schema": "provenance.tool-list/1", "tools": found})
        return
    if not found:
        click.echo("No tools.")
        return
    common.print_table(
        ("tool", "vetted", "stores inputs", "trains on inputs", "enterprise-secured", "assets"),
        [
            (
                common.printable(t["name"]),
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
@common.pass_context
@common.fail_cleanly
def tools_show(context: common.Context, name: str, as_json: bool) -> None:
    """Show tool NAME, its current vetting and every earlier one."""
    with context.open() as workspace:
        tool = clearance.show_tool(workspace, name)
    if as_json:
        common.print_json(tool)
        return
    click.echo(f"tool {common.printable(tool['name'])}  ({tool['assets']} assets)")
    for key in ("vendor", "version", "stores_inputs", "trains_on_inputs", "enterprise_secured",
                "terms_url", "notes", "vetted_by", "vetted_at"):  # fmt: skip
        click.echo(f"  {key.replace('_', ' '):<19} {common.printable(str(tool[key] or '-'))}")


@click.group("consent")
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
@common.pass_context
@common.fail_cleanly
def consent_add(
    context: common.Context,
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
        made = clearance.add_consent(
            workspace,
            talent=talent,
            scope=scope,
            production=production,
            new_production=new_production,
            document=document,
            expires=expires,
            by=by,
        )
    if as_json:
        common.print_json({"schema": "provenance.consent/1", **made})
    else:
        click.echo(
            f"Consent #{made['consent_id']}: {common.printable(made['talent'])}, {made['scope']}, "
            f"until {made['expires']} (document {made['document_sha256'][:12]})."
        )


@consent_group.command("list")
@click.option("--talent", help="Only this performer's consents (any case).")
@click.option("--production", help="Only those covering this production (or any production).")
@click.option("--as-of", help="Judge expiry on this day instead of today (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.consent-list/1).")
@common.pass_context
@common.fail_cleanly
def consent_list(
    context: common.Context,
    talent: str | None,
    production: str | None,
    as_of: str | None,
    as_json: bool,
) -> None:
    """List consents: valid, expired or withdrawn, with their numbers (for `withdraw`)."""
    today = common.as_of_date(as_of) or dt.datetime.now(dt.UTC).date()
    with context.open() as workspace:
        found = clearance.list_consents(
            workspace, talent=talent, production=production, today=today
        )
    if as_json:
        common.print_json(
            {"schema": "provenance.consent-list/1", "as_of": today.isoformat(), "consents": found}
        )
        return
    if not found:
        click.echo("No consents.")
        return
    common.print_table(
        ("#", "talent", "scope", "production", "expires", "state", "document"),
        [
            (
                str(c["consent_id"]),
                common.printable(c["talent"]),
                c["scope"],
                common.printable(c["production"] or "any"),
                c["expires"],
                c["state"] + (f" ({c['days_left']} days left)" if c["state"] == "valid" else ""),
                c["document_sha256"][:12],
            )
            for c in found
        ],
    )


@click.command("approve")
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
@common.pass_context
@common.fail_cleanly
def approve_command(
    context: common.Context,
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
        made = clearance.approve(
            workspace, ref, approver=approver, reference=reference, document=document, by=by
        )
    if as_json:
        common.print_json({"schema": "provenance.approval/1", **made})
    else:
        click.echo(
            f"Approval #{made['approval_id']} of asset {made['asset_id']} by "
            f"{common.printable(made['approver'])}; covers {', '.join(made['covers'])}."
        )


@click.command("withdraw")
@click.argument("kind", type=click.Choice(("consent", "approval")))
@click.argument("number", type=click.IntRange(min=1, max=common.MAX_COUNT))
@click.option("--reason", required=True, help="Why it no longer holds.")
@click.option("--by", help="Who records it (default: the user setting or login name).")
@common.pass_context
@common.fail_cleanly
def withdraw_command(
    context: common.Context, kind: str, number: int, reason: str, by: str | None
) -> None:
    """Withdraw consent or approval NUMBER (the record stays; the withdrawal is added)."""
    with context.open() as workspace:
        clearance.withdraw(workspace, kind, number, reason, by=by)
    click.echo(f"Withdrew {kind} #{number}.")


def _talent(values: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, _, scope = value.rpartition(":") if ":" in value else (value, "", "likeness")
        pairs.append((name.strip(), scope.strip() or "likeness"))
    return pairs


@click.command("declare")
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
@common.pass_context
@common.fail_cleanly
def declare_command(
    context: common.Context,
    ref: str,
    personal_data: str | None,
    expires: str | None,
    talent: tuple[str, ...],
    by: str | None,
    as_json: bool,
) -> None:
    """Declare facts about asset REF that the policy needs (the newest declaration holds)."""
    with context.open() as workspace:
        made = clearance.declare(
            workspace,
            ref,
            personal_data=None if personal_data is None else personal_data == "yes",
            expires=expires,
            talent=_talent(talent) if talent else None,
            by=by,
        )
    if as_json:
        common.print_json({"schema": "provenance.declaration/1", **made})
    else:
        click.echo(f"Declared on asset {made['asset_id']}.")


@click.command("revise")
@click.argument("ref")
@click.option("--revised-by", required=True, help="Who did the human work on the asset.")
@click.option(
    "--how", required=True, help="What they did (repainted the signage, recomposited, ...)."
)
@click.option("--by", help="Who records it (default: the user setting or login name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.revision/1).")
@common.pass_context
@common.fail_cleanly
def revise_command(
    context: common.Context, ref: str, revised_by: str, how: str, by: str | None, as_json: bool
) -> None:
    """Record the human work done on asset REF: final deliverables need it on record."""
    with context.open() as workspace:
        made = clearance.revise(workspace, ref, revised_by=revised_by, how=how, by=by)
    if as_json:
        common.print_json({"schema": "provenance.revision/1", **made})
    else:
        click.echo(f"Revision #{made['revision_id']} recorded on asset {made['asset_id']}.")


@click.command("status")
@click.argument("ref")
@click.option("--as-of", help="Judge on this day instead of today (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.status/1).")
@common.pass_context
@common.fail_cleanly
def status_command(context: common.Context, ref: str, as_of: str | None, as_json: bool) -> None:
    """What asset REF must meet to be cleared for final: met, missing, and findings."""
    today = common.as_of_date(as_of)
    with context.open() as workspace:
        found = compliance.asset_status(workspace, ref, today=today)
    if as_json:
        common.print_json(found)
        return
    asset, verdict_policy = found["asset"], found["policy"]
    cleared = (
        "CLEARED for final" if verdict_policy["cleared_for_final"] else "NOT cleared for final"
    )
    click.echo(
        f"asset {asset['id']}  {common.printable(asset['original_name'])}  "
        f"({asset['intended_use']}): {cleared} as of {found['as_of']}"
    )
    for entry in verdict_policy["requirements"]:
        mark = "met    " if entry["met"] else "MISSING"
        detail = f" - {common.printable(entry['detail'])}" if entry["detail"] else ""
        click.echo(f"  {mark}  {common.printable(entry['text'])}{detail}  [{entry['guideline']}]")
    for entry in verdict_policy["findings"]:
        click.echo(f"  finding  {common.printable(entry['text'])}  [{entry['guideline']}]")


@click.command("expired")
@click.option("--as-of", help="Judge on this day instead of today (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def expired_command(context: common.Context, as_of: str | None, as_json: bool) -> None:
    """Temporary assets (ideation, previz) past their declared expiry date."""
    with context.open() as workspace:
        found = compliance.expired(workspace, today=common.as_of_date(as_of))
    if as_json:
        listed = [a.to_json() for a in found]
        common.print_json({"schema": "provenance.expired/1", "assets": listed})
        return
    if not found:
        click.echo("No temporary asset is past its expiry date.")
        return
    common.print_table(
        ("id", "file", "use", "production", "expired", "days past"),
        [
            (
                str(a.asset_id),
                common.printable(a.original_name),
                a.intended_use,
                common.printable(a.production or "-"),
                a.expires.isoformat(),
                str(a.days_past),
            )
            for a in found
        ],
    )


@click.group("export")
def export_group() -> None:
    """Provenance records, evidence packs and disclosure summaries for legal."""


@export_group.command("asset")
@click.argument("ref")
@common.out_folder
@click.option("--as-of", help="Judge the policy on this day instead of today (YYYY-MM-DD).")
@click.option("--no-pdf", is_flag=True, help="Skip the PDF (JSON and HTML only).")
@click.option(
    "--c2pa",
    is_flag=True,
    help="Also write a copy of the asset with Content Credentials signed by the studio "
    "(asset-ID-c2pa.EXT; needs a signing key).",
)
@common.pass_context
@common.fail_cleanly
def export_asset(
    context: common.Context, ref: str, out: Path, as_of: str | None, no_pdf: bool, c2pa: bool
) -> None:
    """Write asset REF's record (asset-ID.json, provenance.record/1) and its evidence pack
    (asset-ID.html and asset-ID.pdf). With a studio key, the PDF is signed, the JSON gets
    a detached signature (.p7s) and the audit head is anchored (audit-anchor.json)."""
    today = common.as_of_date(as_of)
    with context.open() as workspace:
        paths = exports.export_asset(workspace, ref, out, today=today, pdf=not no_pdf, c2pa=c2pa)
        signed = workspace.studio_key() is not None
    for path in paths:
        click.echo(f"wrote {path}")
    _say_unsigned(signed)
    _say_unanchored(paths)


@export_group.command("production")
@click.argument("name")
@common.out_folder
@click.option("--as-of", help="Judge the policy on this day instead of today (YYYY-MM-DD).")
@click.option("--no-pdf", is_flag=True, help="Skip the disclosure's PDF (JSON, HTML, CSV).")
@click.option(
    "--pdf",
    "asset_pdfs",
    is_flag=True,
    help="Also write each asset's evidence pack as a PDF (assets/asset-ID.pdf).",
)
@common.pass_context
@common.fail_cleanly
def export_production(
    context: common.Context,
    name: str,
    out: Path,
    as_of: str | None,
    no_pdf: bool,
    asset_pdfs: bool,
) -> None:
    """Write production NAME's disclosure summary (disclosure.json, provenance.disclosure/1,
    .html, .pdf, and disclosure.csv with one row per asset for spreadsheets) and every
    asset's record and evidence pack under assets/ (with --pdf, as PDFs too)."""
    if no_pdf and asset_pdfs:
        raise click.UsageError("--pdf and --no-pdf contradict each other")
    today = common.as_of_date(as_of)
    with context.open() as workspace:
        paths = exports.export_production(
            workspace, name, out, today=today, pdf=not no_pdf, asset_pdfs=asset_pdfs
        )
        signed = workspace.studio_key() is not None
    shown = [p for p in paths if p.parent == out]
    for path in shown:
        click.echo(f"wrote {path}")
    records = [p for p in paths if p.parent != out and p.suffix == ".json"]
    packs = "records, evidence packs and PDFs" if asset_pdfs else "records and evidence packs"
    click.echo(f"wrote the {packs} of {len(records)} assets in {out / 'assets'}")
    _say_unsigned(signed)
    _say_unanchored(paths)


def _say_unanchored(paths: list[Path]) -> None:
    if not any(path.name == "audit-anchor.json" for path in paths):
        click.echo(
            "Note: the audit chain does not verify, so its head was not anchored; the "
            "records say where it breaks (`provenance audit verify`).",
            err=True,
        )


def _say_unsigned(signed: bool) -> None:
    if not signed:
        click.echo(
            "Note: not signed: no studio key is configured (signing_certificate); "
            "`provenance keys init` makes a development key.",
            err=True,
        )
