"""Reference sets, and a night's renders, fingerprinted on a real Dask cluster
(``dask.distributed`` local clusters of worker processes): the same vectors, fingerprints
and checks as a run in one process; a worker killed mid-run, or the recording process
killed and started again, and every item or asset is still recorded once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance import Workspace
from provenance import cluster as clusters
from provenance.checking import workers
from provenance.checking.context import prepare
from provenance.checking.findings import Findings
from provenance.errors import ClusterUnavailable
from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot
from tests.test_concurrency import write_distinct_images

distributed = pytest.importorskip("distributed")

ITEMS = 120


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes, one thread each, behind a scheduler on a real port."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def items(ws: Path, name: str) -> list[tuple[str, int]]:
    """Each item's sha256 and number of vectors, read from the database as it is now."""
    with contextlib.closing(sqlite3.connect(ws / "provenance.db", timeout=30)) as db:
        return db.execute(
            "SELECT i.sha256, count(v.id) FROM reference_items i "
            "JOIN reference_sets s ON s.id = i.set_id "
            "LEFT JOIN reference_vectors v ON v.item_id = i.id "
            "WHERE s.name = ? GROUP BY i.id ORDER BY i.id",
            (name,),
        ).fetchall()


def vectors(ws: Path, name: str) -> dict[tuple[str, str], bytes]:
    with contextlib.closing(sqlite3.connect(ws / "provenance.db")) as db:
        rows = db.execute(
            "SELECT i.sha256, v.spec, v.vector FROM reference_vectors v "
            "JOIN reference_items i ON i.id = v.item_id "
            "JOIN reference_sets s ON s.id = i.set_id WHERE s.name = ?",
            (name,),
        ).fetchall()
    return {(sha, spec): bytes(vector) for sha, spec, vector in rows}


