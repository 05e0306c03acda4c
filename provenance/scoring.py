"""Scores and thresholds in, an explained verdict out. Pure: no I/O, no heavy imports.

An asset is judged by its best-matching reference item. Each detector's strongest signal for
that item (the best region for SSCD and CLIP, the smallest Hamming distance for pHash) is
compared with its thresholds; the item is ``high`` when any signal reaches a high threshold,
``review`` when any falls in a review band, else ``clear``. Other items that reach a band are
listed as context, not counted as separate hits.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.StrEnum):
    CLEAR = "clear"
    REVIEW = "review"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {Verdict.CLEAR: 0, Verdict.REVIEW: 1, Verdict.HIGH: 2}[self]


@dataclass(frozen=True)
class Thresholds:
    """A detector's bands. For similarities (higher is closer) a score at or over ``high``
    is high and at or over ``review`` is review; for distances (lower is closer) at or
    under."""

    review: float
    high: float
    higher_is_closer: bool = True

    def verdict(self, score: float) -> Verdict:
        if self.higher_is_closer:
            if score >= self.high:
                return Verdict.HIGH
            return Verdict.REVIEW if score >= self.review else Verdict.CLEAR
        if score <= self.high:
            return Verdict.HIGH
        return Verdict.REVIEW if score <= self.review else Verdict.CLEAR

    def closer(self, score: float, than: float) -> bool:
        """Whether ``score`` is a closer match than ``than`` under this detector's metric."""
        return score > than if self.higher_is_closer else score < than

    def strength(self, score: float) -> float:
        """How far into its bands a score reaches: 0 at the review line, 1 at the high line."""
        span = self.high - self.review
        if span == 0:
            return 1.0 if self.verdict(score) is not Verdict.CLEAR else 0.0
        return (score - self.review) / span

    def to_json(self) -> dict[str, Any]:
        return {"review": self.review, "high": self.high, "higher_is_closer": self.higher_is_closer}


@dataclass(frozen=True)
class Candidate:
    """One search hit: a reference item found by a detector in a region of the asset."""

    reference_set: str
    item_id: int
    detector: str
    region: str
    score: float


@dataclass(frozen=True)
class Reason:
    """Why an item got its verdict: one detector's strongest signal against its bands."""

    detector: str
    reference_set: str
    item_id: int
    region: str
    score: float
    verdict: Verdict
    thresholds: Thresholds

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "reference_set": self.reference_set,
            "item_id": self.item_id,
            "region": self.region,
            "score": round(self.score, 6),
            "verdict": self.verdict.value,
            "thresholds": self.thresholds.to_json(),
        }


@dataclass(frozen=True)
class ItemJudgement:
    reference_set: str
    item_id: int
    verdict: Verdict
    strength: float
    reasons: tuple[Reason, ...]


@dataclass
class Judgement:
    """The verdict of one check, with the evidence for it."""

    verdict: Verdict
    best: ItemJudgement | None
    context: list[ItemJudgement] = field(default_factory=list)

    @property
    def reasons(self) -> tuple[Reason, ...]:
        if self.best is None or self.verdict is Verdict.CLEAR:
            return ()
        fired = [r for r in self.best.reasons if r.verdict is not Verdict.CLEAR]
        # Strongest first: the verdict, then how far past the review line the score is.
        fired.sort(key=lambda r: (r.verdict.rank, r.thresholds.strength(r.score)), reverse=True)
        return tuple(fired)


def judge(candidates: Iterable[Candidate], thresholds: Mapping[str, Thresholds]) -> Judgement:
    """The verdict for one asset from every detector's candidates over every reference set."""
    strongest: dict[tuple[str, int], dict[str, Candidate]] = {}
    for candidate in candidates:
        bands = thresholds.get(candidate.detector)
        if bands is None:
            continue
        per_detector = strongest.setdefault((candidate.reference_set, candidate.item_id), {})
        current = per_detector.get(candidate.detector)
        if current is None or bands.closer(candidate.score, current.score):
            per_detector[candidate.detector] = candidate
    judgements = [
        _judge_item(key, per_detector, thresholds) for key, per_detector in strongest.items()
    ]
    if not judgements:
        return Judgement(Verdict.CLEAR, None)
    judgements.sort(key=lambda j: (j.verdict.rank, j.strength), reverse=True)
    best, others = judgements[0], judgements[1:]
    context = [j for j in others if j.verdict is not Verdict.CLEAR]
    return Judgement(best.verdict, best, context)


def _judge_item(
    key: tuple[str, int], per_detector: dict[str, Candidate], thresholds: Mapping[str, Thresholds]
) -> ItemJudgement:
    reasons = []
    for detector, candidate in sorted(per_detector.items()):
        bands = thresholds[detector]
        reasons.append(
            Reason(
                detector,
                candidate.reference_set,
                candidate.item_id,
                candidate.region,
                candidate.score,
                bands.verdict(candidate.score),
                bands,
            )
        )
    verdict = max((r.verdict for r in reasons), key=lambda v: v.rank)
    strength = max(r.thresholds.strength(r.score) for r in reasons)
    return ItemJudgement(key[0], key[1], verdict, strength, tuple(reasons))


def strongest_items(check: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """The reference items a stored check (its JSON: ``thresholds`` and ``matches``) found
    within some detector's review line, strongest first, at most ``limit``. Each is
    ``{"best": the item's strongest match, "strength": its strength, "matches": every match
    of the item, in the check's order}``: what the asset page sets side by side and what an
    evidence pack pictures."""
    thresholds = check["thresholds"]
    items: dict[tuple[str, int], dict[str, Any]] = {}
    for match in check["matches"]:
        key = (match["reference_set"], match["item_id"])
        entry = items.setdefault(key, {"best": None, "strength": float("-inf"), "matches": []})
        entry["matches"].append(match)
        bands = thresholds.get(match["detector"])
        if bands is None:
            continue
        strength = Thresholds(**bands).strength(match["score"])
        if strength > entry["strength"]:
            entry["best"], entry["strength"] = match, strength
    ranked = sorted(
        (entry for entry in items.values() if entry["strength"] >= 0),
        key=lambda entry: entry["strength"],
        reverse=True,
    )
    return ranked[:limit]
