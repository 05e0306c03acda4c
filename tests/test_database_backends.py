"""What must hold alike on SQLite and on a real PostgreSQL server: hostile text, racing
writers, and a database that cannot be reached."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from provenance import Workspace, reference_sets, registration
from provenance.errors import ProvenanceError
from provenance.registration import RegisterRequest
from tests import filemakers as fm
from tests.conftest import run, snapshot, sql


def test_a_nul_character_in_a_prompt_is_refused_and_changes_nothing(
    db_workspace_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "shot.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(picture)
    (tmp_path / "shot.png.json").write_text(json.dumps({"prompt": "a\u0000b", "tool": "x"}))
    before = snapshot(db_workspace_dir)
    result = run("-w", db_workspace_dir, "register", picture)
    assert result.exit_code == 1
    assert "the prompt contains a NUL character" in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(db_workspace_dir) == before


def test_two_writers_registering_the_same_file_make_one_asset(
    db_workspace_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "same.png"
    fm.sample("coffee.jpg").save(picture)
    barrier = threading.Barrier(3)
    statuses: list[str] = []

    def register() -> None:
        with Workspace.open(db_workspace_dir) as workspace:
            barrier.wait()
            report = registration.register(workspace, [picture], RegisterRequest(), jobs=1)
            statuses.extend(r.status for r in report.results)

    threads = [threading.Thread(target=register) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["known", "known", "new"]
    listed = json.loads(run("-w", db_workspace_dir, "list", "--json").stdout)["assets"]
    assert len(listed) == 1
    assert json.loads(run("-w", db_workspace_dir, "audit", "verify", "--json").stdout)["ok"]


def test_an_unreachable_database_is_a_one_line_error_and_leaves_no_workspace(
    tmp_path: Path,
) -> None:
    target = tmp_path / "team"
    result = run("init", target, "--database-url", "postgresql://nobody@127.0.0.1:9/none")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use the database: ")
    assert result.stderr.count("\n") == 1
    assert not (target / "provenance.toml").exists()


def test_writers_naming_a_new_production_and_tool_at_once_share_them(
    db_workspace_dir: Path, tmp_path: Path
) -> None:
    """Artists registering the first outputs of a new production and a new tool at the same
    moment: each file is registered, the production and the tool exist once."""
    writers = 3
    pictures = []
    for number in range(writers):
        picture = tmp_path / f"first_{number}.png"
        Image.new("RGB", (64, 64), (40 * number, 90, 200)).save(picture)
        pictures.append(picture)
    barrier = threading.Barrier(writers)
    results: list[Any] = []

    def register(picture: Path) -> None:
        with Workspace.open(db_workspace_dir) as workspace:
            # Spelled differently by each artist: still one tool (its first spelling).
            spelling = ["ComfyUI", "comfyui", "COMFYUI"][pictures.index(picture)]
            request = RegisterRequest(fields={"tool": spelling}, production="Harbour")
            barrier.wait()
            results.extend(registration.register(workspace, [picture], request, jobs=1).results)

    threads = [threading.Thread(target=register, args=(p,)) for p in pictures]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status for r in results] == ["new"] * writers, [r.error for r in results]
    assert sql(db_workspace_dir, "SELECT name FROM productions") == [("Harbour",)]
    [(tool,)] = sql(db_workspace_dir, "SELECT name FROM tools")
    assert tool.casefold() == "comfyui"
    created = "SELECT count(*) FROM audit_events WHERE action = 'tool.created'"
    assert sql(db_workspace_dir, created) == [(1,)]
    assert json.loads(run("-w", db_workspace_dir, "audit", "verify", "--json").stdout)["ok"]


def test_admins_creating_the_same_reference_set_at_once_make_one(
    db_workspace_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "refs"
    empty.mkdir()
    barrier = threading.Barrier(3)
    outcomes: list[Any] = []

    def create() -> None:
        with Workspace.open(db_workspace_dir) as workspace:
            barrier.wait()
            try:
                reference_sets.create(workspace, "studio-ip", [empty], rights="owned")
                outcomes.append("created")
            except ProvenanceError as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("created") == 1, outcomes
    refused = [o for o in outcomes if o != "created"]
    assert all("reference set 'studio-ip' already exists" in str(e) for e in refused), outcomes
    assert sql(db_workspace_dir, "SELECT name FROM reference_sets") == [("studio-ip",)]
    assert json.loads(run("-w", db_workspace_dir, "audit", "verify", "--json").stdout)["ok"]