def refs_add(ws: Path, name: str, folder: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "provenance", "-w", str(ws), "refs", "add", name,
         "--from", str(folder), "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_items(ws: Path, name: str, at_least: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # the set's tables are new
            if len(items(ws, name)) >= at_least:
                return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{name}: fewer than {at_least} items after 120 s")


def assert_complete(ws: Path, name: str, detectors: int) -> None:
    """Every file once, each with every detector's vector, indexed, the log intact."""
    found = items(ws, name)
    assert len(found) == ITEMS
    assert len({sha for sha, _ in found}) == ITEMS
    assert {count for _, count in found} == {detectors}
    manifests = sorted((ws / "indexes" / name).glob("*.json"))
    assert len(manifests) == detectors
    assert {json.loads(m.read_text())["count"] for m in manifests} == {ITEMS}
    assert run("-w", ws, "audit", "verify").exit_code == 0


def test_a_local_cluster_gives_the_vectors_of_a_run_in_one_process(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    write_distinct_images(folder, 24, seed=7)
    here = run("-w", workspace_dir, "refs", "add", "here", "--from", folder, "--json")
    assert here.exit_code == 0, here.output
    spread = run(
        "-w", workspace_dir, "refs", "add", "spread", "--from", folder, "--workers", "2", "--json"
    )
    assert spread.exit_code == 0, spread.output
    assert json.loads(spread.stdout)["added"] == json.loads(here.stdout)["added"] == 24
    local, distributed_ = vectors(workspace_dir, "here"), vectors(workspace_dir, "spread")
    assert len(local) == 48  # phash and sscd
    assert distributed_ == local  # byte for byte


def test_a_worker_killed_mid_run_and_the_set_completes_with_every_item_once(
    workspace_dir: Path, tmp_path: Path, cluster: Any
) -> None:
    folder = tmp_path / "library"
    write_distinct_images(folder, ITEMS, seed=11)
    process = refs_add(workspace_dir, "library", folder, "--scheduler", cluster.scheduler.address)
    wait_for_items(workspace_dir, "library", 10, process)
    victim = sorted(cluster.run(os.getpid).values())[0]
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    report = json.loads(stdout)
    assert (report["added"], report["failed"]) == (ITEMS, [])
    assert victim not in cluster.run(os.getpid).values()  # it was killed, not idle
    assert_complete(workspace_dir, "library", detectors=2)


def test_a_run_killed_mid_way_resumes_with_every_item_once(
    workspace_dir: Path, tmp_path: Path, cluster: Any
) -> None:
    folder = tmp_path / "library"
    write_distinct_images(folder, ITEMS, seed=13)
    first = refs_add(workspace_dir, "library", folder, "--scheduler", cluster.scheduler.address)
    wait_for_items(workspace_dir, "library", 10, first)
    first.kill()
    first.communicate(timeout=60)
    done = len(items(workspace_dir, "library"))
    assert 10 <= done < ITEMS
    again = run(
        "-w", workspace_dir, "refs", "add-items", "library", "--from", folder,
        "--scheduler", cluster.scheduler.address, "--json",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["added"] + report["already_present"] == ITEMS
    assert report["already_present"] >= done
    assert_complete(workspace_dir, "library", detectors=2)


def test_a_cluster_that_cannot_be_reached_changes_nothing(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    write_distinct_images(folder, 3, seed=5)
    before = snapshot(workspace_dir)
    for command in (("refs", "add", "library", "--from", folder), ("register", folder)):
        for scheduler, message in (
            ("localhost:8786", "is not tcp://HOST:PORT"),
            ("tcp://127.0.0.1:9", "cannot reach tcp://127.0.0.1:9"),
        ):
            result = run("-w", workspace_dir, *command, "--scheduler", scheduler)
            assert result.exit_code == 1
            assert message in result.output
            assert result.output.count("\n") == 1
    assert run_json("-w", workspace_dir, "refs", "list")["reference_sets"] == []
    assert snapshot(workspace_dir) == before
    both = run("-w", workspace_dir, "refs", "add", "library", "--from", folder,
               "--scheduler", "tcp://127.0.0.1:9", "--workers", "2")  # fmt: skip
    assert both.exit_code == 1
    assert "not both" in both.output


def registered(ws: Path) -> dict[str, dict[str, Any]]:
    """Per original file name: the asset's fingerprints and its checks (verdict, and each
    match's reference, detector and score)."""
    with contextlib.closing(sqlite3.connect(ws / "provenance.db", timeout=30)) as db:
        assets = db.execute("SELECT id, original_name FROM assets").fetchall()
        found: dict[str, dict[str, Any]] = {}
        for asset_id, name in assets:
            found[name] = {
                "fingerprints": db.execute(
                    "SELECT kind, value FROM fingerprints WHERE asset_id = ? ORDER BY kind",
                    (asset_id,),
                ).fetchall(),
                "checks": [
                    (verdict, db.execute(
                        "SELECT i.sha256, m.detector, m.region, round(m.score, 5) FROM matches m "
                        "JOIN reference_items i ON i.id = m.reference_item_id "
                        "WHERE m.check_id = ? ORDER BY m.detector, m.rank", (check_id,),
                    ).fetchall())
                    for check_id, verdict in db.execute(
                        "SELECT id, verdict FROM checks WHERE asset_id = ?", (asset_id,)
                    ).fetchall()
                ],
            }  # fmt: skip
    return found


def renders(folder: Path, count: int, seed: int) -> None:
    """A night's renders: distinct crops, and edited copies of the references (flagged)."""
    write_distinct_images(folder, count, seed=seed)
    for name in ("astronaut.jpg", "camera.png"):
        fm.jpeg_reencode(fm.sample(name), 70).save(folder / f"copy_of_{Path(name).stem}.png")


def with_references(ws: Path, tmp_path: Path) -> None:
    library = tmp_path / f"refs-{ws.name}"
    library.mkdir()
    for name in ("astronaut.jpg", "camera.png", "coffee.jpg"):
        (library / name).write_bytes((fm.SAMPLES / name).read_bytes())
    assert run("-w", ws, "refs", "add", "studio-ip", "--from", library).exit_code == 0


def test_registering_on_a_local_cluster_records_what_one_process_records(
    workspace_dir: Path, tmp_path: Path
) -> None:
    """Fingerprints and checks found on a cluster's workers are the ones a run in one
    process finds, file by file."""
    folder = tmp_path / "renders"
    renders(folder, 16, seed=5)
    spread = tmp_path / "spread"
    Workspace.create(spread).close()
    for ws in (workspace_dir, spread):
        with_references(ws, tmp_path)
    here = run("-w", workspace_dir, "register", folder, "--jobs", "1", "--json")
    assert here.exit_code == 0, here.output
    there = run("-w", spread, "register", folder, "--workers", "2", "--json")
    assert there.exit_code == 0, there.output
    local, on_cluster = registered(workspace_dir), registered(spread)
    assert len(local) == 18
    assert all(len(asset["checks"]) == 1 for asset in local.values())
    assert {asset["checks"][0][0] for asset in local.values()} > {"clear"}  # copies flagged
    assert on_cluster == local
    assert run("-w", spread, "audit", "verify").exit_code == 0


def test_a_worker_killed_while_registering_and_every_file_is_recorded_and_checked_once(
    workspace_dir: Path, tmp_path: Path, cluster: Any
) -> None:
    with_references(workspace_dir, tmp_path)
    folder = tmp_path / "renders"
    renders(folder, ITEMS, seed=17)
    process = subprocess.Popen(
        [sys.executable, "-m", "provenance", "-w", str(workspace_dir), "register", str(folder),
         "--scheduler", cluster.scheduler.address, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def kill_a_worker_once(phase: str, done: Callable[[dict[str, dict[str, Any]]], bool]) -> int:
        deadline = time.monotonic() + 120
        while not done(registered(workspace_dir)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{phase}: not there after 120 s"
            time.sleep(0.02)
        victim = sorted(cluster.run(os.getpid).values())[0]
        os.kill(victim, signal.SIGKILL)
        return victim

    # While the files are fingerprinted, then while their checks' matches are found.
    victims = [
        kill_a_worker_once("10 assets", lambda found: len(found) >= 10),
        kill_a_worker_once(
            "10 checks", lambda found: sum(len(a["checks"]) for a in found.values()) >= 10
        ),
    ]
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    report = json.loads(stdout)
    assert [r["status"] for r in report["results"]] == ["new"] * (ITEMS + 2)
    assert not set(victims) & set(cluster.run(os.getpid).values())  # killed, not idle

    def runs_served() -> int:
        from provenance.checking import workers

        return len(workers._on_cluster)

    assert sum(cluster.run(runs_served).values()) >= 1  # the checks were found there
    found = registered(workspace_dir)
    assert len(found) == ITEMS + 2
    assert {len(asset["checks"]) for asset in found.values()} == {1}
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def test_a_cluster_whose_workers_cannot_see_the_files_is_refused(
    workspace_dir: Path, tmp_path: Path, cluster: Any
) -> None:
    """Registering on a cluster needs the files and the workspace at the same paths on
    every worker: asked before any file is read, and refused in one line."""
    connected = clusters.Cluster(cluster, 2, None, None)
    clusters.require_paths(connected, [str(workspace_dir), str(tmp_path)], "needed")
    gone = tmp_path / "renders-on-another-machine"
    with pytest.raises(ClusterUnavailable) as refused:
        clusters.require_paths(connected, [str(workspace_dir), str(gone)], "needed")
    assert str(refused.value).startswith(f"2 of 2 cluster workers cannot see {gone} (worker ")
    assert str(refused.value).endswith("); needed")


def test_a_worker_that_loaded_other_indexes_searches_nothing(
    workspace_dir: Path, tmp_path: Path
) -> None:
    """A set changed between the caller's loading its indexes and a worker's: the worker
    answers None (the caller then finds that asset itself) rather than search others."""
    with_references(workspace_dir, tmp_path)
    folder = tmp_path / "renders"
    renders(folder, 1, seed=3)
    assert run("-w", workspace_dir, "register", folder).exit_code == 0
    with Workspace.open(workspace_dir) as workspace:
        available, _ = workspace.split_detectors()
        loaded = workers.indexes_key(prepare(workspace, available, actor="", rebuild=False))
        settings = workspace.settings
    root = str(workspace_dir)
    try:
        found = workers.find_on_worker(root, settings, None, loaded, 1)
        assert isinstance(found, Findings)
        stale = loaded.replace(json.loads(loaded)[0][2], "0" * 64)
        assert stale != loaded
        assert workers.find_on_worker(root, settings, None, stale, 1) is None
    finally:  # this process played the worker: close what it opened
        for opened, _, _ in workers._on_cluster.values():
            opened.close()
        workers._on_cluster.clear()
