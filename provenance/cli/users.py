"""`provenance users`: add, list, token, disable."""

from __future__ import annotations

import sys

import click

from provenance import (
    users,
)
from provenance.cli import _common as common


@click.group("users")
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
@common.pass_context
@common.fail_cleanly
def users_add(context: common.Context, name: str, role: str, by: str | None, as_json: bool) -> None:
    """Add user NAME with a role (no token yet: see `users token`)."""
    with context.open() as workspace:
        user = users.add_user(workspace, name, role, by=by)
    if as_json:
        common.print_json({"schema": "provenance.user/1", **user.to_json()})
    else:
        click.echo(f"Added {common.printable(name)} ({role}).")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common.pass_context
@common.fail_cleanly
def users_list(context: common.Context, as_json: bool) -> None:
    """List users, their roles and whether they hold a token."""
    with context.open() as workspace:
        found = users.list_users(workspace)
    if as_json:
        common.print_json(
            {"schema": "provenance.user-list/1", "users": [u.to_json() for u in found]}
        )
        return
    if not found:
        click.echo("No users.")
        return
    common.print_table(
        ("name", "role", "token", "status"),
        [
            (
                u.name,
                u.role,
                f"issued {u.token_issued_at}" if u.has_token else "-",
                f"disabled {u.disabled_at}" if u.disabled_at else "active",
            )
            for u in found
        ],
    )


@users_group.command("token")
@click.argument("name")
@click.option("--by", help="Who is issuing (default: the user setting or login name).")
@common.pass_context
@common.fail_cleanly
def users_token(context: common.Context, name: str, by: str | None) -> None:
    """Issue a new token for NAME and print it once (the previous one stops working)."""
    with context.open() as workspace:
        token = users.issue_token(workspace, name, by=by)
    click.echo(token)
    if sys.stderr.isatty():
        click.echo("Shown once: only its hash is kept.", err=True)


@users_group.command("disable")
@click.argument("name")
@click.option("--by", help="Who is disabling (default: the user setting or login name).")
@common.pass_context
@common.fail_cleanly
def users_disable(context: common.Context, name: str, by: str | None) -> None:
    """Disable NAME: their token stops working; their past records stay."""
    with context.open() as workspace:
        users.disable_user(workspace, name, by=by)
    click.echo(f"Disabled {common.printable(name)}.")
