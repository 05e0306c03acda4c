"""Hostile input: files truncated at many points in every format, JSON nested thousands
deep, file names that are not UTF-8, integers past any column. Every case ends in a clear
one-line error or a complete registration: no traceback (the CLI runs in-process with
exceptions propagating, so one would fail the test), and no partial records."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests import filemakers as fm
from tests.conftest import run, snapshot

FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tif": "TIFF", "bmp": "BMP", "gif": "GIF"}
CUTS = 16


def _picture_bytes(fmt: str) -> bytes:
    picture = fm.sample("coffee.jpg").resize((160, 120))
    buffer = io.BytesIO()
    if fmt == "TIFF":
        exif = Image.Exif()
        exif[0x010E] = "a description long enough to sit past the first strip " * 4
        picture.save(buffer, fmt, exif=exif)
    else:
        picture.save(buffer, fmt)
    return buffer.getvalue()


def _consistent(workspace_dir: Path) -> dict[str, int]:
    """Row counts, checked to hold no partial registration: every asset has its generation
    record and fingerprints, and the store holds exactly the registered assets' bytes."""
    state = snapshot(workspace_dir)
    rows = state["rows"]
    assert rows["generation_records"] == rows["assets"]
    assert rows["fingerprints"] >= 2 * rows["assets"]
    blobs = [p for p in state["store"] if p.count("/") == 2]
    assert len(blobs) == rows["assets"], state["store"]
    return dict(rows)


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_files_truncated_at_many_points_fail_cleanly_or_register_whole(
    workspace_dir: Path, tmp_path: Path, suffix: str
) -> None:
    whole = _picture_bytes(FORMATS[suffix])
    cuts = sorted({1, 8, 16, 33, *range(0, len(whole), max(1, len(whole) // CUTS))} - {0})
    outcomes = {"refused": 0, "registered": 0}
    for cut in cuts:
        path = tmp_path / f"cut_{cut:06d}.{suffix}"
        path.write_bytes(whole[:cut])
        before = _consistent(workspace_dir)
        result = run("-w", workspace_dir, "register", path)
        if result.exit_code == 0:
            outcomes["registered"] += 1
            assert _consistent(workspace_dir)["assets"] == before["assets"] + 1
        else:
            outcomes["refused"] += 1
            assert result.exit_code == 1, result.output
            [line] = result.stderr.strip().splitlines()
            assert line.startswith("Error: "), line
            assert str(path) in line, line
            assert _consistent(workspace_dir) == before
    assert outcomes["refused"] >= len(cuts) - 2, outcomes  # a cut file is damaged
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [65, 600, 100_000])
def test_json_nested_too_deep_is_refused_with_a_clear_message(
    workspace_dir: Path, tmp_path: Path, levels: int
) -> None:
    before = snapshot(workspace_dir)
    picture = tmp_path / "deep.png"
    fm.write_comfyui_png(picture, fm.sample("rocket.jpg"))
    with Image.open(picture) as opened:
        image = opened.copy()
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("prompt", '{"3": {"inputs": ' + _deep(levels) + "}}")
    image.save(picture, pnginfo=info)
    result = run("-w", workspace_dir, "register", picture)
    assert result.exit_code == 1
    assert f"nested {levels + 2} levels deep, over the limit of 64" in result.stderr

    sidecar = tmp_path / "side.png"
    fm.sample("chelsea.png").save(sidecar)
    (tmp_path / "side.png.json").write_text('{"prompt": ' + _deep(levels) + "}")
    result = run("-w", workspace_dir, "register", sidecar)
    assert result.exit_code == 1
    assert "levels deep, over the limit of 64" in result.stderr

    result = run("-w", workspace_dir, "register", sidecar, "--setting", f"a={_deep(levels)}")
    assert result.exit_code == 1
    assert "--setting a: JSON nested" in result.stderr
    assert snapshot(workspace_dir) == before


def test_a_large_comfyui_workflow_is_read(workspace_dir: Path, tmp_path: Path) -> None:
    """PNG text chunks over Pillow's 1 MiB default (large ComfyUI workflows) are read."""
    picture = tmp_path / "big_workflow.png"
    fm.write_comfyui_png(picture, fm.sample("rocket.jpg"))
    with Image.open(picture) as opened:
        image, prompt = opened.copy(), opened.info["prompt"]
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("prompt", prompt)
    info.add_text(
        "workflow", json.dumps({"nodes": [{"id": i, "note": "x" * 100} for i in range(20_000)]})
    )
    image.save(picture, pnginfo=info)
    assert picture.stat().st_size > 64 * 1024
    result = run("-w", workspace_dir, "register", picture, "--json")
    assert result.exit_code == 0, result.output
    [registered] = json.loads(result.stdout)["results"]
    assert registered["asset"]["generation"]["fields"]["tool"]["value"] == "comfyui"


def test_a_file_name_that_is_not_utf8_registers_with_a_safe_name(
    workspace_dir: Path, tmp_path: Path
) -> None:
    raw = os.fsencode(tmp_path) + b"/shot\xff\xfe_v001.png"
    with open(raw, "wb") as handle:
        fm.sample("rocket.jpg").save(handle, "PNG")
    path = os.fsdecode(raw)
    result = run("-w", workspace_dir, "register", path, "--json")
    assert result.exit_code == 0, result.output
    [registered] = json.loads(result.stdout)["results"]
    assert registered["asset"]["original_name"] == "shot\\xff\\xfe_v001.png"
    shown = run("-w", workspace_dir, "show", str(registered["asset"]["id"]))
    assert "shot\\xff\\xfe_v001.png" in shown.stdout
    listed = run("-w", workspace_dir, "register", tmp_path)  # walking the folder too
    assert listed.exit_code == 0, listed.output
    broken = os.fsdecode(os.fsencode(tmp_path) + b"/cut\xff.png")
    Path(broken).write_bytes(b"\x89PNG\r\n")
    refused = run("-w", workspace_dir, "register", broken)
    assert refused.exit_code == 1
    assert "cut\\xff.png" in refused.stderr
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--limit", "99999999999999999999"),
        ("queue", "--limit", "99999999999999999999"),
        ("show", "99999999999999999999999999"),
        ("check", "99999999999999999999999999"),
        ("status", "99999999999999999999999999"),
        ("review", "99999999999999999999", "--decision", "approve", "--rationale", "x"),
        ("withdraw", "approval", "99999999999999999999", "--reason", "x"),
        ("register", "--jobs", "99999999999999999999", "x.png"),
    ],
)
def test_huge_integers_are_refused_in_one_line(workspace_dir: Path, args: tuple[str, ...]) -> None:
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, *args)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert snapshot(workspace_dir) == before


def test_a_huge_seed_is_refused_or_kept_exactly(workspace_dir: Path, tmp_path: Path) -> None:
    picture = tmp_path / "seeded.png"
    fm.sample("rocket.jpg").save(picture)
    result = run("-w", workspace_dir, "register", picture, "--seed", "9" * 40, "--json")
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 0:
        [registered] = json.loads(result.stdout)["results"]
        assert registered["asset"]["generation"]["fields"]["seed"]["value"] == "9" * 40
