"""What one check finds, before anything is recorded: the asset's candidates from every
set's index (the whole picture, then its regions unless it is already high), the geometric
verification of the strongest, and the verdict. Runs in the recording process or in a check
worker (``checking.workers``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from provenance.checking.context import SearchContext
from provenance.db.session import read_session
from provenance.db.tables import Asset, ReferenceItem
from provenance.detectors.base import Detector
from provenance.detectors.geometric import FeatureCache, GeometricVerifier, LocalFeatures
from provenance.detectors.regions import AssetVectors
from provenance.errors import NotFound, ProvenanceError
from provenance.media import decode_image
from provenance.media.moving import frame_ranges, manifest_frames, sample_movie, sample_numbers
from provenance.scoring import (
    Candidate,
    GeometryRule,
    Judgement,
    Thresholds,
    Verdict,
    Verification,
    judge,
    judge_verified,
    to_verify,
)
from provenance.workspace import Workspace

# Detectors whose vectors describe content that can sit in part of a picture.
REGION_DETECTORS = frozenset({"sscd", "clip"})


def thresholds_from(settings: Any) -> dict[str, Thresholds]:
    return {
        "clip": Thresholds(settings["clip_review"], settings["clip_high"]),
        "sscd": Thresholds(settings["sscd_review"], settings["sscd_high"]),
        "phash": Thresholds(settings["phash_review"], settings["phash_high"], False),
    }


def geometry_rule(settings: Any) -> GeometryRule:
    return GeometryRule(
        min_inliers=int(settings["verify_min_inliers"]),
        min_coverage=float(settings["verify_min_coverage"]),
        unverified_review={"sscd": float(settings["sscd_review_unverified"])},
    )


@dataclass
class Findings:
    """What a check of one asset found: the verdict, every candidate (with a ``geometry``
    one per decisive verification), the bands judged by, the verifier's spec and rule (or
    why it did not run) with each verification, and the facts of each index searched, per
    set and detector."""

    judgement: Judgement
    candidates: list[Candidate]
    bands: dict[str, Thresholds]
    verification: dict[str, Any]
    verifications: list[Verification]
    indexes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    # A movie or frame sequence: the frames looked at and the ranges that matched.
    frames: dict[str, Any] | None = None


def find(
    workspace: Workspace, context: SearchContext, available: dict[str, Detector], asset_id: int
) -> Findings:
    """Search, verify and judge asset ``asset_id`` with ``available`` detectors against the
    indexes of ``context``; nothing is written but reference features to their cache."""
    with read_session(workspace.engine) as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            raise NotFound(f"no asset with id {asset_id}")
        sha256 = asset.sha256
        media = dict(asset.media)
    if media.get("kind") in MOVING:
        return _find_over_time(workspace, context, available, sha256, media)
    pixels = decode_image(
        workspace.store.read(sha256),
        max_pixels=workspace.fingerprint_limits.max_pixels,
        colour=workspace.fingerprint_limits.colour,
    ).pixels
    bands = thresholds_from(workspace.settings)
    candidates = _searched(workspace, context, available, pixels, bands)

    def verified(
        verifier: GeometricVerifier,
        keys: list[tuple[str, int]],
        features: Callable[[int], LocalFeatures],
    ) -> list[Verification]:
        return verify(verifier, context, pixels, keys, features)

    return _judged(workspace, context, candidates, bands, verified)


# The geometric verification of ``keys`` with ``verifier``, reference features fetched by
# the callable given (item id -> LocalFeatures).
Verifying = Callable[
    [GeometricVerifier, list[tuple[str, int]], Callable[[int], LocalFeatures]], list[Verification]
]


def _searched(
    workspace: Workspace,
    context: SearchContext,
    available: dict[str, Detector],
    pixels: Image.Image,
    bands: dict[str, Thresholds],
) -> list[Candidate]:
    """One picture's candidates: the whole picture, then its regions unless already high."""
    top_k = max(1, int(workspace.settings["top_k"]))
    vectors = asset_vectors(workspace, pixels)
    candidates = search(context, available, vectors, top_k, region=False)
    if workspace.settings["region_search"] and judge(candidates, bands).verdict is not Verdict.HIGH:
        candidates += search(context, available, vectors, top_k, region=True)
    return candidates


