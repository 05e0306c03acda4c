"""The command line as artists and pipelines use it, against real SQLite workspaces."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest

from provenance.db import schema
from provenance.domain import GENERATION_FIELDS
from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot


def test_init_creates_the_workspace_layout(tmp_path: Path) -> None:
    result = run("init", tmp_path / "ws")
    assert result.exit_code == 0, result.output
    ws = tmp_path / "ws"
    assert (ws / "provenance.toml").is_file()
    assert all((ws / d).is_dir() for d in ("store", "indexes", "reference_sets"))
    with sqlite3.connect(ws / "provenance.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert revision == schema.SCHEMA_HEAD
    assert 'format = "provenance.workspace/1"' in (ws / "provenance.toml").read_text()


def test_init_with_bad_settings_writes_nothing(tmp_path: Path) -> None:
    result = run("init", tmp_path / "ws", env={"PROVENANCE_HASHES": "phash,sha1"})
    assert result.exit_code == 1
    assert "unknown name(s) sha1 in setting 'hashes'" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_init_refuses_an_existing_workspace(workspace_dir: Path) -> None:
    result = run("init", workspace_dir)
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_register_json_acceptance(workspace_dir: Path, tmp_path: Path) -> None:
    png = fm.write_a1111_png(tmp_path / "shot010_v003.png", fm.sample("coffee.jpg"))
    document = run_json("-w", workspace_dir, "register", png)
    asset = document["results"][0]["asset"]
    assert document["schema"] == "provenance.register/2"
    assert asset["schema"] == "provenance.asset/1"
    assert isinstance(asset["id"], int)
    assert asset["sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
    assert asset["fingerprints"][0] == {
        "kind": "sha256",
        "spec": "sha256",
        "value": asset["sha256"],
        "bits": 256,
    }
    assert {f["kind"] for f in asset["fingerprints"]} == {"sha256", "phash", "dhash"}
    assert asset["intended_use"] == "undeclared"
    assert set(asset["generation"]["fields"]) == set(GENERATION_FIELDS)
    for name in ("tool", "model", "prompt", "negative_prompt", "seed"):
        assert asset["generation"]["fields"][name]["source"] == "a1111"
    assert (workspace_dir / asset["store_path"]).read_bytes() == png.read_bytes()
    # What registration prints is exactly what was stored.
    assert run_json("-w", workspace_dir, "show", str(asset["id"])) == asset


def test_registering_the_same_bytes_again_returns_the_existing_asset(
    workspace_dir: Path, tmp_path: Path
) -> None:
    first = run_json("-w", workspace_dir, "register", fm.SAMPLES / "rocket.jpg")
    copy = tmp_path / "renamed_copy.jpg"
    copy.write_bytes((fm.SAMPLES / "rocket.jpg").read_bytes())
    before = snapshot(workspace_dir)
    second = run_json("-w", workspace_dir, "register", copy, "--use", "final-deliverable")
    assert second["results"][0]["status"] == "known"
    assert second["results"][0]["asset"]["id"] == first["results"][0]["asset"]["id"]
    assert snapshot(workspace_dir) == before


def test_unknown_intended_use_is_refused_with_the_list(workspace_dir: Path) -> None:
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", fm.SAMPLES / "rocket.jpg", "--use", "poster")
    assert result.exit_code == 2  # a usage error, as the README says
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--use': unknown intended use 'poster'; choose one of: "
        "ideation, previz, background, key-creative, talent-likeness, final-deliverable"
    )
    assert snapshot(workspace_dir) == before
    listed = run("-w", workspace_dir, "list", "--use", "poster")
    assert listed.exit_code == 2
    assert "unknown intended use 'poster'" in listed.stderr
    assert run("-w", workspace_dir, "list", "--use", "undeclared").exit_code == 0
    refused = run("-w", workspace_dir, "register", fm.SAMPLES / "rocket.jpg", "--use", "undeclared")
    assert refused.exit_code == 2


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good_png = (fm.SAMPLES / "chelsea.png").read_bytes()
    good_jpeg = (fm.SAMPLES / "rocket.jpg").read_bytes()
    files = {
        "zero_byte.png": (b"", "empty file"),
        "truncated.png": (good_png[: len(good_png) // 2], "truncated"),
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 3], "truncated"),
        "corrupt.png": (good_png[:5000] + b"\xa5" * 64 + good_png[5064:], "damaged PNG data"),
        "notes.png": (b"shot notes, not a picture\n" * 40, "not a recognised image"),
        "bomb.png": (_png_declaring(40_000, 40_000), "pixels"),
        "bomb_small.png": (_png_declaring(13_000, 13_000), "over the limit"),
    }
    paths = {}
    for name, (data, message) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = (path, message)
    return paths


@pytest.mark.parametrize(
    "name",
    [
        "zero_byte.png",
        "truncated.png",
        "truncated.jpg",
        "corrupt.png",
        "notes.png",
        "bomb.png",
        "bomb_small.png",
    ],
)
def test_bad_file_gives_one_line_error_and_changes_nothing(
    workspace_dir: Path, tmp_path: Path, name: str
) -> None:
    path, message = _bad_files(tmp_path)[name]
    run_json("-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg")
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert snapshot(workspace_dir) == before


def test_unreadable_and_missing_files(workspace_dir: Path, tmp_path: Path) -> None:
    before = snapshot(workspace_dir)
    # /proc/self/mem is a regular file that fails with EIO when read, even for root.
    unreadable = Path("/proc/self/mem")
    result = run("-w", workspace_dir, "register", unreadable)
    assert result.exit_code == 1
    assert "cannot read file" in result.stderr or "empty file" in result.stderr
    missing = run("-w", workspace_dir, "register", tmp_path / "nope.png")
    assert missing.exit_code == 1
    assert "no such file" in missing.stderr
    dangling = tmp_path / "dangling.png"
    os.symlink(tmp_path / "gone.png", dangling)
    assert "no such file" in run("-w", workspace_dir, "register", dangling).stderr
    assert snapshot(workspace_dir) == before


def test_folder_walk_reports_new_known_failed_and_skipped(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "renders"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    (folder / "sub" / "cat.png").write_bytes((fm.SAMPLES / "chelsea.png").read_bytes())
    (folder / "sub" / "cat.png.json").write_text(json.dumps({"prompt": "a cat"}))
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    (folder / "readme.txt").write_text("not an image")
    (folder / ".hidden" / "x.png").write_bytes((fm.SAMPLES / "camera.png").read_bytes())
    run_json("-w", workspace_dir, "register", fm.SAMPLES / "rocket.jpg")

    result = run("-w", workspace_dir, "register", folder, "--json")
    assert result.exit_code == 1  # one file failed
    document = json.loads(result.stdout)
    assert document["summary"] == {
        "new": 2,
        "known": 1,
        "failed": 1,
        "skipped": 1,
        "earlier_checked": 0,
        "verdicts": {"high": 0, "review": 0, "clear": 0},
    }
    by_name = {Path(r["path"]).name: r for r in document["results"]}
    assert by_name["rocket.jpg"]["status"] == "known"
    assert by_name["broken.png"]["status"] == "failed"
    assert by_name["cat.png"]["asset"]["generation"]["fields"]["prompt"]["value"] == "a cat"
    assert document["skipped"] == [
        {"path": str(folder / "readme.txt"), "reason": document["skipped"][0]["reason"]}
    ]
    assert document["skipped"][0]["reason"].startswith(".txt files are not read (read: ")

    text = run("-w", workspace_dir, "register", folder)
    assert "0 new, 3 already registered, 1 failed, 1 skipped." in text.stdout
    assert "broken.png" in text.stderr
    # Every skipped file is named, with why, in the human output too.
    assert f"skipped {folder / 'readme.txt'}: .txt files are not read" in text.stderr


def test_walking_a_folder_skips_the_workspace_inside_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "coffee.jpg").write_bytes((fm.SAMPLES / "coffee.jpg").read_bytes())
    assert run("init", project / "ws").exit_code == 0
    run_json("-w", project / "ws", "register", fm.SAMPLES / "rocket.jpg")  # a stored copy
    document = run_json("-w", project / "ws", "register", project)
    assert document["summary"] == {
        "new": 1,
        "known": 0,
        "failed": 0,
        "skipped": 0,
        "earlier_checked": 0,
        "verdicts": {"high": 0, "review": 0, "clear": 0},
    }
    # Walking the workspace folder itself registers nothing from it.
    inside = run_json("-w", project / "ws", "register", project / "ws")
    assert inside["summary"] == {
        "new": 0,
        "known": 0,
        "failed": 0,
        "skipped": 0,
        "earlier_checked": 0,
        "verdicts": {"high": 0, "review": 0, "clear": 0},
    }


def test_show_by_id_and_sha_prefix(workspace_dir: Path) -> None:
    asset = run_json(
        "-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg", "--use", "ideation"
    )["results"][0]["asset"]
    by_id = run_json("-w", workspace_dir, "show", str(asset["id"]))
    by_sha = run_json("-w", workspace_dir, "show", asset["sha256"][:10])
    assert by_id == by_sha
    assert by_id["intended_use"] == "ideation"
    text = run("-w", workspace_dir, "show", asset["sha256"][:10])
    assert f"asset {asset['id']}  coffee.jpg" in text.stdout
    assert "phash" in text.stdout


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("999", "no asset with id 999"),
        ("deadbeefcafe", "no asset whose sha256"),
        ("shot010", "neither an asset id"),
    ],
)
def test_show_unknown_ids(workspace_dir: Path, ref: str, message: str) -> None:
    result = run("-w", workspace_dir, "show", ref)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_list_filters(workspace_dir: Path, tmp_path: Path) -> None:
    comfy = fm.write_comfyui_png(tmp_path / "comfy.png", fm.sample("chelsea.png"))
    run_json(
        "-w", workspace_dir, "register", comfy, "--use", "background", "--production", "Harbour"
    )
    run_json(
        "-w",
        workspace_dir,
        "register",
        fm.SAMPLES / "rocket.jpg",
        "--tool",
        "midjourney",
        "--use",
        "ideation",
        "--production",
        "Lighthouse",
    )
    run_json("-w", workspace_dir, "register", fm.SAMPLES / "camera.png")

    def ids(*filters: str) -> list[str]:
        return [
            a["original_name"] for a in run_json("-w", workspace_dir, "list", *filters)["assets"]
        ]

    assert ids() == ["comfy.png", "rocket.jpg", "camera.png"]
    assert ids("--production", "Harbour") == ["comfy.png"]
    assert ids("--tool", "MidJourney") == ["rocket.jpg"]
    assert ids("--use", "ideation") == ["rocket.jpg"]
    assert ids("--use", "undeclared") == ["camera.png"]
    assert ids("--since", "2000-01-01") == ["comfy.png", "rocket.jpg", "camera.png"]
    assert ids("--since", "2999-01-01") == []
    assert ids("--limit", "1") == ["comfy.png"]
    bad = run("-w", workspace_dir, "list", "--since", "yesterday")
    assert bad.exit_code == 1
    assert "not a date" in bad.stderr
    table = run("-w", workspace_dir, "list").stdout.splitlines()
    assert table[0].split() == [
        "id",
        "sha256",
        "verdict",
        "status",
        "use",
        "production",
        "tool",
        "model",
        "registered",
        "file",
    ]
    assert len(table) == 4


HOSTILE_PROMPT = (
    "'; DROP TABLE assets; -- \x1b[2J\x1b[31mRED\u202etxt.exe\r\n<script>alert(1)</script>"
)


def test_hostile_prompt_is_stored_verbatim_and_printed_harmlessly(workspace_dir: Path) -> None:
    document = run_json(
        "-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg", "--prompt", HOSTILE_PROMPT
    )
    asset = document["results"][0]["asset"]
    assert asset["generation"]["fields"]["prompt"]["value"] == HOSTILE_PROMPT
    text = run("-w", workspace_dir, "show", str(asset["id"])).stdout
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "\\x1b[2J" in text
    assert "\\x0d\n" in text  # the carriage return is shown; the line break is kept
    raw = run("-w", workspace_dir, "show", str(asset["id"]), "--json").stdout
    assert "\x1b" not in raw
    assert len(run_json("-w", workspace_dir, "list")["assets"]) == 1


def test_nul_in_a_flag_is_refused(workspace_dir: Path) -> None:
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg", "--prompt", "a\x00b")
    assert result.exit_code == 1
    assert "--prompt contains a NUL character" in result.stderr
    assert snapshot(workspace_dir) == before


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--seed", "twelve"), "seed must be an integer"),
        (("--setting", "steps"), "is not KEY=VALUE"),
        (("--metadata", "/nonexistent/meta.json"), "cannot read metadata file"),
    ],
)
def test_bad_flags_are_refused(workspace_dir: Path, flags: tuple[str, ...], message: str) -> None:
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg", *flags)
    assert result.exit_code == 1
    assert message in result.stderr
    assert snapshot(workspace_dir) == before


def test_workspace_is_found_from_env_and_parent_folders(
    workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = workspace_dir / "shots" / "sh010"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert run("list").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    missing = run("list")
    assert missing.exit_code == 1
    assert "no workspace here or in any parent folder" in missing.stderr
    assert run("list", env={"PROVENANCE_WORKSPACE": str(workspace_dir)}).exit_code == 0
    bad_env = run("list", env={"PROVENANCE_WORKSPACE": str(elsewhere)})
    assert "is not a workspace" in bad_env.stderr


def test_config_shows_values_and_their_sources(workspace_dir: Path) -> None:
    toml = workspace_dir / "provenance.toml"
    toml.write_text(toml.read_text() + '\nproduction = "Harbour"\n')
    result = run(
        "-w", workspace_dir, "config", "--json", env={"PROVENANCE_MAX_IMAGE_PIXELS": "1000"}
    )
    settings = {s["name"]: s for s in json.loads(result.stdout)["settings"]}
    assert settings["production"]["value"] == "Harbour"
    assert settings["production"]["source"] == "provenance.toml"
    assert settings["max_image_pixels"] == {
        **settings["max_image_pixels"],
        "value": 1000,
        "source": "PROVENANCE_MAX_IMAGE_PIXELS",
    }
    assert settings["hashes"]["source"] == "default"
    text = run("-w", workspace_dir, "config").stdout
    assert "production" in text
    assert "(provenance.toml)" in text


@pytest.mark.parametrize(
    ("addition", "env", "message"),
    [
        ('\nmax_image_pixels = "lots"\n', {}, "is not a valid int"),
        ("\nmax_imag_pixels = 5\n", {}, "unknown setting(s) max_imag_pixels"),
        ("\n[settings\n", {}, "not valid TOML"),
        ("", {"PROVENANCE_AUTO_UPGRADE": "perhaps"}, "is not a valid bool"),
        ("", {"PROVENANCE_SEARCH_NPROBE": "-1"}, "below its minimum 0"),
        ("\ntop_k = -3\n", {}, "below its minimum 1"),
        ("", {"PROVENANCE_DATABASE_URL": "mysql://x/y"}, "only SQLite and PostgreSQL"),
        (
            "",
            {"PROVENANCE_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"},
            "cannot use the workspace database",
        ),
        ("", {"PROVENANCE_DATABASE_URL": "sqlite://"}, "not an in-memory database"),
        ("", {"PROVENANCE_DATABASE_URL": "://nonsense"}, "is not a database URL"),
    ],
)
def test_bad_settings_are_one_line_errors(
    workspace_dir: Path, addition: str, env: dict[str, str], message: str
) -> None:
    toml = workspace_dir / "provenance.toml"
    toml.write_text(toml.read_text() + addition)
    result = run("-w", workspace_dir, "config", env=env)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_database_url_may_be_a_plain_path(tmp_path: Path) -> None:
    env = {"PROVENANCE_DATABASE_URL": "records/register.db"}
    (tmp_path / "ws" / "records").mkdir(parents=True)
    assert run("init", tmp_path / "ws", env=env).exit_code == 0
    assert (tmp_path / "ws" / "records" / "register.db").is_file()
    assert not (tmp_path / "ws" / "provenance.db").exists()
    toml = tmp_path / "ws" / "provenance.toml"
    toml.write_text(toml.read_text() + '\ndatabase_url = "records/register.db"\n')
    registered = run("-w", tmp_path / "ws", "register", fm.SAMPLES / "coffee.jpg")
    assert registered.exit_code == 0, registered.output


def test_damaged_database_file_is_a_one_line_error(workspace_dir: Path) -> None:
    for suffix in ("-wal", "-shm"):
        (workspace_dir / f"provenance.db{suffix}").unlink(missing_ok=True)
    (workspace_dir / "provenance.db").write_bytes(b"this is not a database" * 100)
    result = run("-w", workspace_dir, "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use the workspace database: ")
    assert result.stderr.count("\n") == 1


def test_setting_from_env_changes_behaviour(workspace_dir: Path) -> None:
    result = run(
        "-w",
        workspace_dir,
        "register",
        fm.SAMPLES / "coffee.jpg",
        env={"PROVENANCE_MAX_IMAGE_PIXELS": "1000"},
    )
    assert result.exit_code == 1
    assert "over the limit of 1,000 (setting max_image_pixels)" in result.stderr


def test_usage_errors_exit_2(workspace_dir: Path) -> None:
    assert run("-w", workspace_dir, "register").exit_code == 2
    assert run("-w", workspace_dir, "register", "x.png", "--colour").exit_code == 2


def test_progress_bar_on_a_terminal_only(workspace_dir: Path, tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    folder = tmp_path / "renders"
    folder.mkdir()
    for name in ("coffee.jpg", "rocket.jpg", "camera.png"):
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    leader, follower = pty.openpty()
    process = subprocess.run(
        [sys.executable, "-m", "provenance", "-w", str(workspace_dir), "register", str(folder)],
        stdout=subprocess.PIPE,
        stderr=follower,
        check=False,
        timeout=120,
    )
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    assert process.returncode == 0
    assert b"registering" in terminal
    assert b"3/3" in terminal
    piped = run("-w", workspace_dir, "register", folder)
    assert "registering" not in piped.stderr


def test_worker_processes_give_the_same_records_as_one_process(tmp_path: Path) -> None:
    from tests.test_concurrency import write_distinct_images

    folder = tmp_path / "plates"
    write_distinct_images(folder, 40, seed=7)
    fm.write_a1111_png(folder / "a1111.png", fm.sample("coffee.jpg"))
    (folder / "broken.png").write_bytes((fm.SAMPLES / "chelsea.png").read_bytes()[:9000])
    (folder / "typo.png").write_bytes((fm.SAMPLES / "camera.png").read_bytes())
    (folder / "typo.png.json").write_text('{"promt": "x"}')
    (folder / "copy_of_a1111.png").write_bytes((folder / "a1111.png").read_bytes())

    def register_with(jobs: str) -> dict:
        workspace = tmp_path / f"ws-{jobs}"
        assert run("init", workspace).exit_code == 0
        result = run("-w", workspace, "register", folder, "--jobs", jobs, "--json")
        assert result.exit_code == 1  # two files fail
        return json.loads(result.stdout)

    def comparable(document: dict) -> list:
        rows = []
        for r in document["results"]:
            asset = r["asset"] or {}
            rows.append(
                (
                    Path(r["path"]).name,
                    r["status"],
                    r["error"],
                    asset.get("sha256"),
                    [f["value"] for f in asset.get("fingerprints", [])],
                    asset.get("generation", {}).get("fields"),
                )
            )
        return rows

    inline, pooled = register_with("1"), register_with("2")
    assert (
        pooled["summary"]
        == inline["summary"]
        == {
            "new": 41,
            "known": 1,
            "failed": 2,
            "skipped": 0,
            "earlier_checked": 0,
            "verdicts": {"high": 0, "review": 0, "clear": 0},
        }
    )
    assert comparable(pooled) == comparable(inline)
    failed = {Path(r["path"]).name: r["error"] for r in pooled["results"] if r["error"]}
    assert "damaged" in failed["broken.png"] or "truncated" in failed["broken.png"]
    assert "unknown key(s) promt" in failed["typo.png"]
    stored = [p for p in (tmp_path / "ws-2" / "store").rglob("*") if p.is_file()]
    assert len(stored) == 41
    assert run("-w", tmp_path / "ws-2", "audit", "verify").exit_code == 0


def test_a_failed_database_write_leaves_no_stored_copy(workspace_dir: Path) -> None:
    import sqlite3

    with sqlite3.connect(workspace_dir / "provenance.db") as db:
        db.execute(
            "CREATE TRIGGER refuse_assets BEFORE INSERT ON assets "
            "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
        )
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg")
    assert result.exit_code == 1
    assert "simulated write failure" in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(workspace_dir) == before
