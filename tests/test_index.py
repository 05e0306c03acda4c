"""FAISS indexes on disk: round trips, refusals, IVF recall, and crash safety."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from provenance.detectors.base import DetectorSpec, l2_normalise
from provenance.detectors.hashes import perceptual_hashes
from provenance.detectors.sscd import SSCDDetector
from provenance.errors import IndexCorrupt, IndexSpecMismatch, InvalidInput
from provenance.index.faiss_index import (
    EXACT_LIMIT,
    build_index,
    load_index,
    probe_count,
    read_manifest,
    save_index,
)
from tests import filemakers as fm

NAMES = fm.SAMPLE_NAMES
PHASH_SPEC = DetectorSpec("phash", "imagehash phash", "-", 64, "hamming", "greyscale 32x32")


def unit_vectors(count: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return l2_normalise(rng.standard_normal((count, dim)).astype(np.float32))


@pytest.fixture(scope="module")
def sscd() -> SSCDDetector:
    return SSCDDetector()


def test_flat_round_trip_with_real_sscd_vectors(sscd: SSCDDetector, tmp_path: Path) -> None:
    photos = sscd.embed([fm.sample(name) for name in NAMES])
    vectors = np.concatenate([photos, unit_vectors(994, 512, seed=1)])
    ids = np.arange(1000, 2000, dtype=np.int64)
    built = build_index(sscd.spec, vectors, ids)
    assert built.index_type == "flat-ip"
    save_index(built, tmp_path / "refs", "sscd")
    loaded = load_index(tmp_path / "refs", "sscd", sscd.spec)
    queries = sscd.embed([fm.sample(name).resize((200, 150)) for name in NAMES])
    before, after = built.search(queries, 10), loaded.search(queries, 10)
    assert np.array_equal(before[1], after[1])
    assert np.array_equal(before[0], after[0])
    assert list(after[1][:, 0]) == list(range(1000, 1000 + len(NAMES)))
    manifest = read_manifest(tmp_path / "refs", "sscd")
    assert manifest["format"] == "provenance.index/1"
    assert manifest["detector"] == sscd.spec.to_json()
    assert manifest["count"] == 1000
    assert manifest["vectors_sha256"] == built.vectors_sha256


def test_binary_index_gives_hamming_distances(tmp_path: Path) -> None:
    codes = np.array(
        [
            np.frombuffer(
                bytes.fromhex(perceptual_hashes(fm.sample(n), ["phash"])[0].value), np.uint8
            )
            for n in NAMES
        ]
    )
    built = build_index(PHASH_SPEC, codes, np.arange(len(NAMES)))
    save_index(built, tmp_path, "phash")
    loaded = load_index(tmp_path, "phash", PHASH_SPEC)
    distances, ids = loaded.search(codes[:2], len(NAMES))
    for row, query in enumerate(codes[:2]):
        expected = {
            int(i): int(np.unpackbits(np.bitwise_xor(query, codes[i])).sum())
            for i in range(len(NAMES))
        }
        assert {int(i): int(d) for i, d in zip(ids[row], distances[row], strict=True)} == expected
        assert ids[row][0] == row
        assert distances[row][0] == 0


def test_index_built_under_another_spec_is_refused(sscd: SSCDDetector, tmp_path: Path) -> None:
    built = build_index(sscd.spec, unit_vectors(10, 512, seed=2), np.arange(10))
    save_index(built, tmp_path, "sscd")
    changed = replace(sscd.spec, weights_sha256="0" * 64, preprocess="288 short side")
    with pytest.raises(IndexSpecMismatch, match=r"weights_sha256, preprocess changed\); rebuild"):
        load_index(tmp_path, "sscd", changed)


def test_damaged_or_missing_files_are_refused(sscd: SSCDDetector, tmp_path: Path) -> None:
    built = build_index(sscd.spec, unit_vectors(10, 512, seed=3), np.arange(10))
    manifest_path = save_index(built, tmp_path, "sscd")
    index_file = tmp_path / read_manifest(tmp_path, "sscd")["file"]
    data = bytearray(index_file.read_bytes())
    data[100] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="does not match its manifest"):
        load_index(tmp_path, "sscd", sscd.spec)
    index_file.unlink()
    with pytest.raises(IndexCorrupt, match="is missing"):
        load_index(tmp_path, "sscd", sscd.spec)
    manifest_path.write_text(json.dumps({"format": "someone-else/3"}))
    with pytest.raises(IndexCorrupt, match=r"not 'provenance\.index/1'"):
        load_index(tmp_path, "sscd", sscd.spec)
    with pytest.raises(IndexCorrupt, match="no index 'clip'"):
        load_index(tmp_path, "clip", sscd.spec)


def test_vectors_of_the_wrong_shape_or_kind_are_refused(sscd: SSCDDetector) -> None:
    with pytest.raises(InvalidInput, match="512 columns"):
        build_index(sscd.spec, unit_vectors(3, 256, seed=4), np.arange(3))
    with pytest.raises(InvalidInput, match="8 columns of uint8"):
        build_index(PHASH_SPEC, np.zeros((3, 8), dtype=np.float32), np.arange(3))
    with pytest.raises(InvalidInput, match="unique"):
        build_index(sscd.spec, unit_vectors(3, 512, seed=5), np.array([1, 1, 2]))


def test_large_sets_get_an_ivf_index_with_high_recall(tmp_path: Path) -> None:
    spec = DetectorSpec("test", "clustered", "-", 64, "cosine", "-")
    rng = np.random.default_rng(6)
    centres = rng.standard_normal((500, 64)).astype(np.float32)
    count = EXACT_LIMIT + 10_000
    points = centres[rng.integers(0, 500, count)] + 0.3 * rng.standard_normal((count, 64))
    vectors = l2_normalise(points.astype(np.float32))
    ids = np.arange(count, dtype=np.int64)
    built = build_index(spec, vectors, ids)
    assert built.index_type == "ivf1024-pq16x4fs-refine-fp16"
    save_index(built, tmp_path, "test")
    loaded = load_index(tmp_path, "test", spec)
    queries = vectors[:200] + 0.05 * rng.standard_normal((200, 64)).astype(np.float32)
    exact = np.argsort(-(l2_normalise(queries) @ vectors.T), axis=1)[:, :10]
    _, found = loaded.search(l2_normalise(queries), 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found, strict=True)])
    assert recall >= 0.95
    # search_nprobe: probing every list is exact search, up to the float16 copies' rounding
    # (neighbours whose cosines differ by less than 0.001 may swap at the tenth place).
    nlist = int(built.index_type.removeprefix("ivf").split("-")[0])
    assert loaded.nprobe == probe_count(nlist, count) == 256
    everything = load_index(tmp_path, "test", spec, nprobe=nlist)
    assert everything.nprobe == nlist
    scores, found = everything.search(l2_normalise(queries), 10)
    cosines = l2_normalise(queries) @ vectors.T
    for row, (a, b) in enumerate(zip(exact, found, strict=True)):
        np.testing.assert_allclose(cosines[row][b], scores[row], atol=1e-3)
        np.testing.assert_allclose(np.sort(cosines[row][a]), np.sort(cosines[row][b]), atol=1e-3)
    assert sum(set(a) == set(b) for a, b in zip(exact, found, strict=True)) >= 190
    with pytest.raises(InvalidInput):
        everything.set_nprobe(0)


WRITER = """
import sys, numpy as np
from pathlib import Path
from provenance.detectors.base import DetectorSpec, l2_normalise
from provenance.index.faiss_index import build_index, save_index
spec = DetectorSpec("test", "m", "-", 128, "cosine", "-")
folder = Path(sys.argv[1])
generation = 0
while True:
    generation += 1
    rng = np.random.default_rng(generation)
    vectors = l2_normalise(rng.standard_normal((40000, 128)).astype(np.float32))
    save_index(build_index(spec, vectors, np.arange(40000) + generation * 100000), folder, "test")
"""


@pytest.mark.slow
def test_killing_a_build_midway_leaves_a_loadable_index(tmp_path: Path) -> None:
    spec = DetectorSpec("test", "m", "-", 128, "cosine", "-")
    rng = np.random.default_rng(0)
    first = l2_normalise(rng.standard_normal((100, 128)).astype(np.float32))
    save_index(build_index(spec, first, np.arange(100)), tmp_path, "test")
    for attempt in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.DEVNULL
        )
        time.sleep(1.0 + 0.37 * attempt)  # land at different points of a save
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        loaded = load_index(tmp_path, "test", spec)
        assert loaded.count in (100, 40000)
        _, ids = loaded.search(np.ones((1, 128), dtype=np.float32), 1)
        assert ids[0][0] >= 0
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".incoming-")]
    assert len(leftovers) <= 6  # a killed write may leave its temporary file, never a real name
