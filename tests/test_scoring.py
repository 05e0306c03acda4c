"""Explained verdicts from scores and thresholds (pure)."""

from __future__ import annotations

from provenance.scoring import Candidate, Thresholds, Verdict, judge, strongest_items

BANDS = {
    "sscd": Thresholds(review=0.45, high=0.75),
    "phash": Thresholds(review=12, high=10, higher_is_closer=False),
}


def test_no_candidates_is_clear() -> None:
    judgement = judge([], BANDS)
    assert judgement.verdict is Verdict.CLEAR
    assert judgement.best is None
    assert judgement.reasons == ()


def test_bands_for_similarities_and_distances() -> None:
    sscd, phash = BANDS["sscd"], BANDS["phash"]
    assert [sscd.verdict(s) for s in (0.2, 0.45, 0.74, 0.75)] == [
        Verdict.CLEAR,
        Verdict.REVIEW,
        Verdict.REVIEW,
        Verdict.HIGH,
    ]
    assert [phash.verdict(d) for d in (20, 12, 11, 10, 0)] == [
        Verdict.CLEAR,
        Verdict.REVIEW,
        Verdict.REVIEW,
        Verdict.HIGH,
        Verdict.HIGH,
    ]


def test_best_item_decides_and_others_are_context() -> None:
    candidates = [
        Candidate("studio-ip", 1, "sscd", "whole", 0.52),
        Candidate("studio-ip", 1, "sscd", "corner-tl", 0.81),  # strongest region wins
        Candidate("studio-ip", 2, "sscd", "whole", 0.47),
        Candidate("studio-ip", 3, "sscd", "whole", 0.10),
        Candidate("studio-ip", 2, "phash", "whole", 30),
    ]
    judgement = judge(candidates, BANDS)
    assert judgement.verdict is Verdict.HIGH
    assert judgement.best is not None
    assert judgement.best.item_id == 1
    [reason] = judgement.reasons
    assert (reason.detector, reason.region, reason.score) == ("sscd", "corner-tl", 0.81)
    assert [j.item_id for j in judgement.context] == [2]


def test_strict_phash_match_fuses_with_a_weak_sscd_score() -> None:
    candidates = [
        Candidate("refs", 7, "sscd", "whole", 0.40),
        Candidate("refs", 7, "phash", "whole", 6),
        Candidate("refs", 8, "sscd", "whole", 0.70),
    ]
    judgement = judge(candidates, BANDS)
    assert judgement.verdict is Verdict.HIGH
    assert judgement.best is not None
    assert judgement.best.item_id == 7
    assert [r.detector for r in judgement.reasons] == ["phash"]
    assert [j.item_id for j in judgement.context] == [8]


def test_unknown_detectors_are_ignored() -> None:
    judgement = judge([Candidate("refs", 1, "ahash", "whole", 0)], BANDS)
    assert judgement.verdict is Verdict.CLEAR


def test_strongest_items_rank_reference_items_by_their_strongest_match() -> None:
    check = {
        "thresholds": {
            "sscd": {"review": 0.5, "high": 0.75, "higher_is_closer": True},
            "phash": {"review": 10, "high": 8, "higher_is_closer": False},
        },
        "matches": [
            {"reference_set": "a", "item_id": 1, "detector": "sscd", "score": 0.55},
            {"reference_set": "a", "item_id": 2, "detector": "sscd", "score": 0.30},
            {"reference_set": "a", "item_id": 2, "detector": "phash", "score": 8},
            {"reference_set": "b", "item_id": 1, "detector": "sscd", "score": 0.60},
            {"reference_set": "a", "item_id": 3, "detector": "clip", "score": 0.99},  # no lines
            {"reference_set": "a", "item_id": 4, "detector": "sscd", "score": 0.10},
        ],
    }
    ranked = strongest_items(check, 10)
    assert [(i["best"]["reference_set"], i["best"]["item_id"]) for i in ranked] == [
        ("a", 2),  # phash at its high line: strength 1
        ("b", 1),
        ("a", 1),
    ]
    assert ranked[0]["best"]["detector"] == "phash"
    assert [m["detector"] for m in ranked[0]["matches"]] == ["sscd", "phash"]
    assert ranked[0]["strength"] == 1.0
    assert len(strongest_items(check, 2)) == 2