def _judged(
    workspace: Workspace,
    context: SearchContext,
    candidates: list[Candidate],
    bands: dict[str, Thresholds],
    verifying: Verifying,
    frames: Callable[[Judgement, list[Candidate], dict[str, Thresholds]], Any] | None = None,
) -> Findings:
    """The strongest candidates verified (by ``verifying``, when a verifier is available)
    and the verdict judged; ``frames`` adds a movie's frame ranges to the findings."""
    verifier = workspace.verifier()
    verification: dict[str, Any] = {"status": "off"}
    verifications: list[Verification] = []
    if isinstance(verifier, GeometricVerifier):
        rule = geometry_rule(workspace.settings)
        keys = to_verify(
            candidates,
            bands,
            top=int(workspace.settings["verify_top"]),
            limit=int(workspace.settings["verify_max"]),
            floor=float(workspace.settings["verify_floor"]),
        )
        cache = FeatureCache(workspace.features_folder, verifier.features_spec)
        verifications = verifying(
            verifier,
            keys,
            lambda item_id: _reference_features(workspace, verifier, cache, item_id),
        )
        judgement, candidates = judge_verified(candidates, bands, verifications, rule)
        verification = {"status": "ran", "spec": verifier.spec, "rule": rule.to_json()}
        bands = {**bands, "geometry": rule.thresholds}  # recorded with the others
    else:
        judgement = judge(candidates, bands)
        if verifier is not None:
            verification = {"status": "unavailable", "reason": str(verifier)}
    return Findings(
        judgement,
        candidates,
        bands,
        verification,
        verifications,
        index_facts(context),
        {name: list(problems) for name, problems in context.problems.items()},
        frames=frames(judgement, candidates, bands) if frames is not None else None,
    )


# The kinds of asset checked frame by frame (``media.moving``).
MOVING = ("movie", "sequence")


def _find_over_time(
    workspace: Workspace,
    context: SearchContext,
    available: dict[str, Detector],
    sha256: str,
    media: dict[str, Any],
) -> Findings:
    """A movie or frame sequence checked frame by frame: each sampled frame searched like a
    still, the strongest candidates verified on the frame where each scored best, the
    verdict judged over every frame, and the runs of sampled frames that match each flagged
    item recorded as frame ranges."""
    bands = thresholds_from(workspace.settings)
    candidates: list[Candidate] = []
    sampled: list[int] = []
    cuts: list[int] = []
    for number, pixels in _sampled_frames(workspace, sha256, media, cuts=cuts):
        sampled.append(number)
        found = _searched(workspace, context, available, pixels, bands)
        candidates += [dataclasses.replace(c, frame=number) for c in found]

    def verified(
        verifier: GeometricVerifier,
        keys: list[tuple[str, int]],
        features: Callable[[int], LocalFeatures],
    ) -> list[Verification]:
        best_frame = _best_frames(candidates, bands, keys)
        found: list[Verification] = []
        wanted = sorted(set(best_frame.values()))
        for number, pixels in _sampled_frames(workspace, sha256, media, only=wanted):
            on_frame = [key for key in keys if best_frame[key] == number]
            found += [
                dataclasses.replace(v, frame=number)
                for v in verify(verifier, context, pixels, on_frame, features)
            ]
        return found

    def frames(
        judgement: Judgement, judged: list[Candidate], judged_bands: dict[str, Thresholds]
    ) -> dict[str, Any]:
        return _frames_json(media, sampled, cuts, judgement, judged, judged_bands)

    return _judged(workspace, context, candidates, bands, verified, frames)


