"""The package's promises: a light import, a chosen public API, documented commands and
settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import provenance
from provenance.cli import cli
from provenance.config import SETTINGS, Setting
from provenance.errors import ProvenanceError

ROOT = Path(__file__).resolve().parent.parent


def test_import_loads_no_heavy_library() -> None:
    code = (
        "import sys, provenance, provenance.cli, provenance.workspace, provenance.registration; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'faiss', 'open_clip', 'alembic', 'cv2', "
        "'av', 'OpenImageIO', 'PyOpenColorIO', 'fileseq', 'pillow_heif', 'c2pa', 'pyhanko', "
        "'cryptography') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_loads_no_database_or_web_library() -> None:
    # Commands are imported when they run: asking the version loads none of them.
    code = (
        "import sys; from provenance.cli import cli\n"
        "try:\n"
        "    cli(['--version'], prog_name='provenance')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = [m for m in ('sqlalchemy', 'jinja2', 'fastapi', 'PIL', 'numpy') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_public_api() -> None:
    assert sorted(provenance.__all__) == [
        "ProvenanceError",
        "RegisterRequest",
        "Workspace",
        "__version__",
    ]
    assert provenance.ProvenanceError is ProvenanceError


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"`provenance {prefix}{name}` is listed but not defined"
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, prefix + name + " "))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_every_command_has_help(name: str, command: click.Command) -> None:
    assert command.help, f"`provenance {name}` has no help text"
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.help, f"`provenance {name}` option {parameter.opts} has no help"


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_every_command_is_in_the_readme(name: str, command: click.Command) -> None:
    assert f"provenance {name}" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting: Setting) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`{setting.name}`" in readme
    assert setting.help


def test_every_error_class_is_in_the_tree_docstring() -> None:
    from provenance import errors

    names = [
        n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, ProvenanceError)
    ]
    for name in names:
        assert name in (errors.__doc__ or "")


def test_console_script_runs_as_a_subprocess(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provenance", "init", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    failed = subprocess.run(
        [sys.executable, "-m", "provenance", "-w", str(tmp_path / "ws"), "show", "12345"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr == "Error: no asset with id 12345\n"


def test_every_generation_field_has_a_register_flag() -> None:
    from provenance.domain import GENERATION_FIELDS

    register = cli.get_command(click.Context(cli), "register")
    assert register is not None
    flags = {opt for p in register.params if isinstance(p, click.Option) for opt in p.opts}
    for name in GENERATION_FIELDS:
        assert "--" + name.replace("_", "-") in flags
