from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from provenance.cli import cli
from provenance.workspace import Workspace


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the PROVENANCE_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("PROVENANCE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    Workspace.create(directory).close()
    return directory


@pytest.fixture
def workspace(workspace_dir: Path) -> Iterator[Workspace]:
    with Workspace.open(workspace_dir) as opened:
        yield opened


def run(*args: Any, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process, as a user would type it."""
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def run_json(*args: Any) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def snapshot(workspace_dir: Path) -> dict[str, Any]:
    """Everything a failed command must leave unchanged: row counts and stored files."""
    with Workspace.open(workspace_dir) as workspace:
        counts = workspace.row_counts()
    store = sorted(
        p.relative_to(workspace_dir).as_posix() for p in (workspace_dir / "store").rglob("*")
    )
    return {"rows": counts, "store": store}
