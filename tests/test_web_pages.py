"""What the asset page puts side by side, and where it outlines a matched region."""

from __future__ import annotations

from PIL import Image

from provenance.media import REGION_BOXES, regions
from provenance.web.pages import _side_by_side
from provenance.web.uploads import upload_name

BANDS = {
    "sscd": {"review": 0.5, "high": 0.75, "higher_is_closer": True},
    "phash": {"review": 10, "high": 8, "higher_is_closer": False},
}


def _match(item: int, detector: str, region: str, score: float) -> dict:
    return {
        "reference_set": "studio-ip", "rights_status": "third-party", "item_id": item,
        "sha256": f"{item:064x}", "source_path": f"refs/{item}.jpg", "attribution": None,
        "detector": detector, "region": region, "score": score, "rank": 1,
    }  # fmt: skip


def test_pairs_are_strongest_first_with_the_region_of_the_strongest_score() -> None:
    check = {
        "thresholds": BANDS,
        "reasons": [{"reference_set": "studio-ip", "item_id": 7, "detector": "sscd"}],
        "matches": [
            _match(3, "sscd", "whole", 0.55),
            _match(7, "sscd", "corner-br", 0.81),
            _match(7, "phash", "whole", 22),
            _match(9, "sscd", "whole", 0.20),  # below the review line: not shown
        ],
    }
    pairs = _side_by_side(check)
    assert [p["reference"]["item_id"] for p in pairs] == [7, 3]
    assert pairs[0]["box"] == REGION_BOXES["corner-br"]
    assert pairs[0]["region"] == "corner-br"
    assert pairs[1]["box"] is None  # a whole-picture match outlines nothing
    fired = {(s["detector"], s["fired"]) for s in pairs[0]["scores"]}
    assert fired == {("sscd", True), ("phash", False)}
    assert [s["verdict"] for s in pairs[0]["scores"]] == ["high", "clear"]
    assert _side_by_side(None) == []


def test_region_boxes_describe_the_crops_searched() -> None:
    width, height = 1000, 600
    picture = Image.effect_noise((width, height), 64).convert("RGB")
    for name, crop in regions(picture).items():
        left, top, right, bottom = REGION_BOXES[name]
        assert abs(crop.width - (right - left) * width) <= 1, name
        assert abs(crop.height - (bottom - top) * height) <= 1, name


def test_an_uploaded_document_keeps_only_a_safe_base_name() -> None:
    assert upload_name("approval.eml") == "approval.eml"
    assert upload_name("C:\\Users\\lena\\Mail\\approval.eml") == "approval.eml"
    assert upload_name("../../etc/passwd") == "passwd"
    assert upload_name("memo\x00\n<b>.pdf") == "memob.pdf"
    assert upload_name("..") == "document"
    assert upload_name(None) == "document"
    assert len(upload_name("x" * 500 + ".pdf")) == 200
