"""Several processes registering into one SQLite workspace at once lose nothing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

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
