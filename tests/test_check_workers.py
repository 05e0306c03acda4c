"""Checks whose matches are found in worker processes: they record what a check in one
process records, a failing asset is named while the others are checked, and a pool that
breaks hands its work back to the recording process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from provenance import Workspace
from provenance.checking import workers
from provenance.processes import worker_pool
from tests import filemakers as fm
from tests.conftest import run, run_json

REFERENCES = ["astronaut.jpg", "camera.png", "coffee.jpg"]
EDITS = ["mirror", "crop_50", "text_overlay"]
UNRELATED = ["chelsea.png", "rocket.jpg"]
NOT_ON_REGISTER = {"PROVENANCE_CHECK_ON_REGISTER": "false"}


def _workspace(tmp_path: Path, database_url: str | None) -> Path:
    root = tmp_path / "ws"
    Workspace.create(root, database_url=database_url).close()
    references = tmp_path / "references"
    references.mkdir()
    for name in REFERENCES:
        (references / name).write_bytes((fm.SAMPLES / name).read_bytes())
    run_json("-w", root, "refs", "add", "studio-ip", "--from", references)
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in REFERENCES:
        picture = fm.sample(name)
        stem = Path(name).stem
        fm.composite_25(picture).save(batch / f"{stem}_composite.png")
        for edit in EDITS:
            fm.KNOWN_EDITS[edit](picture).convert("RGB").save(batch / f"{stem}_{edit}.png")
    for name in UNRELATED:
        (batch / name).write_bytes((fm.SAMPLES / name).read_bytes())
    registered = run("-w", root, "register", batch, "--json", env=NOT_ON_REGISTER)
    assert registered.exit_code == 0, registered.output
    assert all(r["check"] is None for r in json.loads(registered.stdout)["results"])
    return root


def _what_was_found(check: dict[str, Any]) -> dict[str, Any]:
    """A check without what differs from one check to the next (its id and time)."""
    return {
        key: check[key]
        for key in (
            "verdict",
            "priority",
            "best_match",
            "reasons",
            "context",
            "matches",
            "verifications",
            "verification",
            "thresholds",
            "reference_sets",
        )
    }


def test_checks_found_by_workers_record_what_one_process_records(
    tmp_path: Path, database_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    root = _workspace(tmp_path, database_url)
    pending = run_json("-w", root, "check", "--pending", "--jobs", "2")
    assert workers.BROKEN_POOL not in caplog.text  # the workers found them, not this process
    assert pending["checked"] == len(REFERENCES) * (len(EDITS) + 1) + len(UNRELATED)
    by_workers = {c["asset_id"]: c for c in pending["checks"]}
    # The same assets checked again, one after another in this process: new checks.
    again = run_json("-w", root, "check", *map(str, sorted(by_workers)))["checks"]
    assert {c["check_id"] for c in again}.isdisjoint(c["check_id"] for c in by_workers.values())
    for check in again:
        assert _what_was_found(check) == _what_was_found(by_workers[check["asset_id"]])
    verdicts = [c["verdict"] for c in again]
    # Not a comparison of empty checks: every copy is high with a verified region.
    assert verdicts.count("high") == len(REFERENCES) * (len(EDITS) + 1)
    assert verdicts.count("clear") == len(UNRELATED)
    assert sum(v["mirrored"] and v["verified"] for c in again for v in c["verifications"]) >= 3


def test_a_failing_asset_is_named_and_the_others_are_checked(tmp_path: Path) -> None:
    root = _workspace(tmp_path, None)
    listed = run_json("-w", root, "list")["assets"]
    broken = next(a for a in listed if a["original_name"] == "camera_mirror.png")
    shown = run_json("-w", root, "show", str(broken["id"]))
    (root / shown["store_path"]).unlink()
    result = run("-w", root, "check", "--pending", "--jobs", "2")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"failed  asset {broken['id']}: ")
    assert "cannot be read" in line
    # Every other asset was checked: only the broken one is still waiting.
    waiting = run("-w", root, "check", "--pending", "--json")
    assert waiting.exit_code == 1
    document = json.loads(waiting.stdout)
    assert document["checked"] == 0
    assert [f["asset_id"] for f in document["failed"]] == [broken["id"]]


def test_a_pool_whose_workers_die_hands_the_checks_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = _workspace(tmp_path, None)

    def dying(count: int, initializer: Any, initargs: Any) -> Any:
        return worker_pool(count, os._exit, (1,))  # every worker ends as it starts

    monkeypatch.setattr(workers, "worker_pool", dying)
    pending = run_json("-w", root, "check", "--pending", "--jobs", "2")
    assert pending["checked"] == len(REFERENCES) * (len(EDITS) + 1) + len(UNRELATED)
    assert pending["failed"] == []
    assert workers.BROKEN_POOL in caplog.text
    assert run_json("-w", root, "check", "--pending")["checked"] == 0


def test_jobs_goes_with_pending(tmp_path: Path) -> None:
    root = _workspace(tmp_path, None)
    result = run("-w", root, "check", "1", "--jobs", "2")
    assert result.exit_code == 2
    assert "--jobs goes with --pending" in result.output


def _maths_threads() -> dict[str, int]:
    from threadpoolctl import threadpool_info

    return {library["user_api"]: library["num_threads"] for library in threadpool_info()}


def test_a_check_worker_runs_the_maths_libraries_on_one_thread(tmp_path: Path) -> None:
    # Two workers on two cores: numpy's BLAS spinning in one took the other's core.
    workspace = Workspace.create(tmp_path / "ws")
    pool = worker_pool(1, workers._start, (str(workspace.root), workspace.settings))
    try:
        threads = pool.submit(_maths_threads).result()
    finally:
        pool.shutdown()
        workspace.close()
    assert threads.get("blas") == 1
    assert set(threads.values()) == {1}
