"""Geometric verification on real photographs with known edits: whether a reference is in
an asset, where in both pictures, and how checks and verdicts use it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from PIL import Image, ImageFilter, ImageOps

from provenance import Workspace, checking
from provenance.detectors import geometric
from provenance.detectors.geometric import GeometricVerifier
from provenance.scoring import Candidate, GeometryRule, Thresholds, Verdict, judge, to_verify
from tests import filemakers as fm
from tests.conftest import run, run_json


@pytest.fixture(scope="module")
def verifier() -> GeometricVerifier:
    return GeometricVerifier()


def _verify(verifier: GeometricVerifier, asset: Image.Image, reference: Image.Image):  # type: ignore[no-untyped-def]
    return verifier.verify(
        verifier.asset_features(asset), verifier.features(reference), "studio-ip", 1
    )


def _bounds(polygon: tuple[tuple[float, float], ...]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    return min(xs), min(ys), max(xs), max(ys)


def test_a_composite_is_located_in_the_asset_and_covers_the_whole_reference(
    verifier: GeometricVerifier,
) -> None:
    reference = fm.sample("astronaut.jpg")
    scene = fm.composite_25(reference)  # pasted at (w/2 + 40, h/2 + 30) of a 2w x 2h scene
    result = _verify(verifier, scene, reference)
    assert result.verified
    assert not result.mirrored
    assert result.inliers >= 100
    w, h = reference.size
    expected = ((w / 2 + 40) / (2 * w), (h / 2 + 30) / (2 * h))
    left, top, right, bottom = _bounds(result.asset_polygon)
    assert (left, top) == pytest.approx(expected, abs=0.01)
    assert (right, bottom) == pytest.approx((expected[0] + 0.5, expected[1] + 0.5), abs=0.01)
    assert result.asset_coverage == pytest.approx(0.25, abs=0.01)
    assert result.reference_coverage == pytest.approx(1.0, abs=0.01)


def test_a_crop_is_located_in_the_reference(verifier: GeometricVerifier) -> None:
    reference = fm.sample("camera.png")
    result = _verify(verifier, fm.KNOWN_EDITS["crop_50"](reference), reference)
    assert result.verified
    assert _bounds(result.reference_polygon) == pytest.approx((0.25, 0.25, 0.75, 0.75), abs=0.01)
    assert result.asset_coverage == pytest.approx(1.0, abs=0.01)


def test_a_mirrored_copy_verifies_only_through_the_mirrored_query(
    verifier: GeometricVerifier,
) -> None:
    reference = fm.sample("coffee.jpg")
    result = _verify(verifier, ImageOps.mirror(reference), reference)
    assert result.verified
    assert result.mirrored
    # The transform maps the reference's top-left corner to the asset's top-right one.
    t = result.transform
    x = (t[0] * 0 + t[1] * 0 + t[2]) / (t[6] * 0 + t[7] * 0 + t[8])
    assert x == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("name", ["astronaut.jpg", "coffee.jpg", "camera.png"])
def test_reflected_features_are_those_of_the_flipped_picture(
    verifier: GeometricVerifier, name: str
) -> None:
    # The mirrored query reflects the forward features instead of making them again: each
    # keypoint that SIFT also finds in the flipped picture (same place, size and mirrored
    # angle) must carry the same descriptor there, value for value.
    picture = fm.sample(name)
    scale = geometric.MAX_SIDE / max(picture.size)  # at the working size: used as it is
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
    reflected = verifier.features(picture).mirrored()
    grey = np.asarray(picture.convert("L"))
    sift = geometric._cv2().SIFT_create(nfeatures=geometric.MAX_FEATURES)
    forward_points, _ = sift.detectAndCompute(grey, None)
    flipped_points, flipped = sift.detectAndCompute(np.ascontiguousarray(grey[:, ::-1]), None)
    width = grey.shape[1]
    paired = same = 0
    for index, point in enumerate(forward_points):
        x, y = point.pt
        for other, candidate in enumerate(flipped_points):
            turned = (candidate.angle - (180 - point.angle) + 180) % 360 - 180
            # SIFT's keypoints sit half a pixel off centre (its first octave is doubled).
            if (
                abs(candidate.pt[0] - (width - 0.5 - x)) < 0.05
                and abs(candidate.pt[1] - y) < 0.05
                and abs(candidate.size - point.size) < 0.01
                and abs(turned) < 1
            ):
                paired += 1
                difference = np.abs(
                    reflected.raw[index].astype(int) - np.rint(flipped[other]).astype(int)
                )
                same += int(difference.max() <= 1)
                assert reflected.points[index][0] == pytest.approx(width - x, abs=1e-3)
                break
    assert paired >= 200
    assert same / paired >= 0.9


def _brute_force_pairs(query: np.ndarray, train: np.ndarray) -> set[tuple[int, int]]:
    # OpenCV's brute-force matcher both ways, each kept pair passing the ratio test.
    cv2 = geometric._cv2()
    matcher = cv2.BFMatcher(cv2.NORM_L2)

    def best(a: np.ndarray, b: np.ndarray) -> dict[int, int]:
        return {
            m[0].queryIdx: m[0].trainIdx
            for m in matcher.knnMatch(a, b, k=2)
            if len(m) == 2 and m[0].distance < geometric.RATIO * m[1].distance
        }

    forward, backward = best(query, train), best(train, query)
    return {(q, t) for q, t in forward.items() if backward.get(t) == q}


@pytest.mark.parametrize(
    ("asset", "reference"),
    [
        ("astronaut.jpg", "astronaut.jpg"),  # rotated and cropped: hundreds of pairs
        ("camera.png", "camera.png"),  # cropped to its centre
        ("coffee.jpg", "astronaut.jpg"),  # unrelated: next to none
        ("chelsea.png", "rocket.jpg"),
    ],
)
def test_mutual_matches_are_those_of_a_brute_force_matcher_run_both_ways(
    verifier: GeometricVerifier, asset: str, reference: str
) -> None:
    picture = fm.sample(asset)
    if asset == reference:
        picture = picture.rotate(10).crop((40, 40, picture.width - 60, picture.height - 30))
    query = verifier.features(fm.sample(reference))
    train = verifier.features(picture)
    for mirrored in (False, True):
        asset_side = train.mirrored() if mirrored else train
        expected = _brute_force_pairs(query.descriptors, asset_side.descriptors)
        found = geometric._mutual_matches(query.descriptors, asset_side.descriptors)
        assert {tuple(pair) for pair in found.tolist()} == expected
    if asset == reference:
        assert len(expected) < 50  # the mirrored side of a forward copy: few pairs
        assert len(geometric._mutual_matches(query.descriptors, train.descriptors)) > 100


def test_mutual_matches_need_two_features_on_each_side() -> None:
    one = np.ones((1, 128), np.float32) / np.sqrt(128)
    many = np.eye(128, dtype=np.float32)[:10]
    assert geometric._mutual_matches(one, many).shape == (0, 2)
    assert geometric._mutual_matches(many, one).shape == (0, 2)


def test_a_mirrored_composite_is_located_where_it_was_pasted(verifier: GeometricVerifier) -> None:
    reference = fm.sample("astronaut.jpg")
    scene = fm.composite_25(ImageOps.mirror(reference))
    result = _verify(verifier, scene, reference)
    assert result.verified
    assert result.mirrored
    w, h = reference.size
    left, top, right, bottom = _bounds(result.asset_polygon)
    expected = ((w / 2 + 40) / (2 * w), (h / 2 + 30) / (2 * h))
    assert (left, top) == pytest.approx(expected, abs=0.01)
    assert (right, bottom) == pytest.approx((expected[0] + 0.5, expected[1] + 0.5), abs=0.01)


@pytest.mark.parametrize(("name", "blur"), [("rocket.jpg", 4.5), ("chelsea.png", 9.5)])
def test_a_mirrored_picture_with_few_features_verifies_through_its_flipped_features(
    verifier: GeometricVerifier, name: str, blur: float
) -> None:
    # Blurred, these pictures keep 16 features; reflected, the mirrored copy's match only
    # 11-13 of them (under the 15 a verification needs), made from the flipped picture all.
    reference = fm.sample(name).filter(ImageFilter.GaussianBlur(blur))
    copy = ImageOps.mirror(reference)
    features = verifier.features(reference)
    assert features.count < 20
    reflected_only = verifier.verify(
        geometric.AssetFeatures(verifier.features(copy)), features, "studio-ip", 1
    )
    assert not reflected_only.verified
    assert reflected_only.matches >= geometric.MIN_MATCHES
    result = _verify(verifier, copy, reference)
    assert result.verified
    assert result.mirrored


@pytest.mark.parametrize("name", ["coffee.jpg", "hubble_deep_field.jpg"])
def test_a_crop_of_a_small_picture_verifies_once_both_are_enlarged(
    verifier: GeometricVerifier, name: str
) -> None:
    # At 96 px these pictures give SIFT 18-33 features and their crops do not verify; at the
    # working size they give over a hundred.
    reference = fm.sample(name)
    reference.thumbnail((96, 96))
    w, h = reference.size
    crop = reference.crop((w // 5, h // 5, w * 9 // 10, h * 9 // 10))
    features = verifier.features(reference)
    assert max(features.width, features.height) == geometric.MIN_SIDE
    assert features.count >= 100
    result = _verify(verifier, crop, reference)
    assert result.verified
    assert not result.mirrored
    assert _bounds(result.reference_polygon) == pytest.approx((0.2, 0.2, 0.9, 0.9), abs=0.03)


@pytest.mark.parametrize("asset", ["rocket.jpg", "chelsea.png", "hubble_deep_field.jpg"])
def test_unrelated_photographs_do_not_verify(verifier: GeometricVerifier, asset: str) -> None:
    result = _verify(verifier, fm.sample(asset), fm.sample("astronaut.jpg"))
    assert not result.verified
    assert result.asset_polygon == ()
    assert result.note


def test_a_flat_picture_says_it_has_too_few_features(verifier: GeometricVerifier) -> None:
    flat = Image.new("RGB", (400, 300), (90, 120, 200))
    result = _verify(verifier, fm.sample("astronaut.jpg"), flat)
    assert not result.verified
    assert result.note == "the reference has too few local features (0)"


BANDS = {"sscd": Thresholds(0.5, 0.75), "phash": Thresholds(10, 8, False)}
RULE = GeometryRule(min_inliers=15, min_coverage=0.2, unverified_review={"sscd": 0.6})


def test_unverified_review_band_scores_under_the_line_count_as_clear() -> None:
    weak = [Candidate("s", 1, "sscd", "whole", 0.55)]
    judgement = judge(weak, BANDS, verified=[], rule=RULE)
    assert judgement.verdict is Verdict.CLEAR
    assert judgement.best is not None
    [reason] = judgement.best.reasons
    assert reason.unverified
    assert reason.to_json()["unverified"] is True
    # Over the line it stays review, at low priority; verified it is normal priority.
    strong = [Candidate("s", 1, "sscd", "whole", 0.65)]
    assert judge(strong, BANDS, verified=[], rule=RULE).priority == "low"
    assert judge(strong, BANDS, verified=[], rule=RULE).verdict is Verdict.REVIEW
    supported = judge(weak, BANDS, verified=[("s", 1)], rule=RULE)
    assert (supported.verdict, supported.priority) == (Verdict.REVIEW, "normal")
    # Without verification nothing is weighed by it.
    assert judge(weak, BANDS).verdict is Verdict.REVIEW
    assert judge(weak, BANDS).priority is None


def test_a_geometry_candidate_is_high_and_verified_items_rank_first() -> None:
    candidates = [
        Candidate("s", 1, "sscd", "whole", 0.70),  # stronger embedding, not verified
        Candidate("s", 2, "sscd", "corner-br", 0.52),
        Candidate("s", 2, "geometry", "matched", 40.0),
    ]
    judgement = judge(candidates, BANDS, verified=[("s", 2)], rule=RULE)
    assert judgement.verdict is Verdict.HIGH
    assert judgement.best is not None
    assert judgement.best.item_id == 2
    assert judgement.reasons[0].detector == "geometry"
    assert [j.item_id for j in judgement.context] == [1]


@pytest.fixture
def refs_workspace(workspace_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "studio_ip"
    folder.mkdir()
    for name in ("astronaut.jpg", "camera.png", "coffee.jpg"):
        (folder / name).write_bytes((fm.SAMPLES / name).read_bytes())
    run_json("-w", workspace_dir, "refs", "add", "studio-ip", "--from", folder)
    return workspace_dir


def _stored_checks(workspace_dir: Path, asset_id: int) -> list[dict]:
    workspace = Workspace.open(workspace_dir)
    try:
        return checking.asset_checks(workspace, str(asset_id))
    finally:
        workspace.close()


def test_a_composite_check_records_the_verification_and_is_high(
    refs_workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "wall.png"
    fm.composite_25(fm.sample("coffee.jpg")).save(path)
    result = run_json("-w", refs_workspace, "register", path)["results"][0]
    check = result["check"]
    assert check["schema"] == "provenance.check/2"
    assert check["verdict"] == "high"
    assert "geometry" in {r["detector"] for r in check["reasons"]}
    assert check["best_match"]["source_path"].endswith("coffee.jpg")
    [verified] = [v for v in check["verifications"] if v["verified"]]
    assert verified["asset_coverage"] == pytest.approx(0.25, abs=0.02)
    assert "matched points" in verified["summary"]
    # The stored check reads back the same, and the geometry match is kept with the others.
    [stored] = _stored_checks(refs_workspace, result["asset"]["id"])
    assert stored["schema"] == "provenance.check/2"
    assert stored["verifications"] == check["verifications"]
    assert stored["priority"] == "normal"
    assert any(m["detector"] == "geometry" for m in stored["matches"])


def test_checks_recorded_before_verification_stay_readable(
    refs_workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "copy.png"
    fm.sample("camera.png").save(path)
    asset_id = run_json("-w", refs_workspace, "register", path)["results"][0]["asset"]["id"]
    # A check as one recorded before verification existed: no verification keys.
    with sqlite3.connect(refs_workspace / "provenance.db") as db:
        reasons = json.loads(db.execute("SELECT reasons FROM checks").fetchone()[0])
        for key in ("verifications", "priority"):
            reasons.pop(key)
        db.execute("UPDATE checks SET reasons = ?", (json.dumps(reasons),))
    [stored] = _stored_checks(refs_workspace, asset_id)
    assert stored["schema"] == "provenance.check/1"
    assert "verifications" not in stored
    assert stored["verdict"] == "high"


def test_verification_can_be_turned_off(refs_workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.png"
    fm.sample("camera.png").save(path)
    (refs_workspace / "provenance.toml").write_text(
        (refs_workspace / "provenance.toml").read_text() + "\nverification = false\n"
    )
    check = run_json("-w", refs_workspace, "register", path)["results"][0]["check"]
    assert check["verification"] == {"status": "off"}
    assert check["verifications"] == []
    assert check["priority"] is None
    assert check["verdict"] == "high"  # SSCD and the hash still flag an exact copy


def _yellow_box(picture: Image.Image) -> tuple[float, float, float, float] | None:
    """The box of the outline colour's pixels, in fractions of the picture."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    yellow = np.all(np.abs(pixels - np.array([255, 212, 0])) < 60, axis=2)
    if yellow.sum() < 50:
        return None
    ys, xs = np.nonzero(yellow)
    height, width = yellow.shape
    return xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height


