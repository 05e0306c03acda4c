"""Movies and frame sequences: each one asset with its media facts, checked frame by frame,
the verdict naming the frame ranges that match; damaged media refused in one line with
nothing recorded and nothing stored. The media are made here, with PyAV and OpenEXR, from
the sample photographs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests import filemakers as fm
from tests import vfxmakers as vfx
from tests.conftest import run, run_json, snapshot, sql

# The reference set: three photographs. Movies are made of these and of two others.
REFERENCES = ("rocket.jpg", "astronaut.jpg", "chelsea.png")


@pytest.fixture
def checked_workspace(workspace_dir: Path, tmp_path: Path) -> Path:
    """A workspace with a third-party reference set of REFERENCES."""
    folder = tmp_path / "refs"
    folder.mkdir()
    for name in REFERENCES:
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    result = run("-w", workspace_dir, "refs", "add", "studio-ip", "--from", folder)
    assert result.exit_code == 0, result.output
    return workspace_dir


def pictures(*runs: tuple[str, int]) -> list[Image.Image]:
    """Frames: each sample photograph for so many frames, in order."""
    frames = []
    for name, count in runs:
        frames += [fm.sample(name)] * count
    return frames


def item_id(workspace_dir: Path, name: str) -> int:
    [(found,)] = sql(
        workspace_dir,
        "SELECT id FROM reference_items WHERE source_path LIKE :name",
        name=f"%{name}",
    )
    return int(found)


def test_a_folder_of_still_sequence_dpx_and_movies_registers_one_asset_each(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "shot010"
    folder.mkdir()
    (folder / "board.png").write_bytes((fm.SAMPLES / "camera.png").read_bytes())
    for number, name in enumerate(("coffee.jpg", "rocket.jpg", "chelsea.png"), start=1001):
        vfx.write_exr(folder / f"shot010_comp.{number}.exr", fm.sample(name).resize((128, 96)))
    vfx.write_dpx(folder / "plate.dpx", fm.sample("astronaut.jpg"))
    vfx.write_movie(
        folder / "take1.mov",
        pictures(("coffee.jpg", 12), ("camera.png", 12)),
        codec="prores_ks",
        pixel_format="yuv422p10le",
        tags={"comment": "generated: harbour at dawn", "timecode": "01:00:00:00"},
    )
    vfx.write_movie(folder / "take2.mp4", pictures(("camera.png", 10)))
    vfx.write_movie(folder / "take3.webm", pictures(("coffee.jpg", 8)), codec="libvpx-vp9")

    result = run("-w", workspace_dir, "register", folder, "--use", "background")
    assert result.exit_code == 0, result.output
    assert "6 new, 0 already registered, 0 failed, 0 skipped." in result.stdout
    assert "skipped" not in result.stderr
    document = run_json("-w", workspace_dir, "list")
    media = {
        a["original_name"]: run_json("-w", workspace_dir, "show", str(a["id"]))["media"]
        for a in document["assets"]
    }
    assert set(media) == {
        "board.png",
        "shot010_comp.####.exr",
        "plate.dpx",
        "take1.mov",
        "take2.mp4",
        "take3.webm",
    }
    sequence = media["shot010_comp.####.exr"]
    assert sequence["kind"] == "sequence"
    assert (sequence["first_frame"], sequence["last_frame"], sequence["frames"]) == (1001, 1003, 3)
    assert sequence["format"] == "OpenEXR"
    assert sequence["frame_rate"] == "24"
    assert sorted(sequence["frame_sha256"]) == ["1001", "1002", "1003"]
    assert sequence["colour"]["from"] == "Linear Rec.709 (sRGB)"
    prores = media["take1.mov"]
    assert prores["kind"] == "movie"
    assert (prores["codec"], prores["width"], prores["height"]) == ("prores", 320, 240)
    assert (prores["frames"], prores["frame_rate"], prores["bit_depth"]) == (24, "24", 10)
    assert prores["timecode"] == "01:00:00:00"
    assert media["take2.mp4"]["codec"] == "h264"
    assert media["take3.webm"]["codec"] == "vp9"
    assert media["take3.webm"]["frames"] == 8
    # The container's tags are read like a still's EXIF.
    take1 = next(a for a in document["assets"] if a["original_name"] == "take1.mov")
    generation = run_json("-w", workspace_dir, "show", str(take1["id"]))["generation"]
    assert generation["settings"]["image_description"]["value"] == "generated: harbour at dawn"
    # The human output of show describes a movie and a sequence as such.
    shown = run("-w", workspace_dir, "show", str(take1["id"])).stdout
    assert "movie: prores HQ 320x240, 24 fps, 24 frames (1 s), timecode 01:00:00:00" in shown


def test_a_movie_with_a_reference_inside_names_the_frame_range(
    checked_workspace: Path, tmp_path: Path
) -> None:
    movie = vfx.write_movie(
        tmp_path / "launch.mp4",
        pictures(("coffee.jpg", 30), ("rocket.jpg", 31), ("camera.png", 29)),
    )
    document = run_json("-w", checked_workspace, "register", movie, "--use", "background")
    check = document["results"][0]["check"]
    assert check["verdict"] == "high"
    rocket = item_id(checked_workspace, "rocket.jpg")
    assert check["best_match"]["item_id"] == rocket
    frames = check["frames"]
    assert frames["kind"] == "movie"
    # The first frame, one a second (24 frames) and the first frame of each shot.
    assert frames["sampled"] == [0, 24, 30, 48, 61, 72]
    assert frames["shot_starts"] == [30, 61]
    [found] = frames["ranges"]
    assert (found["item_id"], found["first"], found["last"]) == (rocket, 30, 60)
    assert 30 <= found["strongest_frame"] <= 60
    # Every kept match and reason says which frame it was found in.
    assert all(30 <= m["frame"] <= 60 for m in check["matches"] if m["item_id"] == rocket)
    assert all("frame" in r for r in check["reasons"])
    verified = [v for v in check["verifications"] if v["verified"]]
    assert verified
    assert 30 <= verified[0]["frame"] <= 60

    text = run("-w", checked_workspace, "check", "1").stdout
    assert f"frames 30-60 recreate studio-ip#{rocket} (high" in text
    # What is recorded reads back the same, and the audit log vouches for it.
    shown = run_json("-w", checked_workspace, "show", "1")
    assert shown["checks"][0]["frames"]["ranges"] == frames["ranges"]
    assert "frames 30-60 recreate" in run("-w", checked_workspace, "show", "1").stdout
    assert run("-w", checked_workspace, "audit", "verify").exit_code == 0


def test_a_movie_of_unrelated_frames_stays_clear(checked_workspace: Path, tmp_path: Path) -> None:
    movie = vfx.write_movie(tmp_path / "walk.mov", pictures(("coffee.jpg", 40), ("camera.png", 40)))
    document = run_json("-w", checked_workspace, "register", movie, "--use", "background")
    check = document["results"][0]["check"]
    assert check["verdict"] == "clear"
    assert check["frames"]["ranges"] == []
    assert check["frames"]["shot_starts"] == [40]


def test_a_sequence_is_checked_on_its_own_frame_numbers(
    checked_workspace: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "renders"
    folder.mkdir()
    names = ["coffee.jpg", "coffee.jpg", "astronaut.jpg", "astronaut.jpg", "camera.png"]
    for number, name in enumerate(names, start=1001):
        vfx.write_exr(folder / f"comp.{number:04d}.exr", fm.sample(name).resize((256, 256)))
    result = run(
        "-w", checked_workspace, "register", folder / "comp.####.exr", "--json",
        env={"PROVENANCE_FRAME_STEP_SECONDS": str(1 / 24)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["results"][0]["check"]
    assert check["verdict"] == "high"
    assert check["frames"]["sampled"] == [1001, 1002, 1003, 1004, 1005]
    [found] = check["frames"]["ranges"]
    astronaut = item_id(checked_workspace, "astronaut.jpg")
    assert (found["item_id"], found["first"], found["last"]) == (astronaut, 1003, 1004)


@pytest.mark.parametrize(
    "pattern", ["comp.####.exr", "comp.%04d.exr", "comp.@@@@.exr", "comp.1002-1003#.exr"]
)
def test_a_sequence_named_by_its_pattern(workspace_dir: Path, tmp_path: Path, pattern: str) -> None:
    for number in (1001, 1002, 1003):
        vfx.write_exr(tmp_path / f"comp.{number}.exr", fm.sample("coffee.jpg").resize((64, 48)))
    document = run_json("-w", workspace_dir, "register", tmp_path / pattern)
    media = document["results"][0]["asset"]["media"]
    expected = (1002, 1003) if "1002" in pattern else (1001, 1003)
    assert (media["first_frame"], media["last_frame"]) == expected
    assert document["results"][0]["asset"]["original_name"] == "comp.####.exr"


def test_a_sequence_with_a_missing_frame_is_refused_whole(
    workspace_dir: Path, tmp_path: Path
) -> None:
    for number in (1001, 1002, 1004):
        vfx.write_exr(tmp_path / f"comp.{number}.exr", fm.sample("coffee.jpg").resize((64, 48)))
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", tmp_path)
    assert result.exit_code == 1
    assert "comp.####.exr is missing 1 frame(s): 1003" in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(workspace_dir) == before


def test_a_sequence_with_a_damaged_frame_stores_nothing(
    workspace_dir: Path, tmp_path: Path
) -> None:
    for number in (1001, 1002, 1003):
        vfx.write_exr(tmp_path / f"comp.{number}.exr", fm.sample("coffee.jpg").resize((64, 48)))
    damaged = tmp_path / "comp.1003.exr"
    damaged.write_bytes(damaged.read_bytes()[:400])
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", tmp_path)
    assert result.exit_code == 1
    assert "frame 1003 (comp.1003.exr): damaged" in result.stderr
    assert snapshot(workspace_dir) == before  # the two good frames stored first are gone


@pytest.mark.parametrize("cut", ["header", "tail"])
def test_a_damaged_movie_records_and_stores_nothing(
    workspace_dir: Path, tmp_path: Path, cut: str
) -> None:
    movie = vfx.write_movie(tmp_path / "take.mp4", pictures(("coffee.jpg", 48)))
    data = movie.read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:200] if cut == "header" else data[: len(data) // 2])
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", damaged)
    assert result.exit_code == 1
    assert "damaged or truncated movie" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert snapshot(workspace_dir) == before


def test_a_movie_is_streamed_not_read_whole(workspace_dir: Path, tmp_path: Path) -> None:
    """A movie over max_file_mb (the limit for files read into memory) registers: it is
    hashed and stored in chunks; over max_movie_mb it is refused."""
    frames = [fm.sample(n).rotate(i * 7) for i in range(40) for n in ("coffee.jpg",)]
    movie = vfx.write_movie(
        tmp_path / "take.mov", frames, codec="prores_ks", pixel_format="yuv422p10le",
        size=(640, 480),
    )  # fmt: skip
    assert movie.stat().st_size > 1024 * 1024
    result = run(
        "-w", workspace_dir, "register", movie, "--json", env={"PROVENANCE_MAX_FILE_MB": "1"}
    )
    assert result.exit_code == 0, result.output
    sha256 = json.loads(result.stdout)["results"][0]["asset"]["sha256"]
    stored = workspace_dir / "store" / sha256[:2] / sha256
    assert stored.read_bytes() == movie.read_bytes()
    refused = run(
        "-w",
        workspace_dir,
        "register",
        tmp_path / "again.mov",
        env={"PROVENANCE_MAX_MOVIE_MB": "1"},
    )
    assert refused.exit_code == 1
    (tmp_path / "again.mov").write_bytes(movie.read_bytes() + b"\0")
    refused = run(
        "-w",
        workspace_dir,
        "register",
        tmp_path / "again.mov",
        env={"PROVENANCE_MAX_MOVIE_MB": "1"},
    )
    assert refused.exit_code == 1
    assert "over the limit" in refused.stderr
    assert "max_movie_mb" in refused.stderr


def test_the_thumbnail_of_a_movie_is_its_first_frame(workspace_dir: Path, tmp_path: Path) -> None:
    from provenance import assets
    from provenance.workspace import Workspace

    movie = vfx.write_movie(tmp_path / "take.mp4", pictures(("rocket.jpg", 5), ("coffee.jpg", 5)))
    sha256 = run_json("-w", workspace_dir, "register", movie)["results"][0]["asset"]["sha256"]
    with Workspace.open(workspace_dir) as workspace:
        thumbnail = Image.open(assets.thumbnail(workspace, sha256, 160))
    rocket = fm.sample("rocket.jpg").resize(thumbnail.size).convert("L")
    coffee = fm.sample("coffee.jpg").resize(thumbnail.size).convert("L")
    import numpy as np

    grey = np.asarray(thumbnail.convert("L"), dtype=np.float32)
    assert (
        np.abs(grey - np.asarray(rocket, np.float32)).mean()
        < np.abs(grey - np.asarray(coffee, np.float32)).mean()
    )


def test_the_evidence_pack_lists_the_frame_ranges_and_pictures_the_matching_frame(
    checked_workspace: Path, tmp_path: Path
) -> None:
    import jsonschema
    import pypdfium2

    from provenance.export.record import schema_document

    movie = vfx.write_movie(
        tmp_path / "launch.mp4",
        pictures(("coffee.jpg", 30), ("rocket.jpg", 31), ("camera.png", 29)),
    )
    check = run_json("-w", checked_workspace, "register", movie)["results"][0]["check"]
    out = tmp_path / "out"
    result = run("-w", checked_workspace, "export", "asset", "1", "--out", out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "asset-1.json").read_text())
    assert record["checks"][-1]["frames"]["ranges"] == check["frames"]["ranges"]
    jsonschema.validate(record, schema_document("record-1"))  # frames and frame are in it
    document = pypdfium2.PdfDocument(str(out / "asset-1.pdf"))
    text = "".join(page.get_textpage().get_text_range() for page in document)
    assert "6 frames of the movie were looked at (2 of them the first frame of a shot)" in text
    assert "Frame ranges that match" in text
    rocket = item_id(checked_workspace, "rocket.jpg")
    assert f"30–60 studio-ip #{rocket} high" in text
    shown = check["verifications"][0]["frame"]
    assert f"h264, movie of 90 frames), frame {shown}" in " ".join(text.split())


def test_store_gc_keeps_the_frames_of_a_sequence(db_workspace_dir: Path, tmp_path: Path) -> None:
    """A sequence's frames are stored files no asset row names by its own sha256: garbage
    collection must know them from the sequence's media facts (SQLite and PostgreSQL)."""
    for number in (1001, 1002):
        vfx.write_exr(tmp_path / f"comp.{number}.exr", fm.sample("coffee.jpg").resize((64, 48)))
    document = run_json("-w", db_workspace_dir, "register", tmp_path / "comp.####.exr")
    frames = document["results"][0]["asset"]["media"]["frame_sha256"]
    result = run("-w", db_workspace_dir, "store", "gc", "--min-age", "0")
    assert result.exit_code == 0, result.output
    for sha256 in frames.values():
        assert (db_workspace_dir / "store" / sha256[:2] / sha256).is_file()
    # The sequence still reads: its thumbnail is its first frame.
    from provenance import assets
    from provenance.workspace import Workspace

    with Workspace.open(db_workspace_dir) as workspace:
        assert assets.thumbnail(workspace, document["results"][0]["asset"]["sha256"], 160)


