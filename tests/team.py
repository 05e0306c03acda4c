"""A workspace with a team in it, for the review, API and browser tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import filemakers as fm
from tests.conftest import run

REFERENCES = ["astronaut.jpg", "camera.png", "coffee.jpg"]
ROLES = {"ada": "admin", "arti": "artist", "rosa": "reviewer", "ravi": "reviewer", "lena": "legal"}
HOSTILE_PROMPT = '<script>alert(1)</script> a "quoted" & <b>bold</b> astronaut'


def as_user(token: str) -> dict[str, str]:
    return {"PROVENANCE_TOKEN": token}


def build_team(ws: Path, tmp_path: Path) -> dict[str, Any]:
    """Users of every role, a reference set, and assets registered by the artist: copies
    of two references (flagged; the first with a hostile prompt) and an unrelated
    photograph (clear)."""
    tokens: dict[str, str] = {}
    for name, role in ROLES.items():
        assert run("-w", ws, "users", "add", name, "--role", role).exit_code == 0
    for name in ROLES:
        env = as_user(tokens["ada"]) if tokens else None
        tokens[name] = run("-w", ws, "users", "token", name, env=env).stdout.strip()
    folder = tmp_path / "refs"
    folder.mkdir()
    for name in REFERENCES:
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    added = run("-w", ws, "refs", "add", "studio-ip", "--from", folder, env=as_user(tokens["ada"]))
    assert added.exit_code == 0, added.output
    shots = tmp_path / "shots"
    shots.mkdir()
    fm.write_a1111_png(
        shots / "shot010.png",
        fm.jpeg_reencode(fm.sample("astronaut.jpg"), 70),
        f"{HOSTILE_PROMPT}\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, "
        "Size: 512x512, Model: sdxl",
    )
    fm.overlay_text(fm.sample("camera.png")).save(shots / "shot020.png")
    fm.sample("rocket.jpg").save(shots / "shot030.png")
    ids = {}
    for shot in ("shot010", "shot020", "shot030"):
        registered = run(
            "-w", ws, "register", shots / f"{shot}.png", "--use", "background",
            "--production", "Nightfall", "--json", env=as_user(tokens["arti"]),
        )  # fmt: skip
        assert registered.exit_code == 0, registered.output
        [result] = json.loads(registered.stdout)["results"]
        ids[shot] = result["asset"]["id"]
    return {"ws": ws, "tokens": tokens, "ids": ids, "shots": shots}
