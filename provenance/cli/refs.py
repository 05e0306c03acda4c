"""`provenance refs`: reference sets (add, add-items, list, show, rebuild, remove)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from provenance import (
    reference_sets,
)
from provenance.cli import _common as common


@click.group()
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
@common.on_a_cluster("Decode and embed")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common.pass_context
@common.fail_cleanly
def refs_add(
    context: common.Context,
    name: str,
    sources: tuple[Path, ...],
    rights: str,
    holder: str | None,
    description: str,
    attribution: str | None,
    by: str | None,
    scheduler: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Create reference set NAME from images, fingerprint them and build its indexes."""
    with context.open() as workspace, _refs_progress(not as_json) as progress:
        report = reference_sets.create(
            workspace,
            name,
            sources,
            rights=rights,
            holder=holder,
            description=description,
            attribution=attribution,
            by=by,
            progress=progress,
            scheduler=scheduler,
            workers=workers,
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
@common.on_a_cluster("Decode and embed")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@common.pass_context
@common.fail_cleanly
def refs_add_items(
    context: common.Context,
    name: str,
    sources: tuple[Path, ...],
    attribution: str | None,
    by: str | None,
    scheduler: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Add images to reference set NAME; items already in it are skipped (resumes)."""
    with context.open() as workspace, _refs_progress(not as_json) as progress:
        report = reference_sets.add(
            workspace, name, sources, attribution=attribution, by=by, progress=progress,
            scheduler=scheduler, workers=workers,
        )  # fmt: skip
    _print_ingest(report, as_json)


@refs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def refs_list(context: common.Context, as_json: bool) -> None:
    """List the active reference sets."""
    with context.open() as workspace:
        sets = reference_sets.list_sets(workspace)
    if as_json:
        listed = [s.to_json() for s in sets]
        common.print_json({"schema": "provenance.refs-list/1", "reference_sets": listed})
        return
    if not sets:
        click.echo("No reference sets.")
        return
    common.print_table(
        ("name", "rights", "holder", "items", "description"),
        [
            (
                s.name,
                s.rights_status,
                s.rights_holder or "-",
                str(s.items),
                s.description,
            )
            for s in sets
        ],
    )


@refs.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def refs_show(context: common.Context, name: str, as_json: bool) -> None:
    """Show reference set NAME with its items."""
    with context.open() as workspace:
        document = reference_sets.show(workspace, name)
    if as_json:
        common.print_json({"schema": "provenance.refs-show/1", **document.to_json()})
        return
    click.echo(f"{common.printable(document.name)}: {common.printable(document.description)}")
    holder = common.printable(document.rights_holder or "-")
    click.echo(f"  rights  {document.rights_status}  holder {holder}")
    common.print_table(
        ("item", "sha256", "source", "attribution"),
        [
            (str(i.id), i.sha256[:12], i.source_path, i.attribution or "-")
            for i in document.item_list or []
        ],
    )


@refs.command("rebuild")
@click.argument("name")
@click.option("--by", help="Who is rebuilding (default: the user setting or login name).")
@common.pass_context
@common.fail_cleanly
def refs_rebuild(context: common.Context, name: str, by: str | None) -> None:
    """Rebuild NAME's indexes under the detectors' current specs."""
    with context.open() as workspace:
        built = reference_sets.rebuild(workspace, name, by=by)
    for detector, facts in built.items():
        click.echo(f"{detector}: {facts['count']} vectors, {facts['index_type']}")


@refs.command("remove")
@click.argument("name")
@click.option("--by", help="Who is removing (default: the user setting or login name).")
@common.pass_context
@common.fail_cleanly
def refs_remove(context: common.Context, name: str, by: str | None) -> None:
    """Retire reference set NAME: no longer checked against; past checks keep naming it."""
    with context.open() as workspace:
        reference_sets.remove(workspace, name, by=by)
    click.echo(f"Removed reference set {name}.")


def _print_ingest(report: Any, as_json: bool) -> None:
    if as_json:
        common.print_json(report.to_json())
    else:
        for path, error in report.failed:
            click.echo(f"failed  {common.printable(path)}: {common.printable(error)}", err=True)
        for skipped in report.skipped:
            click.echo(
                f"skipped {common.printable(skipped.path)}: {common.printable(skipped.reason)}",
                err=True,
            )
        click.echo(
            f"{report.name}: {report.added} added, {report.known} already present, "
            f"{len(report.failed)} failed, {len(report.skipped)} skipped."
        )
        for detector, facts in report.indexes.items():
            click.echo(f"  {detector} index: {facts['count']} vectors, {facts['index_type']}")
        for detector, reason in report.unavailable.items():
            click.echo(f"warning: {detector} did not run: {reason}", err=True)
    if report.failed:
        sys.exit(1)


@contextmanager
def _refs_progress(enabled: bool) -> Iterator[Callable[[str, str, int, int], None] | None]:
    with common.progress_bar(enabled, "fingerprinting") as step:
        if step is None:
            yield None
            return

        def on_file(path: str, outcome: str, done: int, total: int) -> None:
            step(outcome.split(":")[0], done, total)

        yield on_file
