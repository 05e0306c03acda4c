"""VFX stills (OpenEXR, DPX) and HEIF/AVIF: decoded through maintained libraries into the
canonical RGB every detector sees, scene-linear and log pictures through OpenColorIO, with
the transform recorded; damaged files refused in one line with nothing recorded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from provenance.domain import ColourPolicy
from provenance.errors import ConfigError, CorruptMedia, ImageTooLarge, UnsupportedMedia
from provenance.media import decode_image
from tests import filemakers as fm
from tests import vfxmakers as vfx
from tests.conftest import run, run_json, snapshot

LIMIT = 150_000_000


def pixels_of(path: Path, **options: object) -> Image.Image:
    return decode_image(path.read_bytes(), max_pixels=LIMIT, **options).pixels  # type: ignore[arg-type]


def difference(a: Image.Image, b: Image.Image) -> float:
    """The largest difference of any sample, 0-255."""
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())


@pytest.mark.parametrize("half", [True, False], ids=["half", "float"])
def test_an_openexr_of_a_photograph_decodes_back_to_the_photograph(
    tmp_path: Path, half: bool
) -> None:
    photo = fm.sample("chelsea.png")
    path = vfx.write_exr(tmp_path / "cat.exr", photo, half=half)
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.format == "OpenEXR"
    assert (decoded.width, decoded.height) == photo.size
    assert decoded.bit_depth == (16 if half else 32)
    # Linear light back through the sRGB display's un-tone-mapped view: the same picture.
    assert difference(decoded.pixels, photo) <= (2 if half else 1)
    assert imagehash.phash(decoded.pixels) - imagehash.phash(photo) <= 2
    assert decoded.media_json()["colour"] == {
        "config": "studio-config-v5.0.0_aces-v2.1_ocio-v2.6",
        "from": "Linear Rec.709 (sRGB)",
        "chosen_by": "setting colour_linear (OpenEXR is scene-linear)",
        "display": "sRGB - Display",
        "view": "Un-tone-mapped",
        "ocio": decoded.colour["ocio"],  # type: ignore[index]
    }


def test_the_view_changes_the_pixels_and_the_record(tmp_path: Path) -> None:
    photo = fm.sample("chelsea.png")
    path = vfx.write_exr(tmp_path / "cat.exr", photo)
    tone_mapped = ColourPolicy(view="ACES 2.0 - SDR 100 nits (Rec.709)")
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT, colour=tone_mapped)
    assert decoded.colour is not None
    assert decoded.colour["view"] == "ACES 2.0 - SDR 100 nits (Rec.709)"
    assert difference(decoded.pixels, photo) > 10  # a tone curve, not the texture back


def test_exr_chromaticities_name_the_colourspace(tmp_path: Path) -> None:
    path = vfx.write_exr(
        tmp_path / "cg.exr", fm.sample("coffee.jpg"), header={"chromaticities": vfx.ACESCG}
    )
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.colour is not None
    assert decoded.colour["from"] == "ACEScg"
    assert decoded.colour["chosen_by"] == "the file's chromaticities"


def test_the_beauty_of_a_multi_layer_exr_is_fingerprinted_and_the_rest_listed(
    tmp_path: Path,
) -> None:
    photo = fm.sample("astronaut.jpg")
    height, width = photo.height, photo.width
    noise = np.random.default_rng(1).random((height, width), dtype=np.float32)
    path = vfx.write_exr(
        tmp_path / "shot.exr",
        photo,
        alpha=True,
        extra={"depth.Z": noise, "diffuse.R": noise, "diffuse.G": noise, "diffuse.B": noise},
        header={"software": "Renderer 9.1", "comments": "generated: a spacewalk"},
    )
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.layer == "RGBA"
    assert sorted(decoded.other_layers) == ["depth", "diffuse"]
    assert decoded.has_alpha
    assert difference(decoded.pixels, photo) <= 2
    # What the renderer wrote in the header is read like a still's text chunks.
    assert decoded.info["software"] == "Renderer 9.1"


def test_a_beauty_part_is_found_after_other_parts(tmp_path: Path) -> None:
    photo = fm.sample("rocket.jpg")
    path = vfx.write_multipart_exr(tmp_path / "parts.exr", photo)
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.layer == "beauty"
    assert decoded.other_layers == ["normals.N"]
    assert difference(decoded.pixels, photo) <= 2


def test_a_named_beauty_layer_is_taken_when_no_plain_rgb_exists(tmp_path: Path) -> None:
    photo = fm.sample("coffee.jpg")
    zeros = np.zeros((photo.height, photo.width), np.float16)
    path = vfx.write_exr(
        tmp_path / "layers.exr",
        photo,
        prefix="ViewLayer.Combined.",
        extra={
            "ViewLayer.Shadow.R": zeros,
            "ViewLayer.Shadow.G": zeros,
            "ViewLayer.Shadow.B": zeros,
        },
    )
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.layer == "ViewLayer.Combined"
    assert decoded.other_layers == ["ViewLayer.Shadow"]
    assert difference(decoded.pixels, photo) <= 2


def test_an_exr_without_colour_or_luminance_is_refused_naming_its_channels(
    tmp_path: Path,
) -> None:
    import OpenEXR

    depth = np.zeros((32, 32), np.float32)
    path = tmp_path / "depth.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": depth}).write(str(path))
    with pytest.raises(UnsupportedMedia, match=r"no RGB or luminance.*channels: Z"):
        decode_image(path.read_bytes(), max_pixels=LIMIT)


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
def test_a_display_referred_dpx_decodes_to_its_code_values(tmp_path: Path, bits: int) -> None:
    photo = fm.sample("chelsea.png")
    path = vfx.write_dpx(tmp_path / "frame.dpx", photo, bits=bits)
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.format == "DPX"
    assert decoded.bit_depth == bits
    assert difference(decoded.pixels, photo) <= 1
    assert decoded.colour == {
        "display_referred": True,
        "chosen_by": "display-referred (the DPX header says undefined)",
    }


def test_a_log_dpx_goes_through_the_log_colourspace(tmp_path: Path) -> None:
    photo = fm.sample("chelsea.png")
    path = vfx.write_dpx(tmp_path / "log.dpx", photo, transfer="Printing density")
    decoded = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert decoded.colour is not None
    assert decoded.colour["from"] == "ADX10"
    # Log code values shown on a display: a different picture from the code values.
    assert difference(decoded.pixels, photo) > 10


def test_damaged_vfx_files_fail_in_one_line(tmp_path: Path) -> None:
    photo = fm.sample("chelsea.png")
    exr = vfx.write_exr(tmp_path / "a.exr", photo).read_bytes()
    dpx = vfx.write_dpx(tmp_path / "a.dpx", photo).read_bytes()
    for data in (exr[: len(exr) // 2], dpx[: len(dpx) // 2], exr[:40], dpx[:100]):
        with pytest.raises(CorruptMedia) as caught:
            decode_image(data, max_pixels=LIMIT)
        assert "\n" not in str(caught.value)


def test_an_exr_over_the_pixel_limit_is_refused_before_its_pixels_are_read(
    tmp_path: Path,
) -> None:
    path = vfx.write_exr(tmp_path / "big.exr", fm.sample("chelsea.png"))
    with pytest.raises(ImageTooLarge, match="over the limit of 1,000"):
        decode_image(path.read_bytes(), max_pixels=1000)


def test_an_unknown_colourspace_or_config_is_a_config_error(tmp_path: Path) -> None:
    data = vfx.write_exr(tmp_path / "a.exr", fm.sample("chelsea.png")).read_bytes()
    with pytest.raises(ConfigError, match="'No Such Space' is not in the OCIO config"):
        decode_image(data, max_pixels=LIMIT, colour=ColourPolicy(linear="No Such Space"))
    with pytest.raises(ConfigError, match="neither a file nor one of OCIO's built-in"):
        decode_image(data, max_pixels=LIMIT, colour=ColourPolicy(config="nowhere"))


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_heif_and_avif_pictures_decode(fmt: str) -> None:
    import pillow_heif

    photo = fm.sample("chelsea.png")
    buffer = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.from_pillow(photo).save(buffer, quality=90)
    else:
        photo.save(buffer, "AVIF", quality=90)
    decoded = decode_image(buffer.getvalue(), max_pixels=LIMIT)
    assert decoded.format == fmt
    assert imagehash.phash(decoded.pixels) - imagehash.phash(photo) <= 4


def test_registering_a_folder_of_vfx_stills_records_their_media_and_colour(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "shot010"
    folder.mkdir()
    photo = fm.sample("astronaut.jpg")
    vfx.write_exr(folder / "comp.exr", photo)
    vfx.write_dpx(folder / "plate.dpx", fm.sample("rocket.jpg"))
    (folder / "notes.txt").write_text("render notes")
    document = run_json("-w", workspace_dir, "register", folder, "--use", "background")
    assert document["summary"]["new"] == 2
    assert document["skipped"][0]["path"].endswith("notes.txt")
    media = {Path(r["path"]).name: r["asset"]["media"] for r in document["results"]}
    assert media["comp.exr"]["format"] == "OpenEXR"
    assert media["comp.exr"]["colour"]["from"] == "Linear Rec.709 (sRGB)"
    assert media["plate.dpx"]["format"] == "DPX"
    asset = run_json("-w", workspace_dir, "show", "1")
    phash = next(f for f in asset["fingerprints"] if f["kind"] == "phash")
    # The transform is in the fingerprint's spec: another config gives another spec.
    assert "colour=ocio=" in phash["spec"]
    assert "Linear Rec.709 (sRGB)->sRGB - Display/Un-tone-mapped" in phash["spec"]
    # The EXR of a photograph fingerprints like the photograph.
    assert imagehash.hex_to_hash(phash["value"]) - imagehash.phash(photo.convert("L")) <= 2


def test_a_studio_config_file_is_recorded_with_its_checksum(
    workspace_dir: Path, tmp_path: Path
) -> None:
    import PyOpenColorIO as ocio

    config = ocio.Config.CreateFromBuiltinConfig("studio-config-v5.0.0_aces-v2.1_ocio-v2.6")
    (workspace_dir / "studio.ocio").write_text(config.serialize())
    path = vfx.write_exr(tmp_path / "comp.exr", fm.sample("coffee.jpg"))
    result = run(
        "-w",
        workspace_dir,
        "register",
        path,
        "--json",
        env={"PROVENANCE_COLOUR_CONFIG": "studio.ocio"},
    )
    assert result.exit_code == 0, result.output
    colour = json.loads(result.stdout)["results"][0]["asset"]["media"]["colour"]
    assert colour["config"].endswith("studio.ocio")
    assert len(colour["config_sha256"]) == 64


def test_strict_registration_refuses_a_folder_with_a_file_it_would_skip(
    workspace_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "delivery"
    folder.mkdir()
    vfx.write_exr(folder / "comp.exr", fm.sample("chelsea.png"))
    (folder / "edit.xml").write_text("<xml/>")
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", folder, "--strict")
    assert result.exit_code != 0
    assert "--strict: 1 file(s) found would not be read, so nothing was registered" in (
        result.stderr
    )
    assert "edit.xml (.xml files are not read" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(workspace_dir) == before


def test_a_damaged_exr_registers_nothing(workspace_dir: Path, tmp_path: Path) -> None:
    data = vfx.write_exr(tmp_path / "a.exr", fm.sample("chelsea.png")).read_bytes()
    damaged = tmp_path / "damaged.exr"
    damaged.write_bytes(data[: len(data) // 2])
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", damaged)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "damaged or truncated OpenEXR data" in result.stderr
    assert snapshot(workspace_dir) == before