def test_a_movie_of_enormous_frames_or_no_movie_at_all_is_refused_in_one_line(
    workspace_dir: Path, tmp_path: Path
) -> None:
    movie = vfx.write_movie(tmp_path / "take.mp4", pictures(("coffee.jpg", 4)))
    fake = tmp_path / "notes.mov"
    fake.write_text("these are not frames\n" * 100)
    hostile = vfx.write_movie(
        tmp_path / "tagged.mkv",
        pictures(("coffee.jpg", 4)),
        tags={"comment": "<script>alert(1)</script> a prompt", "artist": "x" * 5000},
    )
    before = snapshot(workspace_dir)
    result = run(
        "-w", workspace_dir, "register", movie, env={"PROVENANCE_MAX_IMAGE_PIXELS": "1000"}
    )
    assert result.exit_code == 1
    assert "frames are 320x240 = 76,800 pixels, over the limit of 1,000" in result.stderr
    result = run("-w", workspace_dir, "register", fake)
    assert result.exit_code == 1
    assert "notes.mov: " in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert snapshot(workspace_dir) == before
    # Hostile text in a container's tags is kept as text (the pages escape it).
    document = run_json("-w", workspace_dir, "register", hostile)
    settings = document["results"][0]["asset"]["generation"]["settings"]
    assert settings["image_description"]["value"] == "<script>alert(1)</script> a prompt"


