"""Commands killed half-way (kill -9) leave nothing that a later command does not finish:
no asset left unchecked, no index silently behind its reference set."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run, run_json
from tests.test_concurrency import write_distinct_images


def _count(workspace_dir: Path, query: str) -> int:
    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        return int(db.execute(query).fetchone()[0])


def kill_when(command: list[str], workspace_dir: Path, query: str, at_least: int) -> int:
    """Run the CLI in a subprocess and SIGKILL it once ``query`` counts ``at_least``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "provenance", "-w", str(workspace_dir), *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = 0
    deadline = time.monotonic() + 180
    while seen < at_least and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
        try:
            seen = _count(workspace_dir, query)
        except sqlite3.OperationalError:  # locked for a moment by the writer
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    return seen


@pytest.fixture
def library_workspace(workspace_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with a third-party set of 30 pictures; the pictures' folder."""
    library = tmp_path / "library"
    write_distinct_images(library, 30, seed=11)
    added = run_json("-w", workspace_dir, "refs", "add", "studio-ip", "--from", library)
    assert added["added"] == 30
    return workspace_dir, library


@pytest.mark.slow
@pytest.mark.parametrize("finish", ["register again", "check --pending"])
def test_register_killed_in_its_check_phase_leaves_no_asset_unchecked(
    library_workspace: tuple[Path, Path], tmp_path: Path, finish: str
) -> None:
    workspace_dir, library = library_workspace
    batch = tmp_path / "renders"
    write_distinct_images(batch, 30, seed=12)  # unrelated pictures
    for picture in sorted(library.glob("*.png"))[:12]:  # byte-identical copies of references
        shutil.copy(picture, batch / f"copy_{picture.name}")
    checked = kill_when(["register", str(batch)], workspace_dir, "SELECT count(*) FROM checks", 3)
    assets = _count(workspace_dir, "SELECT count(*) FROM assets")
    assert assets == 42
    assert 3 <= checked < 42, checked
    waiting = run_json("-w", workspace_dir, "queue")["pending_checks"]
    assert waiting == 42 - checked
    queue_text = run("-w", workspace_dir, "queue")
    assert f"{waiting} asset(s) are waiting for a check" in queue_text.stderr

    if finish == "register again":
        again = run_json("-w", workspace_dir, "register", batch)
        assert again["summary"]["known"] == 42
        # The assets the killed run had not checked are checked now, and only those.
        assert sum(r["check"] is not None for r in again["results"]) == 42 - checked
    else:
        pending = run_json("-w", workspace_dir, "check", "--pending")
        assert pending["checked"] == 42 - checked
        assert pending["failed"] == []
    assert (
        _count(
            workspace_dir,
            "SELECT count(*) FROM assets WHERE id NOT IN (SELECT asset_id FROM checks)",
        )
        == 0
    )
    queue = run_json("-w", workspace_dir, "queue")
    assert queue["pending_checks"] == 0
    flagged = {entry["original_name"] for entry in queue["entries"]}
    assert {f"copy_{p.name}" for p in sorted(library.glob("*.png"))[:12]} <= flagged
    assert run_json("-w", workspace_dir, "check", "--pending")["checked"] == 0
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def test_check_pending_without_reference_sets_checks_nothing(workspace_dir: Path) -> None:
    result = run("-w", workspace_dir, "check", "--pending")
    assert result.exit_code == 0, result.output
    assert "No asset is waiting for a check." in result.output


def test_check_needs_ids_or_pending(workspace_dir: Path) -> None:
    assert run("-w", workspace_dir, "check").exit_code == 2
    assert run("-w", workspace_dir, "check", "1", "--pending").exit_code == 2


@pytest.mark.slow
def test_add_items_killed_before_its_index_build_never_gives_a_silent_verdict(
    library_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    workspace_dir, _ = library_workspace
    more = tmp_path / "more"
    write_distinct_images(more, 40, seed=13)
    items = kill_when(
        ["refs", "add-items", "studio-ip", "--from", str(more)],
        workspace_dir,
        "SELECT count(*) FROM reference_items",
        40,
    )
    items = _count(workspace_dir, "SELECT count(*) FROM reference_items")  # at the kill
    assert 40 <= items < 70, items
    manifest = (workspace_dir / "indexes" / "studio-ip" / "sscd.json").read_text()
    assert '"count": 30' in manifest  # the index still holds only the first 30
    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        newest = db.execute(
            "SELECT id, source_path FROM reference_items ORDER BY id DESC LIMIT 1"
        ).fetchone()
    copy = tmp_path / "copy.png"
    shutil.copy(newest[1], copy)

    check = run_json("-w", workspace_dir, "register", copy)["results"][0]["check"]
    assert check["verdict"] == "high"
    assert check["best_match"]["item_id"] == newest[0]
    [studio] = check["reference_sets"]
    assert any("stale" in p and "rebuilt" in p for p in studio["problems"]), studio["problems"]
    assert studio["indexes"]["sscd"]["count"] == items
    # Rebuilt once: the next check finds the index current.
    again = run_json("-w", workspace_dir, "check", "1")["checks"][0]
    assert again["reference_sets"][0]["problems"] == []
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def test_a_stale_index_that_cannot_be_rebuilt_is_not_searched_and_the_check_says_so(
    library_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    workspace_dir, library = library_workspace
    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        db.execute("DELETE FROM reference_vectors WHERE item_id = 1")
        sha256 = db.execute("SELECT sha256 FROM reference_items WHERE id = 1").fetchone()[0]
        db.execute(
            "INSERT INTO reference_items (set_id, sha256, source_path, media, created_at) "
            "VALUES (1, ?, 'x.png', '{}', '2026-01-01 00:00:00.000000')",
            ("f" * 64,),
        )
    assert sha256
    copy = tmp_path / "copy.png"
    shutil.copy(sorted(library.glob("*.png"))[0], copy)
    check = run_json("-w", workspace_dir, "register", copy)["results"][0]["check"]
    problems = check["reference_sets"][0]["problems"]
    assert any("could not be rebuilt, so it was not searched" in p for p in problems), problems


def test_the_queue_page_says_how_many_assets_wait_for_a_check(
    library_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    import re

    from fastapi.testclient import TestClient

    from provenance import Workspace
    from provenance.web.app import create_app

    workspace_dir, library = library_workspace
    unchecked = run(
        "-w", workspace_dir, "register", library, env={"PROVENANCE_CHECK_ON_REGISTER": "false"}
    )
    assert unchecked.exit_code == 0, unchecked.output
    assert run("-w", workspace_dir, "users", "add", "rosa", "--role", "reviewer").exit_code == 0
    token = run("-w", workspace_dir, "users", "token", "rosa").stdout.strip()
    with Workspace.open(workspace_dir) as workspace, TestClient(create_app(workspace)) as client:
        form = client.get("/signin").text
        nonce = re.search(r'name="nonce" value="([^"]+)"', form)
        assert nonce is not None
        client.post("/signin", data={"token": token, "nonce": nonce[1]})
        page = client.get("/queue").text
    assert "30 asset(s) are waiting for a check" in page


@pytest.mark.slow
def test_serve_checks_the_waiting_assets_before_it_serves(
    library_workspace: tuple[Path, Path],
) -> None:
    import socket

    workspace_dir, library = library_workspace
    assert (
        run(
            "-w", workspace_dir, "register", library, env={"PROVENANCE_CHECK_ON_REGISTER": "0"}
        ).exit_code
        == 0
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "provenance", "-w", str(workspace_dir), "serve", "--port",
         str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        second = server.stdout.readline()
    finally:
        server.terminate()
        server.communicate(timeout=30)  # reads to the end and closes the pipe
    assert first.strip() == "Checked 30 asset(s) that were waiting for a check."
    assert second.startswith("Serving")
    assert run_json("-w", workspace_dir, "queue")["pending_checks"] == 0
