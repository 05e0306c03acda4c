"""Reference sets fingerprinted on a real Dask cluster (``dask.distributed`` local clusters of
worker processes): the same vectors as a run in one process; a worker killed mid-run, or
the recording process killed and started again, and the set still holds every item once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run, run_json
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
    for scheduler, message in (
        ("localhost:8786", "is not tcp://HOST:PORT"),
        ("tcp://127.0.0.1:9", "cannot reach tcp://127.0.0.1:9"),
    ):
        result = run(
            "-w", workspace_dir, "refs", "add", "library", "--from", folder,
            "--scheduler", scheduler,
        )  # fmt: skip
        assert result.exit_code == 1
        assert message in result.output
        assert result.output.count("\n") == 1
    assert run_json("-w", workspace_dir, "refs", "list")["reference_sets"] == []
    both = run("-w", workspace_dir, "refs", "add", "library", "--from", folder,
               "--scheduler", "tcp://127.0.0.1:9", "--workers", "2")  # fmt: skip
    assert both.exit_code == 1
    assert "not both" in both.output
