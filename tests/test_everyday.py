"""What artists and lawyers reach for every day, from the command line: a batch's flags
named whatever its size, the asset list by verdict and status, who a write is attributed
to once a workspace has users, and a production's disclosure as PDFs and a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from provenance.workspace import Workspace
from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot

COPIES = ("rocket.jpg", "coffee.jpg")
UNRELATED = sorted((fm.SAMPLES.parent / "unrelated").iterdir())


def _unrelated_crops(folder: Path, count: int) -> list[Path]:
    """``count`` distinct pictures cut from the unrelated photographs (none of them is in
    the reference set)."""
    written = []
    for n in range(count):
        with Image.open(UNRELATED[n % len(UNRELATED)]) as source:
            picture = source.convert("RGB")
        width, height = picture.size
        step = n // len(UNRELATED)
        box = (step * width // 40, step * height // 50, width - step * width // 30, height)
        path = folder / f"shot{n:03d}.png"
        picture.crop(box).resize((320, 240)).save(path)
        written.append(path)
    return written


@pytest.fixture(scope="module")
def batch_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A workspace with the sample photographs as references, and the printed output of
    registering a 50-file batch holding two copies of them."""
    root = tmp_path_factory.mktemp("everyday")
    workspace = root / "ws"
    Workspace.create(workspace).close()
    added = run("-w", workspace, "refs", "add", "studio-ip", "--from", fm.SAMPLES)
    assert added.exit_code == 0, added.output
    batch = root / "batch"
    batch.mkdir()
    _unrelated_crops(batch, 48)
    for name in COPIES:
        fm.sample(name).save(batch / f"copy_{Path(name).stem}.png")
    registered = run("-w", workspace, "register", batch, "--use", "background", "--by", "mia")
    assert registered.exit_code == 0, registered.output
    return workspace, registered.stdout


def test_a_big_batch_names_every_flag_and_counts_verdicts(
    batch_workspace: tuple[Path, str],
) -> None:
    _, printed = batch_workspace
    assert "50 new, 0 already registered, 0 failed, 0 skipped." in printed
    assert "Checked: 2 high, 48 clear (flagged listed)." in printed
    listed = [line for line in printed.splitlines() if line.startswith("new ")]
    assert len(listed) == 2, printed
    for name in COPIES:
        line = next(line for line in listed if f"copy_{Path(name).stem}.png" in line)
        assert "high: studio-ip#" in line


def test_list_filters_by_status_and_verdict(batch_workspace: tuple[Path, str]) -> None:
    workspace, _ = batch_workspace
    found = run_json("-w", workspace, "list", "--status", "flagged", "--verdict", "high")
    assert found["schema"] == "provenance.asset-list/1"
    names = sorted(a["original_name"] for a in found["assets"])
    assert names == ["copy_coffee.png", "copy_rocket.png"]
    assert {a["review"]["status"] for a in found["assets"]} == {"flagged"}
    assert {a["checks"][-1]["verdict"] for a in found["assets"]} == {"high"}
    clear = run_json("-w", workspace, "list", "--verdict", "clear", "--limit", "5")
    assert len(clear["assets"]) == 5
    assert all(a["review"]["status"] == "clear" for a in clear["assets"])
    assert run_json("-w", workspace, "list", "--status", "escalated")["assets"] == []
    table = run("-w", workspace, "list", "--verdict", "high")
    assert table.exit_code == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["id", "sha256", "verdict", "status"]
    assert len(rows) == 2
    assert all(row.split()[2:4] == ["high", "flagged"] for row in rows)


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--status", "flaged", "flagged"), ("--verdict", "hi", "unchecked")],
)
def test_list_refuses_an_unknown_status_or_verdict(
    batch_workspace: tuple[Path, str], option: str, value: str, named: str
) -> None:
    workspace, _ = batch_workspace
    result = run("-w", workspace, "list", option, value)
    assert result.exit_code == 1
    assert f"{option} {value!r} is not one of" in result.stderr
    assert named in result.stderr


