"""The studio's key, signed copies with Content Credentials, and verifying signed files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provenance.cli import _common as common
from provenance.errors import ProvenanceError, WorkspaceNotFound


@click.group("keys")
def keys_group() -> None:
    """The studio's signing key: exports, Content Credentials and anchors are signed with
    it (settings signing_certificate, signing_key or signing_command, trust_list)."""


@keys_group.command("init")
@click.option(
    "--organisation",
    default="Development Studio",
    show_default=True,
    help="The organisation named in the certificates.",
)
@click.option("--force", is_flag=True, help="Replace a key that is configured already.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.keys/1).")
@common.pass_context
@common.fail_cleanly
def keys_init(context: common.Context, organisation: str, force: bool, as_json: bool) -> None:
    """Make a development CA and signing certificate (ES256) in the workspace's keys/
    folder and configure them. For the demo and tests: a production workspace names the
    studio's certificate and key file, or a signing command (KMS, HSM)."""
    from provenance import signatures

    with context.open() as workspace:
        made = signatures.init_keys(workspace, organisation=organisation, force=force)
    if as_json:
        common.print_json(made.to_json())
        return
    click.echo(f"Signing as {made.signer}.")
    click.echo(f"  certificate chain  {made.files.certificate}")
    click.echo(f"  private key        {made.files.key} (readable by its owner only)")
    click.echo(
        f"  development CA     {made.files.ca_certificate} (hand it to whoever verifies; "
        "its own key was discarded)"
    )


@click.command("sign")
@click.argument("ref")
@common.out_folder
@common.pass_context
@common.fail_cleanly
def sign_command(context: common.Context, ref: str, out: Path) -> None:
    """Write a copy of asset REF with Content Credentials (C2PA) signed by the studio: the
    registered file as its ingredient (a vendor's manifest kept), and an assertion of its
    record's SHA-256, verdict, review status and approvals."""
    from provenance import exports

    with context.open() as workspace:
        paths = exports.sign_asset(workspace, ref, out)
    for path in paths:
        click.echo(f"wrote {path}")


@click.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--trust",
    "trust_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM file of certificates to trust besides the workspace's (repeatable). Outside "
    "a workspace, the studio's root certificate.",
)
@click.option(
    "--signature",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The detached signature of a single FILE (default: FILE.p7s beside it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (provenance.verify/1).")
@common.pass_context
@common.fail_cleanly
def verify_command(
    context: common.Context,
    files: tuple[Path, ...],
    trust_files: tuple[Path, ...],
    signature: Path | None,
    as_json: bool,
) -> None:
    """Check signed files: evidence packs and disclosure summaries (PDF), records with
    their .p7s, anchors files, and files with Content Credentials. Says who signed and
    whether each still matches; exits 1 when any does not hold."""
    from provenance import signatures

    if signature is not None and len(files) != 1:
        raise click.UsageError("--signature goes with exactly one FILE")
    try:
        with context.open() as workspace:
            trust = signatures.trust_for(workspace, list(trust_files))
    except WorkspaceNotFound:
        if not trust_files:
            raise
        trust = signatures.trust_for(None, list(trust_files))
    results = []
    failed = False
    # FILE and FILE.p7s both given (a folder's glob): one check of the pair.
    given = set(files)
    files = tuple(p for p in files if not (p.suffix == ".p7s" and p.with_suffix("") in given))
    for path in files:
        try:
            found = signatures.verify_file(path, trust, signature=signature)
        except ProvenanceError as exc:
            failed = True
            if as_json:
                results.append({"file": str(path), "ok": False, "error": str(exc)})
            else:
                click.echo(f"FAIL  {common.printable(path)}: {common.printable(exc)}")
            continue
        failed = failed or not found.ok
        if as_json:
            results.append(found.to_json())
            continue
        click.echo(f"{'OK  ' if found.ok else 'FAIL'}  {common.printable(path)} ({found.kind})")
        for report in found.reports:
            when = f", signed {report.signed_at}" if report.signed_at else ""
            trusted = "trusted" if report.trusted else "NOT trusted"
            click.echo(
                f"      signer {common.printable(report.signer)} ({trusted}{when}): "
                f"{common.printable(report.message)}"
            )
    if as_json:
        common.print_json(
            {"schema": "provenance.verify-list/1", "ok": not failed, "files": results}
        )
    if failed:
        sys.exit(1)
