"""The demo builds offline, flags every recreation and clears every unrelated image; the
triage, legal and calibration notebooks run against it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run, run_json

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    workspace = tmp_path_factory.mktemp("demo") / "demo"
    return workspace, run("demo", workspace)


def test_demo_flags_every_recreation_and_clears_the_rest(
    demo: tuple[Path, Any], tmp_path: Path
) -> None:
    workspace, result = demo
    assert result.exit_code == 0, result.output
    assert (
        "7 of 7 recreations flagged against the right reference; 4 of 4 unrelated images clear."
        in result.stdout
    )
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["asset", "file", "use", "recreates", "verdict"]
    assert len([line for line in lines[1:11] if " clear " in line]) == 4
    assets = run_json("-w", workspace, "list")["assets"]
    assert len(assets) == 11
    # The animatic is one movie asset whose check names the frames that show the rocket.
    [movie_line] = [line for line in lines if "sh110_launch_anim_v001.mp4" in line]
    assert "high (frames 24-59)" in movie_line
    assert "rocket.jpg" in movie_line
    movie = next(a for a in assets if a["original_name"] == "sh110_launch_anim_v001.mp4")
    assert movie["media"]["kind"] == "movie"
    assert movie["media"]["frames"] == 84
    sources = {a["original_name"]: a["generation"]["fields"]["prompt"]["source"] for a in assets}
    assert sources["sh010_bg_v001.png"] == "a1111"
    assert sources["sh020_key_v002.png"] == "comfyui"
    assert sources["sh050_wall_v001.png"] == "sidecar"
    # The vendor's still: its Content Credentials validate against the demo's trust list and
    # name the tool; the pipeline's sidecar gives the prompt.
    vendor = next(a for a in assets if a["original_name"] == "sh090_path_v001.png")
    assert vendor["content_credentials"]["validation_state"] == "valid"
    assert vendor["generation"]["fields"]["tool"] == {"value": "Demo Imagine", "source": "c2pa"}
    assert sources["sh090_path_v001.png"] == "sidecar"
    # The reviewer decided three flagged assets; the other three wait, one of them for legal.
    decided = {
        a["original_name"]: a["review"]["status"]
        for a in run_json("-w", workspace, "list")["assets"]
    }
    assert decided["sh060_sky_v001.png"] == "approved"
    assert decided["sh040_launch_v003.png"] == "needs_changes"
    assert decided["sh050_wall_v001.png"] == "legal_approved"
    queue = run_json("-w", workspace, "queue")["entries"]
    assert sorted(e["status"] for e in queue) == ["flagged"] * 4
    # Legal licensed and approved the composite: it is cleared for final.
    composite = next(a["id"] for a in assets if a["original_name"] == "sh050_wall_v001.png")
    assert run_json("-w", workspace, "status", composite)["policy"]["cleared_for_final"]
    assert run("-w", workspace, "audit", "verify").exit_code == 0
    # What scripts/demo.sh does next: the cleared composite exported with the demo's key and
    # Content Credentials, every file verified, the log checked against the export's anchor.
    out = workspace / "exports" / "signed"
    exported = run("-w", workspace, "export", "asset", composite, "--c2pa", "--out", out)
    assert exported.exit_code == 0, exported.output
    verified = run("-w", workspace, "verify", *sorted(out.iterdir()))
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.count("OK  ") == 5  # record, page, PDF, anchor, C2PA copy
    anchored = run(
        "-w", workspace, "audit", "verify", "--anchors", workspace / "audit-anchors.jsonl"
    )
    assert anchored.exit_code == 0, anchored.output
    assert "1 anchors agree" in anchored.stdout
    again = run("demo", workspace)
    assert again.exit_code == 1
    assert "exists and is not empty" in again.stderr


@pytest.mark.parametrize("name", ["triage.ipynb", "legal.ipynb", "calibration.ipynb"])
def test_the_notebooks_run_against_the_demo_workspace(
    demo: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    import nbformat
    from nbclient import NotebookClient

    workspace, result = demo
    assert result.exit_code == 0, result.output
    # A copy runs, beside the real notebooks so that their relative paths hold; the
    # committed notebook keeps the outputs it was saved with.
    copy = NOTEBOOKS / f".test-{os.getpid()}-{name}"
    shutil.copyfile(NOTEBOOKS / name, copy)
    try:
        notebook = nbformat.read(copy, as_version=4)
        monkeypatch.setenv("PROVENANCE_WORKSPACE", str(workspace))
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        ).execute()
    finally:
        copy.unlink()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert figures, f"{name} drew no figure"
    if name == "triage.ipynb":
        assert "11 assets, 11 checked, 7 flagged" in text
        assert "waiting for a decision" in text
    elif name == "legal.ipynb":
        assert "Demo, as of " in text
        assert "1 cleared for final" in text
        assert "Mara Quinn (stand-in)" in text
        assert "<- expires soon" in text
        assert "Studio contact (demo)" in text