def test_writes_name_who_acts_once_the_workspace_has_users(
    workspace_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "shot010.png"
    fm.sample("chelsea.png").save(picture)
    # No users yet: one artist's machine, the login name is the record.
    assert run("-w", workspace_dir, "register", picture).exit_code == 0
    assert run("-w", workspace_dir, "users", "add", "rosa", "--role", "reviewer").exit_code == 0
    other = tmp_path / "shot011.png"
    fm.sample("coffee.jpg").save(other)
    before = snapshot(workspace_dir)
    refused = run("-w", workspace_dir, "register", other)
    assert refused.exit_code == 1
    assert "this workspace has users: say who is acting with --by NAME" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert snapshot(workspace_dir) == before
    named = run_json("-w", workspace_dir, "register", other, "--by", "mia")
    assert named["results"][0]["asset"]["registered_by"] == "mia"
    third = tmp_path / "shot012.png"
    fm.sample("rocket.jpg").save(third)
    configured = run("-w", workspace_dir, "register", third, env={"PROVENANCE_USER": "kai"})
    assert configured.exit_code == 0, configured.output
    assert run_json("-w", workspace_dir, "show", "3")["registered_by"] == "kai"
    # Upkeep that judges nothing still runs under the login name.
    assert run("-w", workspace_dir, "store", "gc").exit_code == 0


def test_export_production_writes_a_pdf_per_asset_and_a_spreadsheet(
    workspace_dir: Path, tmp_path: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    fm.sample("coffee.jpg").save(shots / "=HYPERLINK(evil).png")
    fm.sample("chelsea.png").save(shots / "shot020.png")
    fm.write_a1111_png(shots / "shot030.png", fm.sample("rocket.jpg"))
    registered = run(
        "-w", workspace_dir, "register", shots, "--production", "Harbour", "--use", "background"
    )
    assert registered.exit_code == 0, registered.output
    assert run("-w", workspace_dir, "keys", "init", "--organisation", "Test Studio").exit_code == 0
    out = tmp_path / "legal"
    result = run("-w", workspace_dir, "export", "production", "Harbour", "--out", out, "--pdf")
    assert result.exit_code == 0, result.output
    assert "records, evidence packs and PDFs of 3 assets" in result.stdout
    ids = sorted(a["id"] for a in run_json("-w", workspace_dir, "list")["assets"])
    pdfs = sorted((out / "assets").glob("asset-*.pdf"))
    assert [p.name for p in pdfs] == [f"asset-{n}.pdf" for n in ids]
    assert all(p.read_bytes().startswith(b"%PDF-") for p in pdfs)
    with (out / "disclosure.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert sorted(int(r["asset_id"]) for r in rows) == ids
    assert {r["schema"] for r in rows} == {"provenance.disclosure-csv/1"}
    assert {r["production"] for r in rows} == {"Harbour"}
    by_name = {r["file"]: r for r in rows}
    # A name a spreadsheet would run as a formula is kept as text.
    assert "'=HYPERLINK(evil).png" in by_name
    assert by_name["shot030.png"]["tool"] == "automatic1111"
    assert {r["cleared_for_final"] for r in rows} == {"no"}
    assert all(r["missing"] for r in rows)
    # The spreadsheet and every PDF are signed like the rest of the export.
    checked = run(
        "verify",
        out / "disclosure.csv",
        *pdfs,
        "--trust",
        workspace_dir / "keys" / "development-ca.pem",
    )
    assert checked.exit_code == 0, checked.output
    # Without --pdf the packs stay HTML only; --pdf with --no-pdf is a usage error.
    again = tmp_path / "again"
    plain = run("-w", workspace_dir, "export", "production", "Harbour", "--out", again)
    assert plain.exit_code == 0
    assert not list((again / "assets").glob("*.pdf"))
    both = run(
        "-w", workspace_dir, "export", "production", "Harbour", "--out", again, "--pdf", "--no-pdf"
    )
    assert both.exit_code == 2
