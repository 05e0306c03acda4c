"""The demo builds offline, flags every recreation and clears every unrelated image."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run, run_json


def test_demo_flags_every_recreation_and_clears_the_rest(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    result = run("demo", workspace)
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