def test_the_evidence_pack_outlines_the_matched_polygon_on_both_pictures(
    refs_workspace: Path, tmp_path: Path
) -> None:
    # A photograph without the outline's yellow, pasted into a dark one: any yellow in the
    # pack's pictures is the outline.
    reference = fm.sample("camera.png")
    path = tmp_path / "wall.png"
    fm.composite_25(reference).save(path)
    asset_id = run_json("-w", refs_workspace, "register", path)["results"][0]["asset"]["id"]
    out = tmp_path / "legal"
    exported = run("-w", refs_workspace, "export", "asset", str(asset_id), "--out", out)
    assert exported.exit_code == 0, exported.output
    document = pypdfium2.PdfDocument(str(out / f"asset-{asset_id}.pdf"))
    page = document[0]
    text = " ".join(page.get_textpage().get_text_range().split())
    assert "outlined: the matched polygon where the strongest reference was found" in text
    assert "Geometric check: the reference appears in the centre" in text
    images = [
        obj.get_bitmap().to_pil()
        for obj in page.get_objects(filter=[pypdfium2.raw.FPDF_PAGEOBJ_IMAGE])
    ]
    page.close()
    document.close()
    asset_picture, reference_picture = images[0], images[1]
    w, h = reference.size
    left, top = (w / 2 + 40) / (2 * w), (h / 2 + 30) / (2 * h)
    assert _yellow_box(asset_picture) == pytest.approx((left, top, left + 0.5, top + 0.5), abs=0.02)
    # The whole reference is in the asset: its outline runs round the reference's frame.
    assert _yellow_box(reference_picture) == pytest.approx((0, 0, 1, 1), abs=0.02)


