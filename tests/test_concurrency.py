"""Several processes registering into one SQLite workspace at once lose nothing."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from provenance import admin
from tests import filemakers as fm
from tests.conftest import run

PROCESSES = 4
PER_PROCESS = 200


def write_distinct_images(folder: Path, count: int, seed: int) -> None:
    """Small crops of the sample photos: real pictures, every file's bytes distinct."""
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    photos = [
        fm.sample(name) for name in ("astronaut.jpg", "coffee.jpg", "rocket.jpg", "chelsea.png")
    ]
    for i in range(count):
        photo = rng.choice(photos)
        x, y = rng.randrange(photo.width - 96), rng.randrange(photo.height - 96)
        crop = photo.crop((x, y, x + 96, y + 96)).resize((64, 64), Image.Resampling.BILINEAR)
        crop.putpixel((0, 0), (seed, i % 256, i // 256))  # distinct bytes even for equal crops
        crop.save(folder / f"frame_{i:04d}.png")


@pytest.mark.slow
def test_four_processes_register_800_images(workspace_dir: Path, tmp_path: Path) -> None:
    folders = []
    for p in range(PROCESSES):
        folder = tmp_path / f"farm_node_{p}"
        write_distinct_images(folder, PER_PROCESS, seed=p)
        folders.append(folder)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provenance",
                "-w",
                str(workspace_dir),
                "register",
                str(folder),
                "--json",
                "--by",
                f"node{p}",
                "--use",
                "previz",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p, folder in enumerate(folders)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert json.loads(stdout)["summary"] == {
            "new": PER_PROCESS,
            "known": 0,
            "failed": 0,
            "skipped": 0,
            "earlier_checked": 0,
            "verdicts": {"high": 0, "review": 0, "clear": 0},
        }
    listed = json.loads(run("-w", workspace_dir, "list", "--json").stdout)["assets"]
    assert len(listed) == PROCESSES * PER_PROCESS
    assert len({a["sha256"] for a in listed}) == PROCESSES * PER_PROCESS
    verify = run("-w", workspace_dir, "audit", "verify", "--json")
    assert verify.exit_code == 0
    # workspace.created + one event per asset
    assert json.loads(verify.stdout)["events"] == 1 + PROCESSES * PER_PROCESS
    stored = [p for p in (workspace_dir / "store").rglob("*") if p.is_file()]
    assert len(stored) == PROCESSES * PER_PROCESS


@pytest.mark.slow
def test_busy_registrars_leave_no_orphan_copy_after_store_gc(
    workspace_dir: Path, tmp_path: Path
) -> None:
    """Eight registrars with a 10 ms busy timeout: many files fail with 'locked', and a
    failure that cannot take the lock to undo its stored copy leaves it for `store gc`."""
    import os

    environment = {**os.environ, "PROVENANCE_BUSY_TIMEOUT_SECONDS": "0.01"}
    folders = []
    for p in range(8):
        folder = tmp_path / f"node_{p}"
        write_distinct_images(folder, 40, seed=100 + p)
        folders.append(folder)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "provenance", "-w", str(workspace_dir), "register",
             str(folder), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        )
        for folder in folders
    ]  # fmt: skip
    failed = 0
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert "Traceback" not in stderr
        failed += json.loads(stdout)["summary"]["failed"]
    from provenance import Workspace

    with Workspace.open(workspace_dir) as workspace:
        stored = workspace.store.count()
        registered = admin.row_counts(workspace)["assets"]
    assert failed + registered == 320
    assert failed > 0, "the 10 ms busy timeout should have made some registrations fail"
    result = run("-w", workspace_dir, "store", "gc", "--min-age", "0", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["removed_blobs"] == stored - registered
    with Workspace.open(workspace_dir) as workspace:
        assert workspace.store.count() == admin.row_counts(workspace)["assets"]
    assert not list(workspace_dir.rglob(".incoming-*"))
    # Registering the failed files again completes the workspace.
    for folder in folders:
        again = run("-w", workspace_dir, "register", folder)
        assert again.exit_code == 0, again.output
    with Workspace.open(workspace_dir) as workspace:
        assert admin.row_counts(workspace)["assets"] == workspace.store.count() == 320
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def _descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_no_worker_outlives_a_killed_registrar_by_more_than_5_seconds(
    workspace_dir: Path, tmp_path: Path
) -> None:
    import signal
    import time

    folder = tmp_path / "batch"
    write_distinct_images(folder, 600, seed=7)
    parent = subprocess.Popen(
        [sys.executable, "-m", "provenance", "-w", str(workspace_dir), "register",
         str(folder), "--jobs", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    family: set[int] = set()
    while time.monotonic() < deadline and len(family) < 3:  # forkserver, tracker, workers
        time.sleep(0.1)
        family |= _descendants(parent.pid)
    family |= _descendants(parent.pid)
    assert len(family) >= 3, family
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 5 and any(_alive(p) for p in family):
        time.sleep(0.1)
    survivors = [p for p in family if _alive(p)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "processes outlived their parent by 5 s"
