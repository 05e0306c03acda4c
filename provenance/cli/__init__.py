"""The ``provenance`` command: parse arguments, make one use-case call, print the answer.

One module per command group: ``assets`` (init, config, register, show, list, check, demo),
``review`` (review, queue, serve), ``legal`` (tools, consent, approve, withdraw, declare,
revise, status, expired, export), ``users``, ``refs`` and ``admin`` (store, audit, db). A
command's module is imported only when that command runs, so ``provenance --version`` and
``--help`` of one command load nothing they do not use.

Exit codes: 0 success; 1 an error (``Error: <message>`` on stderr) or, for ``register``,
at least one file failed; 2 a usage error (unknown option, missing argument); 3 a check
verdict reached ``--fail-on``.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from pathlib import Path

import click

from provenance import __version__
from provenance.cli._common import Context

# Each command: the module defining it and its name there.
COMMANDS = {
    "init": "assets:init",
    "config": "assets:config_command",
    "register": "assets:register",
    "show": "assets:show",
    "list": "assets:list_command",
    "check": "assets:check_command",
    "demo": "assets:demo",
    "review": "review:review_command",
    "queue": "review:queue_command",
    "note": "review:note_command",
    "notes": "review:notes_command",
    "serve": "review:serve",
    "tools": "legal:tools_group",
    "consent": "legal:consent_group",
    "approve": "legal:approve_command",
    "withdraw": "legal:withdraw_command",
    "declare": "legal:declare_command",
    "revise": "legal:revise_command",
    "status": "legal:status_command",
    "expired": "legal:expired_command",
    "export": "legal:export_group",
    "users": "users:users_group",
    "refs": "refs:refs",
    "store": "admin:store_group",
    "audit": "admin:audit",
    "db": "admin:db",
    "keys": "signing:keys_group",
    "sign": "signing:sign_command",
    "verify": "signing:verify_command",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from their modules when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module_name, attribute = where.split(":")
        module = importlib.import_module(f"provenance.cli.{module_name}")
        command: click.Command = getattr(module, attribute)
        return command


@click.group(cls=LazyGroup)
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


def main() -> None:
    """Console entry point."""
    try:
        cli(prog_name="provenance")
    finally:
        # What the command made is freed with the process: keeping it out of the collector's
        # passes at exit saves a quarter of a second once SQLAlchemy, NumPy, SciPy and the
        # model runtimes are loaded (benchmarks/cli_startup.py). Exit handlers, flushing
        # and closing still run as usual. Not after OpenImageIO was used (OpenEXR, DPX): its
        # bindings (nanobind) count what is still alive at exit and print every object
        # they find as a leak.
        if "OpenImageIO" not in sys.modules:
            gc.freeze()
