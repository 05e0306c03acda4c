"""Smoke tests of the benchmark code (CI never runs the benchmarks themselves)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.quality import (
    _truth_evidence,
    band_table,
    median_tree,
    metrics,
    missed_copies,
    phash_beyond_sscd,
    setting_overrides,
    threshold_at_precision,
)
from provenance.scoring import Candidate, Verification


def _rows() -> list[dict]:
    # (predicted reference, score); truth None marks a query that copies nothing.
    return [
        {"truth": 0, "m": (0, 0.9)},  # correct, best score
        {"truth": None, "m": (3, 0.8)},  # a negative scores second
        {"truth": 1, "m": (1, 0.7)},  # correct
        {"truth": 2, "m": (5, 0.6)},  # wrong reference
    ]


def test_micro_average_precision_by_hand() -> None:
    result = metrics(_rows(), "m")
    # Ranked: hit (P=1/1), miss, hit (P=2/3), miss; 3 positives: AP = (1 + 2/3) / 3.
    assert result["uap"] == pytest.approx((1 + 2 / 3) / 3, abs=1e-4)
    assert result["top1"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["recall_at_p99"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["recall_at_p95"] == pytest.approx(1 / 3, abs=1e-4)


def test_a_tie_ranks_its_wrong_predictions_first() -> None:
    # A correct and a wrong prediction at the same score, listed correct first: the metric
    # must not let the listing order decide.
    rows = [
        {"truth": 0, "m": (0, 1.0)},
        {"truth": None, "m": (4, 1.0)},
        {"truth": 1, "m": (1, 0.5)},
    ]
    result = metrics(rows, "m")
    # Ranked: miss (tie), hit (P=1/2), hit (P=2/3).
    assert result["uap"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-4)
    assert result["recall_at_p95"] == 0


def test_threshold_at_precision() -> None:
    assert threshold_at_precision(_rows(), "m", 0.99) == 0.9
    assert threshold_at_precision(_rows(), "m", 0.6) == 0.7


def test_band_table_counts_copies_caught_and_unrelated_flagged() -> None:
    table = band_table(_rows(), "m", [0.55, 0.65, 0.85])
    # At 0.65: copies 0 and 1 found with the right reference, 2 found the wrong one;
    # the one unrelated query (0.8) is flagged.
    # At 0.65: 2 right of 3 flagged (the wrong-reference copy scores under it).
    assert table["0.65"] == {
        "recall": round(2 / 3, 4),
        "unrelated_flagged": 1.0,
        "precision": round(2 / 3, 4),
        "f2": round(2 / 3, 4),  # precision = recall, so F2 equals both
    }
    # At 0.55 the wrong-reference copy is a false flag too: precision 2/4.
    assert table["0.55"]["precision"] == 0.5
    assert table["0.85"]["recall"] == round(1 / 3, 4)
    assert (table["0.85"]["unrelated_flagged"], table["0.85"]["precision"]) == (0.0, 1.0)


def test_median_tree_takes_element_wise_medians() -> None:
    runs = [
        {"a": {"x": 1.0, "y": None}, "n": 3, "label": "s"},
        {"a": {"x": 5.0, "y": 2.0}, "n": 1, "label": "s"},
        {"a": {"x": 2.0, "y": 1.0}, "n": 2, "label": "s"},
    ]
    assert median_tree(runs) == {"a": {"x": 2.0, "y": None}, "n": 2.0, "label": "s"}


def test_threshold_at_precision_never_splits_a_tie() -> None:
    rows = [
        {"truth": 0, "m": (0, 0.9)},
        {"truth": 1, "m": (1, 0.7)},  # ties with the unrelated query below
        {"truth": None, "m": (4, 0.7)},
    ]
    # Taking 0.7 takes both tied queries: precision 2/3, so 0.99 needs 0.9.
    assert threshold_at_precision(rows, "m", 0.99) == 0.9
    assert threshold_at_precision(rows, "m", 0.6) == 0.7


def test_phash_beyond_sscd_counts_only_what_sscd_missed() -> None:
    rows = [
        # SSCD finds it: pHash adds nothing.
        {"truth": 0, "sscd+regions": (0, 0.9), "phash": (0, -4.0)},
        # SSCD misses it (too low); pHash finds it at 9 bits.
        {"truth": 1, "sscd+regions": (1, 0.3), "phash": (1, -9.0)},
        # Unrelated, SSCD quiet, pHash at 12 bits: flagged only by pHash from 12 on.
        {"truth": None, "sscd+regions": (2, 0.2), "phash": (3, -12.0)},
        # Unrelated, already flagged by SSCD: not pHash's doing.
        {"truth": None, "sscd+regions": (2, 0.6), "phash": (3, -5.0)},
    ]
    table = phash_beyond_sscd(rows, sscd_review=0.5)
    assert table["-8.0"] == {"copies_only_phash_finds": 0, "unrelated_only_phash_flags": 0}
    assert table["-10.0"] == {"copies_only_phash_finds": 1, "unrelated_only_phash_flags": 0}
    assert table["-12.0"] == {"copies_only_phash_finds": 1, "unrelated_only_phash_flags": 1}


def test_index_accuracy_by_hand() -> None:
    import numpy as np

    from benchmarks.index_search import K, accuracy

    exact_ids = np.array([list(range(K)), list(range(10, 10 + K))])
    exact_scores = np.array([[0.9, 0.6] + [0.2] * (K - 2), [0.3] * K], dtype=np.float32)
    # Query 0 finds all but neighbour 1 (0.6, over the floor); query 1 finds half.
    found = np.array([[0, *range(100, 100 + K - 1)], [*range(10, 15), *range(200, 200 + K - 5)]])
    result = accuracy(found, exact_ids, exact_scores, np.array([0, 99]), floor=0.5)
    assert result["recall_at_10"] == round((1 / K + 5 / K) / 2, 4)
    assert result["recall_above_review"] == 0.5  # neighbours 0 and 1 of query 0; 0 found
    assert result["originals_in_top10"] == 0.5


def test_synthetic_vectors_follow_the_real_ones() -> None:
    import numpy as np

    from benchmarks.index_search import synthetic_like

    rng = np.random.default_rng(0)
    # "Real" vectors: most variance along the first axis.
    real = rng.standard_normal((2000, 8)).astype(np.float32) * np.array([5, 1, 1, 1, 1, 1, 1, 1])
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    fake = synthetic_like(real, 5000, seed=1)
    assert fake.shape == (5000, 8)
    assert np.allclose(np.linalg.norm(fake, axis=1), 1.0, atol=1e-5)
    # The fitted Gaussian keeps the real vectors' main direction (normalising reshapes
    # the spread a little, so only its order is compared).
    spread_fake = np.abs(fake).mean(axis=0)
    assert spread_fake.argmax() == 0
    assert spread_fake[0] > 2 * spread_fake[1:].max()
    isotropic = synthetic_like(rng.standard_normal((2000, 8)).astype(np.float32), 5000, seed=1)
    assert np.abs(isotropic).mean(axis=0).max() < 1.3 * np.abs(isotropic).mean(axis=0).min()


def test_review_scale_fills_a_verifiable_workspace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.review_scale import measure

    result = measure(60, 1, 3, tmp_path, None)
    assert (result["assets"], result["database"]) == (60, "sqlite")
    # A third of the flagged assets were decided; the rest wait in the queue.
    assert result["open_in_queue"] == result["flagged"] - result["flagged"] // 3
    assert set(result["seconds"]) == {
        "queue_first_page", "status", "asset_page", "disclosure", "audit_verify_full",
        "audit_verify_incremental",
    }  # fmt: skip
    assert set(result["seconds"]["queue_first_page"]) == {"p50", "p99"}


def test_register_versions_writes_distinct_pictures(tmp_path: Path) -> None:
    from benchmarks.register_versions import write_pictures

    write_pictures(tmp_path / "p", 5)
    files = sorted((tmp_path / "p").iterdir())
    assert len(files) == 5
    assert len({f.read_bytes() for f in files}) == 5


def test_cli_startup_names_the_slowest_imports() -> None:
    from benchmarks.cli_startup import ROOT, slowest_imports

    found = slowest_imports(ROOT, ["--version"], count=5)
    assert len(found) == 5
    assert any(line.startswith("provenance.cli ") for line in found), found
    assert all(line.endswith(" s") for line in found)


def test_unverified_line_counts_only_queries_that_did_not_verify() -> None:
    from benchmarks.quality import unverified_line_table

    rows = [
        # A copy whose right reference verified: no line demotes it.
        {"truth": 0, "family": "crop", "sscd+regions": (0, 0.52), "verified": (0, 40.0)},
        # A copy found by SSCD only, at 0.62.
        {"truth": 1, "family": "crop", "sscd+regions": (1, 0.62), "verified": (-1, -1e9)},
        # An unrelated image at 0.57 and a hard negative at 0.66, neither verified.
        {"truth": None, "family": "negative", "sscd+regions": (3, 0.57), "verified": (-1, -1e9)},
        {"truth": None, "family": "hard", "sscd+regions": (4, 0.66), "verified": (-1, -1e9)},
    ]
    table = unverified_line_table(rows, 0.5)
    assert table["0.55"] == {"positives": 0.5, "unrelated": 1.0, "hard_negatives": 1.0}
    assert table["0.6"] == {"positives": 0.5, "unrelated": 0.0, "hard_negatives": 1.0}
    assert table["0.7"] == {"positives": 0.0, "unrelated": 0.0, "hard_negatives": 0.0}


def test_set_names_a_setting_as_the_workspace_reads_it() -> None:
    assert setting_overrides(["verify_top=4", " Region_Method = windows "]) == {
        "PROVENANCE_VERIFY_TOP": "4",
        "PROVENANCE_REGION_METHOD": "windows",
    }
    for bad in ("verify_top", "no_such_setting=1", "=4"):
        with pytest.raises(SystemExit, match="NAME=VALUE"):
            setting_overrides([bad])


def test_truth_evidence_says_where_the_reference_ranked_and_how_it_verified() -> None:
    references = [Path("a.png"), Path("b.png"), Path("c.png")]
    item_of = {"a.png": 11, "b.png": 12, "c.png": 13}
    searched = [
        Candidate("set", 13, "sscd", "whole", 0.7),
        Candidate("set", 12, "sscd", "whole", 0.5),
        Candidate("set", 12, "sscd", "centre", 0.6),
        Candidate("set", 11, "phash", "whole", 4.0),
    ]
    failed = Verification.failed("set", 12, "9 matched features", matches=9)
    found = _truth_evidence(1, references, item_of, searched, [failed])
    assert found == {
        "sscd_rank": 2,
        "sscd": 0.6,
        "verification": {
            "verified": False,
            "inliers": 0,
            "matches": 9,
            "mirrored": False,
            "note": "9 matched features",
        },
    }
    # Found by pHash alone, never verified; an unrelated image has no truth.
    assert _truth_evidence(0, references, item_of, searched, []) == {
        "sscd_rank": None,
        "sscd": None,
        "verification": None,
    }
    assert _truth_evidence(None, references, item_of, searched, []) is None


def test_missed_copies_counts_each_copy_below_high_once_by_why() -> None:
    def row(family: str, verdict: str, evidence: dict | None, truth: int | None = 1) -> dict:
        return {
            "truth": truth,
            "family": family,
            "fused_verdict": verdict,
            "truth_evidence": evidence,
        }

    def tried(note: str, inliers: int = 0, matches: int = 0) -> dict:
        verification = {"verified": False, "inliers": inliers, "matches": matches, "note": note}
        return {"sscd_rank": 1, "sscd": 0.5, "verification": verification}

    rows = [
        row("crop", "high", tried("", 40, 40)),  # high: not missed
        row("composite", "clear", {"sscd_rank": None, "sscd": None, "verification": None}),
        row("composite", "review", {"sscd_rank": 3, "sscd": 0.4, "verification": None}),
        row("combined", "clear", tried("5 matched features", 0, 5)),
        row("combined", "clear", tried("11 consistent matches, fewer than 15", 11, 20)),
        row("overlay", "clear", tried("the reference has too few local features (6)")),
        row("negative", "review", None, truth=None),  # not a copy
    ]
    found = missed_copies(rows, ["crop", "composite", "combined", "overlay"])
    assert found["count"] == 5
    counts = {reason: entry["count"] for reason, entry in found["reasons"].items()}
    assert counts["reference not among the SSCD candidates"] == 1
    assert counts["reference found by SSCD, not among those verified"] == 1
    assert counts["local features do not match"] == 1
    assert counts["fewer consistent matches than the line"] == 1
    assert counts["too few local features (reference)"] == 1
    assert sum(counts.values()) == 5
    assert found["reasons"]["local features do not match"]["by_family"] == {
        "crop": 0,
        "composite": 0,
        "combined": 1,
        "overlay": 0,
    }


def test_moving_benchmark_makes_its_media_and_measures_a_child(tmp_path: Path) -> None:
    import av

    from benchmarks import moving

    movie = tmp_path / "take.mp4"
    assert moving.make_movie(movie, 2) == 48
    with av.open(str(movie)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 48
    pattern = moving.make_sequence(tmp_path / "plate", 2)
    assert sorted(p.name for p in pattern.parent.iterdir()) == ["plate.1001.exr", "plate.1002.exr"]
    seconds, peak, out = moving.timed(["--version"], {**os.environ})
    assert seconds > 0
    assert peak > 10  # MiB: a Python process, its own peak
    assert out.strip()
