"""Perceptual hashes: identical to imagehash's own values, and robust to known edits."""

from __future__ import annotations

from pathlib import Path

import imagehash
import pytest
from PIL import Image, ImageEnhance, ImageOps

from provenance import registration
from provenance.config import SETTINGS_BY_NAME
from provenance.detectors.hashes import (
    HASH_ALGORITHMS,
    parse_hash_names,
    perceptual_hashes,
)
from provenance.errors import ConfigError
from provenance.media import decode_image
from tests import filemakers as fm

SAMPLE_FILES = fm.SAMPLE_NAMES
ALL = list(HASH_ALGORITHMS)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_values_equal_imagehash_on_the_file(name: str) -> None:
    path = fm.SAMPLES / name
    decoded = decode_image(path.read_bytes(), max_pixels=10**9)
    ours = {f.kind: f.value for f in perceptual_hashes(decoded.pixels, ALL)}
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        assert ours == {
            "phash": str(imagehash.phash(image)),
            "dhash": str(imagehash.dhash(image)),
            "whash": str(imagehash.whash(image, image_scale=64)),
            "colorhash": str(imagehash.colorhash(rgb, binbits=3)),
        }


def test_specs_name_algorithm_parameters_and_library_version() -> None:
    fingerprints = perceptual_hashes(fm.sample("coffee.jpg"), ALL)
    specs = {f.kind: f.spec for f in fingerprints}
    assert specs["phash"].startswith("phash(hash_size=8,highfreq_factor=4);imagehash=")
    assert specs["whash"].startswith("whash(hash_size=8,image_scale=64,mode=haar);imagehash=")
    assert {f.kind: f.bits for f in fingerprints} == {
        "phash": 64,
        "dhash": 64,
        "whash": 64,
        "colorhash": 42,
    }


EDITS = {
    "resize_50": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "jpeg_q60": lambda im: fm.jpeg_reencode(im, 60),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    "autocontrast": lambda im: ImageOps.autocontrast(im, cutoff=2),
}


def _distance(a: Image.Image, b: Image.Image) -> int:
    [x] = perceptual_hashes(a, ["phash"])
    [y] = perceptual_hashes(b, ["phash"])
    return bin(int(x.value, 16) ^ int(y.value, 16)).count("1")


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_light_edits_stay_close_and_unrelated_photos_stay_far(name: str, edit: str) -> None:
    original = fm.sample(name)
    edited = EDITS[edit](original)
    nearest_unrelated = min(
        _distance(original, fm.sample(other)) for other in SAMPLE_FILES if other != name
    )
    assert _distance(original, edited) <= 8
    assert nearest_unrelated > 16


def test_mirror_is_not_caught_by_phash() -> None:
    # Documents a known limit: a mirrored copy is far in pHash space. SSCD covers it.
    original = fm.sample("chelsea.png")
    assert _distance(original, ImageOps.mirror(original)) > 16


def test_hash_names_setting_is_validated() -> None:
    assert parse_hash_names("phash, dhash,phash") == ["phash", "dhash"]
    assert parse_hash_names(SETTINGS_BY_NAME["hashes"].default) == ["phash", "dhash"]
    with pytest.raises(ConfigError, match=r"unknown name.s. ahash2 in setting .hashes."):
        parse_hash_names("phash,ahash2")


def test_registration_stores_the_configured_hashes(tmp_path: Path) -> None:
    from provenance import RegisterRequest, Workspace

    Workspace.create(tmp_path / "ws").close()
    env = {"PROVENANCE_HASHES": "phash,whash,colorhash"}
    with Workspace.open(tmp_path / "ws", environ=env) as workspace:
        report = registration.register(workspace, [fm.SAMPLES / "coffee.jpg"], RegisterRequest())
    [result] = report.results
    assert result.asset is not None
    assert [f["kind"] for f in result.asset["fingerprints"]] == [
        "sha256",
        "phash",
        "whash",
        "colorhash",
    ]


def test_phash_detector_codes_are_the_stored_fingerprints() -> None:
    from provenance.detectors.hashes import PHashDetector

    detector = PHashDetector()
    images = [fm.sample(name) for name in SAMPLE_FILES]
    codes = detector.embed(images)
    assert codes.shape == (len(images), 8)
    assert codes.dtype.name == "uint8"
    for image, code in zip(images, codes, strict=True):
        [stored] = perceptual_hashes(image, ["phash"])
        assert code.tobytes().hex() == stored.value
    assert detector.spec.metric == "hamming"
    assert detector.spec.model == HASH_ALGORITHMS["phash"].spec
    assert detector.embed([]).shape == (0, 8)


def test_detector_names_setting_is_validated() -> None:
    from provenance.detectors import parse_detector_names

    assert parse_detector_names("SSCD, phash, sscd") == ["sscd", "phash"]
    with pytest.raises(ConfigError, match=r"unknown name.s. dino in setting .detectors."):
        parse_detector_names("phash,dino")
    with pytest.raises(ConfigError, match="names nothing"):
        parse_detector_names(" , ")