def test_region_method_must_be_one_it_knows(refs_workspace: Path) -> None:
    result = run("-w", refs_workspace, "config", env={"PROVENANCE_REGION_METHOD": "tiles"})
    assert result.exit_code != 0
    assert "'tiles' is not one of crops, windows" in result.output


def test_windows_find_a_composite_and_name_the_window(refs_workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "wall.png"
    fm.composite_25(fm.sample("camera.png")).save(path)
    env = {"PROVENANCE_REGION_METHOD": "windows", "PROVENANCE_REGION_SIZE": "448"}
    registered = run("-w", refs_workspace, "register", path, "--json", env=env)
    check = json.loads(registered.stdout)["results"][0]["check"]
    assert check["verdict"] == "high"
    assert check["best_match"]["source_path"].endswith("camera.png")
    regions = {m["region"] for m in check["matches"] if m["detector"] == "sscd"}
    assert any(region.startswith("win") for region in regions)
    assert not regions & {"corner-tl", "corner-tr", "corner-bl", "corner-br", "centre"}


def test_to_verify_takes_flagged_items_then_the_strongest_over_the_floor() -> None:
    candidates = [
        Candidate("s", 1, "sscd", "whole", 0.55),  # review: always verified
        Candidate("s", 2, "sscd", "corner-tl", 0.42),
        Candidate("s", 3, "sscd", "whole", 0.31),
        Candidate("s", 4, "sscd", "whole", 0.12),  # under the floor
        Candidate("s", 5, "phash", "whole", 9.0),  # phash review band
    ]
    # Flagged ones by how far into their bands (pHash 9 of 10-8 bits is further in than
    # SSCD 0.55 of 0.50-0.75), then the rest by SSCD score.
    assert to_verify(candidates, BANDS, top=5, limit=8, floor=0.3) == [
        ("s", 5),
        ("s", 1),
        ("s", 2),
        ("s", 3),
    ]
    assert to_verify(candidates, BANDS, top=1, limit=8, floor=0.3)[-1] == ("s", 2)
    assert len(to_verify(candidates, BANDS, top=5, limit=2, floor=0.0)) == 2


def test_reference_features_are_cached_and_a_damaged_cache_file_is_made_again(
    refs_workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "wall.png"
    fm.composite_25(fm.sample("coffee.jpg")).save(path)
    first = run_json("-w", refs_workspace, "register", path)["results"][0]["check"]
    cached = sorted((refs_workspace / "cache" / "features").rglob("*.npz"))
    assert cached  # the verified references' features
    with np.load(cached[0], allow_pickle=False) as stored:
        assert str(stored["format"]) == "provenance.local-features/1"
        assert json.loads(str(stored["spec"]))["library"].startswith("opencv ")
    for file in cached:
        file.write_bytes(b"not a features file")
    asset_id = str(first["asset_id"])
    again = run_json("-w", refs_workspace, "check", asset_id)["checks"][0]
    assert again["verifications"] == first["verifications"]
    with np.load(cached[0], allow_pickle=False) as stored:  # made again
        assert str(stored["format"]) == "provenance.local-features/1"
    # From the cache, the same verifications again.
    third = run_json("-w", refs_workspace, "check", asset_id)["checks"][0]
    assert third["verifications"] == first["verifications"]


def test_store_gc_removes_features_no_reference_needs_and_those_of_another_spec(
    refs_workspace: Path, tmp_path: Path
) -> None:
    path = tmp_path / "wall.png"
    fm.composite_25(fm.sample("coffee.jpg")).save(path)
    run_json("-w", refs_workspace, "register", path)
    root = refs_workspace / "cache" / "features"
    needed = sorted(root.rglob("*.npz"))
    assert needed
    unknown = needed[0].parent / f"{'0' * 64}.npz"  # a picture no record names
    unknown.write_bytes(needed[0].read_bytes())
    stale = root / "0123456789abcdef" / "ab" / f"{needed[0].stem}.npz"  # another spec
    stale.parent.mkdir(parents=True)
    stale.write_bytes(needed[0].read_bytes())
    young = run_json("-w", refs_workspace, "store", "gc", "--json")
    assert young["removed_features"] == 0  # younger than --min-age: a check may be writing
    report = run_json("-w", refs_workspace, "store", "gc", "--min-age", "0", "--json")
    assert report["removed_features"] == 2
    assert not unknown.exists()
    assert not stale.parent.parent.exists()
    assert sorted(root.rglob("*.npz")) == needed
    words = run("-w", refs_workspace, "store", "gc", "--min-age", "0").output
    assert "0 cached feature files" in words
    # With verification off the current spec is unknown: every spec's files are kept, and
    # only those of pictures no record names go.
    stale.parent.mkdir(parents=True)
    stale.write_bytes(needed[0].read_bytes())
    unknown.write_bytes(needed[0].read_bytes())
    off = run(
        "-w",
        refs_workspace,
        "store",
        "gc",
        "--min-age",
        "0",
        "--json",
        env={"PROVENANCE_VERIFICATION": "false"},
    )
    assert json.loads(off.stdout)["removed_features"] == 1
    assert not unknown.exists()
    assert stale.exists()
