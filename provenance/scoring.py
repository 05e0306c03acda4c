"""Scores and thresholds in, an explained verdict out. Pure: no I/O, no heavy imports.

An asset is judged by its best-matching reference item. Each detector's strongest signal for
that item (the best region for SSCD and CLIP, the smallest Hamming distance for pHash) is
compared with its thresholds; the item is ``high`` when any signal reaches a high threshold,
``review`` when any falls in a review band, else ``clear``. Other items that reach a band are
listed as context, not counted as separate hits.

Geometric verification (local features and a robust transform, ``Verification``) adds two
things. A verified match of enough area is a ``geometry`` candidate, high by itself. And when
verification ran, an embedding score in the review band of an item that did not verify
stays ``review`` only at or over that detector's line for unsupported scores; under it the
reason is kept, marked unverified, and counts as ``clear``. Items are ranked by verdict, then
verified before unverified, then by strength; a verdict without geometric support (other
than a high one) is ``low`` priority for review.
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
        """How far into its bands a score reaches: 0 at the review line, 1 at the high line.
        Bands of one line (geometry's inlier count) give 1 past it: among verified items
        the embeddings' and hashes' strengths rank better than inlier counts, since real
        variants of a picture (recoloured sprites, re-tiled textures) verify with as many
        points as copies do (benchmarks/quality.py: recall at precision 0.99 fell from 0.76
        to 0.49 when strength grew with the inliers)."""
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
    # The frame of a movie or sequence the hit was found in; None for a still.
    frame: int | None = None


Point = tuple[float, float]


@dataclass(frozen=True)
class Verification:
    """Local features of the asset matched with a reference item's, and the robust
    transform between them. Polygons are in fractions of each picture's width and height:
    ``asset_polygon`` is where the reference lies in the asset, ``reference_polygon`` the
    part of the reference the asset shows; coverages are their areas (0-1). ``transform``
    maps reference fractions to asset fractions (a 3×3 homography, row by row)."""

    reference_set: str
    item_id: int
    verified: bool
    inliers: int = 0
    matches: int = 0
    mirrored: bool = False
    transform: tuple[float, ...] = ()
    asset_polygon: tuple[Point, ...] = ()
    reference_polygon: tuple[Point, ...] = ()
    asset_coverage: float = 0.0
    reference_coverage: float = 0.0
    note: str = ""
    frame: int | None = None  # the frame verified, for a movie or sequence

    @classmethod
    def failed(
        cls, reference_set: str, item_id: int, note: str, *, matches: int = 0
    ) -> Verification:
        return cls(reference_set, item_id, False, matches=matches, note=note)

    @property
    def coverage(self) -> float:
        """The larger of the two coverages: a crop covers the asset, a paste the reference."""
        return max(self.asset_coverage, self.reference_coverage)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "reference_set": self.reference_set,
            "item_id": self.item_id,
            "verified": self.verified,
            "inliers": self.inliers,
            "matches": self.matches,
            "inlier_ratio": round(self.inliers / self.matches, 4) if self.matches else 0.0,
            "mirrored": self.mirrored,
            "transform": list(self.transform),
            "asset_polygon": [list(p) for p in self.asset_polygon],
            "reference_polygon": [list(p) for p in self.reference_polygon],
            "asset_coverage": self.asset_coverage,
            "reference_coverage": self.reference_coverage,
            "note": self.note,
        }
        if self.frame is not None:
            document["frame"] = self.frame
        document["summary"] = verification_words(document)
        return document


def verification_words(v: Mapping[str, Any]) -> str:
    """A verification (its JSON) in words, for a reviewer: "the reference appears,
    mirrored, in the upper-right part: 62 matched points, covering 31 % of the asset and
    100 % of the reference"."""
    if not v["verified"]:
        return f"not verified: {v['note']}" if v.get("note") else "not verified"
    mirrored = ", mirrored," if v["mirrored"] else ""
    frame = f" of frame {v['frame']}" if v.get("frame") is not None else ""
    return (
        f"the reference appears{mirrored} {_where(v['asset_polygon'])}{frame}: {v['inliers']} "
        f"matched points, covering {int(v['asset_coverage'] * 100)} % of the asset and "
        f"{int(v['reference_coverage'] * 100)} % of the reference"
    )


def _where(polygon: Iterable[Iterable[float]]) -> str:
    points = [tuple(p) for p in polygon]
    if not points:
        return "in the asset"
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if max(xs) - min(xs) > 0.8 and max(ys) - min(ys) > 0.8:
        return "across the whole asset"
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    vertical = "upper" if cy < 0.4 else "lower" if cy > 0.6 else ""
    horizontal = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    if vertical and horizontal:
        return f"in the {vertical}-{horizontal} part"
    if vertical or horizontal:
        return f"in the {vertical or horizontal} part"
    return "in the centre"


@dataclass(frozen=True)
class GeometryRule:
    """How verification weighs in: a verified match with at least ``min_inliers`` inliers
    covering at least ``min_coverage`` of the asset or of the reference is high; a review
    band score of an item that did not verify stays review only at or over its detector's
    line in ``unverified_review``."""

    min_inliers: int
    min_coverage: float
    unverified_review: Mapping[str, float]

    @property
    def thresholds(self) -> Thresholds:
        """The bands of the ``geometry`` candidates (the score is the inlier count)."""
        return Thresholds(self.min_inliers, self.min_inliers)

    def decisive(self, verification: Verification) -> bool:
        return (
            verification.verified
            and verification.inliers >= self.min_inliers
            and verification.coverage >= self.min_coverage
        )

    def candidate(self, verification: Verification) -> Candidate:
        return Candidate(
            verification.reference_set,
            verification.item_id,
            "geometry",
            "mirrored" if verification.mirrored else "matched",
            float(verification.inliers),
            verification.frame,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "min_inliers": self.min_inliers,
            "min_coverage": self.min_coverage,
            "unverified_review": dict(self.unverified_review),
        }


@dataclass(frozen=True)
class Reason:
    """Why an item got its verdict: one detector's strongest signal against its bands.
    ``unverified``: a review-band score set to clear because the item did not verify."""

    detector: str
    reference_set: str
    item_id: int
    region: str
    score: float
    verdict: Verdict
    thresholds: Thresholds
    unverified: bool = False
    frame: int | None = None

    def to_json(self) -> dict[str, Any]:
        document = {
            "detector": self.detector,
            "reference_set": self.reference_set,
            "item_id": self.item_id,
            "region": self.region,
            "score": round(self.score, 6),
            "verdict": self.verdict.value,
            "thresholds": self.thresholds.to_json(),
        }
        if self.unverified:
            document["unverified"] = True
        if self.frame is not None:
            document["frame"] = self.frame
        return document


@dataclass(frozen=True)
class ItemJudgement:
    reference_set: str
    item_id: int
    verdict: Verdict
    strength: float
    reasons: tuple[Reason, ...]
    verified: bool = False


@dataclass
class Judgement:
    """The verdict of one check, with the evidence for it."""

    verdict: Verdict
    best: ItemJudgement | None
    context: list[ItemJudgement] = field(default_factory=list)
    # None when verification did not run; else "normal" or "low" (see the module).
    priority: str | None = None

    @property
    def reasons(self) -> tuple[Reason, ...]:
        if self.best is None or self.verdict is Verdict.CLEAR:
            return ()
        fired = [r for r in self.best.reasons if r.verdict is not Verdict.CLEAR]
        # Strongest first: the verdict, then how far past the review line the score is.
        fired.sort(key=lambda r: (r.verdict.rank, r.thresholds.strength(r.score)), reverse=True)
        return tuple(fired)


def judge(
    candidates: Iterable[Candidate],
    thresholds: Mapping[str, Thresholds],
    *,
    verified: Iterable[tuple[str, int]] | None = None,
    rule: GeometryRule | None = None,
) -> Judgement:
    """The verdict for one asset from every detector's candidates over every reference set.

    ``verified``: the (set, item) pairs that verified geometrically, when verification ran
    (None: it did not, and no score is weighed by it); ``rule`` gives the lines for
    unsupported review-band scores and the bands of ``geometry`` candidates."""
    if rule is not None:
        thresholds = {**thresholds, "geometry": rule.thresholds}
    supported = None if verified is None else set(verified)
    strongest: dict[tuple[str, int], dict[str, Candidate]] = {}
    for candidate in candidates:
        bands = thresholds.get(candidate.detector)
        if bands is None:
            continue
        per_detector = strongest.setdefault((candidate.reference_set, candidate.item_id), {})
        current = per_detector.get(candidate.detector)
        if current is None or bands.closer(candidate.score, current.score):
            per_detector[candidate.detector] = candidate
    lines = rule.unverified_review if rule is not None else {}
    judgements = [
        _judge_item(key, per_detector, thresholds, supported, lines)
        for key, per_detector in strongest.items()
    ]
    priority = None if supported is None else "low"
    if not judgements:
        return Judgement(Verdict.CLEAR, None, priority=priority)
    judgements.sort(key=lambda j: (j.verdict.rank, j.verified, j.strength), reverse=True)
    best, others = judgements[0], judgements[1:]
    context = [j for j in others if j.verdict is not Verdict.CLEAR]
    if supported is not None and (best.verdict is Verdict.HIGH or best.verified):
        priority = "normal"
    return Judgement(best.verdict, best, context, priority)


def _judge_item(
    key: tuple[str, int],
    per_detector: dict[str, Candidate],
    thresholds: Mapping[str, Thresholds],
    supported: set[tuple[str, int]] | None,
    lines: Mapping[str, float],
) -> ItemJudgement:
    verified = supported is not None and key in supported
    reasons = []
    for detector, candidate in sorted(per_detector.items()):
        bands = thresholds[detector]
        verdict = bands.verdict(candidate.score)
        line = lines.get(detector)
        unverified = (
            supported is not None
            and not verified
            and verdict is Verdict.REVIEW
            and line is not None
            and Thresholds(line, bands.high, bands.higher_is_closer).verdict(candidate.score)
            is Verdict.CLEAR
        )
        reasons.append(
            Reason(
                detector,
                candidate.reference_set,
                candidate.item_id,
                candidate.region,
                candidate.score,
                Verdict.CLEAR if unverified else verdict,
                bands,
                unverified,
                candidate.frame,
            )
        )
    verdict = max((r.verdict for r in reasons), key=lambda v: v.rank)
    strength = max(r.thresholds.strength(r.score) for r in reasons)
    return ItemJudgement(key[0], key[1], verdict, strength, tuple(reasons), verified)


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


def to_verify(
    candidates: list[Candidate],
    bands: dict[str, Thresholds],
    *,
    top: int,
    limit: int,
    floor: float = 0.0,
) -> list[tuple[str, int]]:
    """The reference items to verify, strongest first: every one a detector puts at review or
    above, then the ``top`` strongest by SSCD that score ``floor`` or more; at most
    ``limit``."""
    flagged: dict[tuple[str, int], float] = {}
    by_sscd: dict[tuple[str, int], float] = {}
    for c in candidates:
        key = (c.reference_set, c.item_id)
        band = bands.get(c.detector)
        if band is not None and band.verdict(c.score) is not Verdict.CLEAR:
            flagged[key] = max(flagged.get(key, float("-inf")), band.strength(c.score))
        if c.detector == "sscd":
            by_sscd[key] = max(by_sscd.get(key, float("-inf")), c.score)
    chosen = sorted(flagged, key=lambda k: flagged[k], reverse=True)
    extra = [
        k
        for k in sorted(by_sscd, key=lambda k: by_sscd[k], reverse=True)
        if k not in flagged and by_sscd[k] >= floor
    ]
    return (chosen + extra[:top])[:limit]


def judge_verified(
    candidates: list[Candidate],
    bands: dict[str, Thresholds],
    verifications: list[Verification],
    rule: GeometryRule,
) -> tuple[Judgement, list[Candidate]]:
    """The verdict with verification weighed in, and the candidates with a ``geometry`` one
    for each decisive verification."""
    candidates = candidates + [rule.candidate(v) for v in verifications if rule.decisive(v)]
    verified = [(v.reference_set, v.item_id) for v in verifications if v.verified]
    return judge(candidates, bands, verified=verified, rule=rule), candidates


def kept_matches(
    candidates: list[Candidate], bands: dict[str, Thresholds]
) -> list[tuple[int, Candidate]]:
    """Per set, detector and item, the strongest region; ranked per set and detector."""
    best: dict[tuple[str, str, int], Candidate] = {}
    for candidate in candidates:
        key = (candidate.reference_set, candidate.detector, candidate.item_id)
        current = best.get(key)
        if current is None or bands[candidate.detector].closer(candidate.score, current.score):
            best[key] = candidate
    ranked: list[tuple[int, Candidate]] = []
    groups: dict[tuple[str, str], list[Candidate]] = {}
    for candidate in best.values():
        groups.setdefault((candidate.reference_set, candidate.detector), []).append(candidate)
    for (_, detector), group in sorted(groups.items()):
        group.sort(key=lambda c: c.score, reverse=bands[detector].higher_is_closer)
        ranked.extend((rank, c) for rank, c in enumerate(group, start=1))
    return ranked


def score_words(detector: str, score: float, higher_is_closer: bool = True) -> str:
    """A score in its detector's own unit, the one wording the command line, the reviewer
    pages and the evidence packs share: matched points (geometric verification), a cosine
    (the embeddings), or bits that differ (pHash, the distance where lower is closer)."""
    if detector == "geometry":
        return f"{int(score)} matched points"
    return f"cosine {score:.3f}" if higher_is_closer else f"{int(score)} bits differ"


def nearest_words(check: Mapping[str, Any]) -> str:
    """What a clear check found nearest (a stored check's JSON: ``thresholds`` and
    ``matches``): the reference and its score beside the detector's review line, so that
    "clear" says how far from a flag the asset was."""
    nearest: tuple[float, dict[str, Any], Thresholds] | None = None
    for match in check.get("matches", []):
        bands = check["thresholds"].get(match["detector"])
        if bands is None or match["detector"] == "geometry":
            continue
        lines = Thresholds(**bands)
        strength = lines.strength(match["score"])
        if nearest is None or strength > nearest[0]:
            nearest = (strength, match, lines)
    if nearest is None:
        return "no reference came within the detectors' reach"
    _, match, lines = nearest
    score = score_words(match["detector"], match["score"], lines.higher_is_closer)
    line = score_words(match["detector"], lines.review, lines.higher_is_closer)
    return (
        f"nearest {match['reference_set']}#{match['item_id']} by {match['detector']}: "
        f"{score} (review line {line})"
    )


def measure(match: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str:
    """A stored match's (or frame range's) score in words, its direction read from the
    check's ``thresholds``."""
    bands = thresholds.get(match["detector"], {})
    return score_words(match["detector"], match["score"], bands.get("higher_is_closer", True))