@pytest.mark.parametrize(
    ("codec", "container", "expected"),
    [("libx265", "mp4", "hevc"), ("libsvtav1", "mkv", "av1"), ("mpeg4", "mov", "mpeg4")],
)
def test_other_codecs_register_as_movies(
    workspace_dir: Path, tmp_path: Path, codec: str, container: str, expected: str
) -> None:
    movie = vfx.write_movie(
        tmp_path / f"take.{container}", pictures(("coffee.jpg", 6), ("camera.png", 6)), codec=codec
    )
    document = run_json("-w", workspace_dir, "register", movie)
    media = document["results"][0]["asset"]["media"]
    assert (media["kind"], media["codec"], media["frames"]) == ("movie", expected, 12)


def test_a_sequence_takes_its_rate_and_timecode_from_its_first_frame(
    workspace_dir: Path, tmp_path: Path
) -> None:
    """OpenEXR frames written as a compositor writes them (OpenImageIO): framesPerSecond
    24000/1001 and an SMPTE time code of 01:02:03:04 in the header."""
    import numpy as np
    import OpenImageIO as oiio

    def bcd(value: int) -> int:
        return ((value // 10) << 4) | (value % 10)

    packed = bcd(4) | bcd(3) << 8 | bcd(2) << 16 | bcd(1) << 24
    light = vfx.linear(fm.sample("coffee.jpg").resize((64, 48)))
    for number in (1001, 1002):
        spec = oiio.ImageSpec(64, 48, 3, "half")
        spec.attribute("FramesPerSecond", oiio.TypeRational, (24000, 1001))
        spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (packed, 0))
        path = str(tmp_path / f"comp.{number}.exr")
        out = oiio.ImageOutput.create(path)
        assert out.open(path, spec)
        assert out.write_image(np.ascontiguousarray(light))
        out.close()
    media = run_json("-w", workspace_dir, "register", tmp_path)["results"][0]["asset"]["media"]
    assert media["frame_rate"] == "24000/1001"
    assert media["timecode"] == "01:02:03:04"
    shown = run("-w", workspace_dir, "show", "1").stdout
    assert "frames 1001-1002 (2), 24000/1001 fps, timecode 01:02:03:04" in shown


def test_a_movie_with_alpha_is_composited_over_white_like_a_still(
    workspace_dir: Path, tmp_path: Path
) -> None:
    import numpy as np

    from provenance import assets
    from provenance.workspace import Workspace

    picture = fm.sample("coffee.jpg").resize((320, 240)).convert("RGBA")
    picture.putalpha(0)  # all transparent
    picture.paste(fm.sample("coffee.jpg").resize((160, 120)), (80, 60))  # an opaque centre
    movie = vfx.write_movie(
        tmp_path / "matte.mov", [picture] * 4, codec="prores_ks", pixel_format="yuva444p10le"
    )
    document = run_json("-w", workspace_dir, "register", movie)
    media = document["results"][0]["asset"]["media"]
    assert media["has_alpha"]
    with Workspace.open(workspace_dir) as workspace:
        frame = Image.open(assets.frame_thumbnail(workspace, media_sha(document), 0, 320))
    corner = np.asarray(frame.convert("RGB"))[:20, :20].astype(int)
    assert corner.min() > 235  # transparent: white, as a still's transparency is


def media_sha(document: dict) -> str:
    return str(document["results"][0]["asset"]["sha256"])


def test_a_reference_set_takes_stills_and_says_why_it_skips_a_movie(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "rocket.jpg").write_bytes((fm.SAMPLES / "rocket.jpg").read_bytes())
    vfx.write_movie(folder / "trailer.mp4", pictures(("coffee.jpg", 4)))
    for number, name in ((1001, "camera.png"), (1002, "coffee.jpg")):
        vfx.write_exr(folder / f"plate.{number}.exr", fm.sample(name).resize((64, 64)))
    document = run_json("-w", workspace_dir, "refs", "add", "library", "--from", folder)
    assert document["added"] == 3  # the still and each frame of the sequence
    assert document["skipped"] == [str(folder / "trailer.mp4")]
    assert document["skipped_why"][0]["reason"] == (
        "reference sets take stills; movies are not read as references"
    )
    text = run("-w", workspace_dir, "refs", "add-items", "library", "--from", folder)
    assert f"skipped {folder / 'trailer.mp4'}: reference sets take stills" in text.stderr
    assert "0 added, 3 already present, 0 failed, 1 skipped." in text.stdout