def _best_frames(
    candidates: list[Candidate], bands: dict[str, Thresholds], keys: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """For each item to verify, the frame where it scored strongest (past its detector's
    review line by the most, else by SSCD cosine)."""
    best: dict[tuple[str, int], tuple[float, int]] = {}
    wanted = set(keys)
    for c in candidates:
        key = (c.reference_set, c.item_id)
        band = bands.get(c.detector)
        if key not in wanted or band is None or c.frame is None:
            continue
        strength = band.strength(c.score)
        if key not in best or strength > best[key][0]:
            best[key] = (strength, c.frame)
    return {key: frame for key, (_, frame) in best.items()}


def _frames_json(
    media: dict[str, Any],
    sampled: list[int],
    cuts: list[int],
    judgement: Judgement,
    candidates: list[Candidate],
    bands: dict[str, Thresholds],
) -> dict[str, Any]:
    """The frames looked at and, for each item the verdict flags, the runs of sampled
    frames where any detector puts it at review or above, with each run's strongest hit."""
    flagged = ([judgement.best] if judgement.best else []) + judgement.context
    ranges = []
    for item in flagged:
        if item.verdict is Verdict.CLEAR:
            continue
        hits: dict[int, Candidate] = {}
        for c in candidates:
            band = bands.get(c.detector)
            if (
                (c.reference_set, c.item_id) != (item.reference_set, item.item_id)
                or c.frame is None
                or band is None
                or band.verdict(c.score) is Verdict.CLEAR
            ):
                continue
            current = hits.get(c.frame)
            if current is None or band.strength(c.score) > bands[current.detector].strength(
                current.score
            ):
                hits[c.frame] = c

        def strongest_of(run: list[Candidate]) -> Candidate:
            return max(run, key=lambda hit: bands[hit.detector].strength(hit.score))

        last_frame = int(media["frames"]) - 1 if media["kind"] == "movie" else None
        for first, last, strongest in frame_ranges(
            sampled, hits, strongest_of, cuts=frozenset(cuts), last_frame=last_frame
        ):
            ranges.append(
                {
                    "reference_set": item.reference_set,
                    "item_id": item.item_id,
                    "verdict": item.verdict.value,
                    "first": first,
                    "last": last,
                    "strongest_frame": strongest.frame,
                    "detector": strongest.detector,
                    "score": round(strongest.score, 6),
                }
            )
    return {
        "kind": media["kind"],
        "frame_rate": media.get("frame_rate"),
        "sampled": sampled,
        "shot_starts": cuts,
        "ranges": ranges,
    }


def _sampled_frames(
    workspace: Workspace,
    sha256: str,
    media: dict[str, Any],
    only: list[int] | None = None,
    cuts: list[int] | None = None,
) -> Iterator[tuple[int, Image.Image]]:
    """The frames of a stored movie or sequence that a check looks at (``only``: just
    these; ``cuts`` gets the sampled frames that start a shot), decoded one at a time."""
    limits = workspace.fingerprint_limits
    rate = _frames_per_second(media.get("frame_rate"), workspace)
    step = max(1, round(rate * float(workspace.settings["frame_step_seconds"])))
    limit = int(workspace.settings["max_sampled_frames"])
    if media["kind"] == "movie":
        if only is not None and not only:
            return
        wanted = set(only) if only is not None else None
        last = max(wanted) if wanted else None
        for number, pixels in sample_movie(
            workspace.store.path_for(sha256),
            step=1 if wanted else step,
            limit=len(wanted) if wanted else limit,
            expected_frames=None if wanted else media.get("frames"),
            keep=wanted,
            cuts=cuts,
        ):
            yield number, pixels
            if last is not None and number >= last:
                return
        return
    frames = manifest_frames(workspace.store.read(sha256))
    numbers = only if only is not None else sample_numbers(sorted(frames), step, limit)
    for number in numbers:
        yield (
            number,
            decode_image(
                workspace.store.read(frames[number]),
                max_pixels=limits.max_pixels,
                colour=limits.colour,
            ).pixels,
        )


def _frames_per_second(text: Any, workspace: Workspace) -> float:
    try:
        numerator, _, denominator = str(text).partition("/")
        return float(numerator) / float(denominator or 1)
    except (TypeError, ValueError, ZeroDivisionError):
        return float(workspace.settings["sequence_frame_rate"])


def index_facts(context: SearchContext) -> dict[str, dict[str, dict[str, Any]]]:
    """Per set and detector, the index searched: its size, vectors' digest, type, nprobe."""
    facts: dict[str, dict[str, dict[str, Any]]] = {}
    for (set_name, detector), index in context.indexes.items():
        facts.setdefault(set_name, {})[detector] = {
            "count": index.count,
            "vectors_sha256": index.vectors_sha256,
            "index_type": index.index_type,
            "nprobe": index.nprobe,
        }
    return facts


def verify(
    verifier: GeometricVerifier,
    context: SearchContext,
    pixels: Image.Image,
    keys: list[tuple[str, int]],
    reference_features: Callable[[int], LocalFeatures],
) -> list[Verification]:
    """Each item of ``keys`` verified against the asset's ``pixels``; a reference's features
    (``reference_features(item_id)``) are fetched once per run (``context``)."""
    if not keys:
        return []
    asset = verifier.asset_features(pixels)
    found = []
    for reference_set, item_id in keys:
        features = context.features.get(item_id)
        if features is None:
            try:
                features = reference_features(item_id)
            except ProvenanceError as exc:
                features = f"the reference's stored copy cannot be read: {exc}"
            context.features[item_id] = features
        if isinstance(features, str):
            found.append(Verification.failed(reference_set, item_id, features))
        else:
            found.append(verifier.verify(asset, features, reference_set, item_id))
    return found


def _reference_features(
    workspace: Workspace, verifier: GeometricVerifier, cache: FeatureCache, item_id: int
) -> LocalFeatures:
    """A reference item's features, from the cache or its stored copy."""
    with read_session(workspace.engine) as session:
        item = session.get(ReferenceItem, item_id)
        if item is None:
            raise NotFound(f"no reference item with id {item_id}")
        sha256 = item.sha256
    return cache.features(
        sha256,
        lambda: verifier.features(
            decode_image(
                workspace.store.read(sha256),
                max_pixels=workspace.fingerprint_limits.max_pixels,
                colour=workspace.fingerprint_limits.colour,
            ).pixels
        ),
    )


def asset_vectors(workspace: Workspace, pixels: Image.Image) -> AssetVectors:
    return AssetVectors(
        pixels,
        method=str(workspace.settings["region_method"]),
        size=int(workspace.settings["region_size"]),
    )


def search(
    context: SearchContext,
    detectors: dict[str, Detector],
    vectors: AssetVectors,
    top_k: int,
    *,
    region: bool,
) -> list[Candidate]:
    """Candidates from every set's index for the whole picture, or for its regions."""
    found: list[Candidate] = []
    for detector_name, detector in detectors.items():
        if region and detector_name not in REGION_DETECTORS:
            continue
        indexes = [
            (reference_set["name"], index)
            for reference_set in context.sets
            if (index := context.indexes.get((reference_set["name"], detector_name)))
            and index.count
        ]
        if not indexes:
            continue  # nothing to search: spare the embedding
        if region:
            names, queries = vectors.region_vectors(detector_name, detector)
        else:
            names, queries = ["whole"], vectors.whole_vectors(detector_name, detector)
        if not names:
            continue
        for set_name, index in indexes:
            scores, ids = index.search(queries, top_k)
            for row, region_name in enumerate(names):
                for score, item_id in zip(scores[row], ids[row], strict=True):
                    if item_id >= 0:
                        found.append(
                            Candidate(
                                set_name,
                                int(item_id),
                                detector_name,
                                region_name,
                                float(score),
                            )
                        )
    return found
