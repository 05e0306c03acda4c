"""Checking an asset against every active reference set.

For each configured detector: embed the asset (the whole picture, then its regions unless
the whole picture is already high: ``detectors.regions``), search each set's index, verify
the strongest candidates geometrically (``detectors.geometric``) and judge (``scoring``).
The check records what ran (specs, rule, thresholds, indexes), every candidate kept, every
verification and the verdict with its reasons; a re-check is a new row.

JSON output, schema ``provenance.check/2`` (``/1`` lacks the last three keys)::

    {"schema": "provenance.check/2", "check_id": 3, "asset_id": 42, "created_at": "...",
     "verdict": "clear" | "review" | "high",
     "best_match": {"reference_set", "item_id", "sha256", "source_path", "attribution",
                    "verdict"} | null,
     "reasons": [{"detector", "reference_set", "item_id", "region", "score", "verdict",
                  "thresholds": {"review", "high", "higher_is_closer"}}],
     "context": [{"reference_set", "item_id", "verdict"}],
     "detectors": [{"name", "status": "ran" | "unavailable", "spec" | "reason"}],
     "reference_sets": [{"name", "rights_status", "indexes": {detector: {"count",
                         "vectors_sha256"}}, "problems": [text]}],
     "thresholds": {detector: {...}},
     "matches": [{"reference_set", "item_id", "detector", "region", "score", "rank"}],
     "verification": {"status": "ran", "spec", "rule": {"min_inliers", "min_coverage",
                      "unverified_review"}} | {"status": "unavailable", "reason"}
                     | {"status": "off"},
     "verifications": [{"reference_set", "item_id", "verified", "inliers", "matches",
                        "inlier_ratio", "mirrored", "transform" (3x3, row by row, reference
                        fractions to asset fractions), "asset_polygon", "reference_polygon"
                        ([[x, y]] in fractions), "asset_coverage", "reference_coverage",
                        "note", "summary"}],
     "priority": "normal" | "low" | null}

A ``geometry`` match or reason scores the inliers of a decisive verification; a reason may
carry ``"unverified": true`` (a review-band score that counts as clear, see scoring).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy import select

from provenance import reference_sets
from provenance.db import audit, repository
from provenance.db.session import one_line, read_session, write_transaction
from provenance.db.tables import Asset, Check, Match, ReferenceItem, ReferenceSet, utcnow
from provenance.detectors.base import Detector
from provenance.detectors.geometric import FeatureCache, GeometricVerifier, LocalFeatures
from provenance.detectors.regions import AssetVectors
from provenance.errors import IndexMissing, IndexProblem, NotFound, ProvenanceError
from provenance.export.documents import CHECK_SCHEMA_V2, stored_check_json
from provenance.index.faiss_index import VectorIndex, ids_checksum, load_index
from provenance.locks import SetBusy, reference_set_lock
from provenance.media import decode_image
from provenance.record_digests import check_digest
from provenance.scoring import (
    Candidate,
    GeometryRule,
    Judgement,
    Thresholds,
    Verdict,
    Verification,
    judge,
    judge_verified,
    kept_matches,
    to_verify,
)
from provenance.workspace import Workspace

logger = logging.getLogger(__name__)

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
class CheckResult:
    """A check just recorded; as JSON, ``provenance.check/2``. ``best_match`` names the
    strongest reference item, ``reasons`` the candidates that decided the verdict,
    ``matches`` every candidate kept, ``verifications`` the geometric verification of each
    candidate verified, ``verification`` the verifier's spec and rule (or why it could not
    run), ``priority`` how soon a reviewer should look (see the module's documentation)."""

    check_id: int
    asset_id: int
    created_at: dt.datetime
    verdict: str
    best_match: dict[str, Any] | None
    reasons: list[dict[str, Any]]
    context: list[dict[str, Any]]
    detectors: list[dict[str, Any]]
    reference_sets: list[dict[str, Any]]
    thresholds: dict[str, dict[str, Any]]
    matches: list[dict[str, Any]]
    verification: dict[str, Any] = field(default_factory=dict)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    priority: str | None = None

    def to_json(self) -> dict[str, Any]:
        # The fields in their order; the time as ISO 8601 text where it stands.
        document = {"schema": CHECK_SCHEMA_V2, **dataclasses.asdict(self)}
        document["created_at"] = self.created_at.isoformat()
        return document


@dataclass
class PendingOutcome:
    """Checks of assets that were waiting for one: each check by asset id, and the
    error of each asset whose check failed."""

    checks: dict[int, CheckResult] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.check-pending/1",
            "checked": len(self.checks),
            "checks": [check.to_json() for check in self.checks.values()],
            "failed": [{"asset_id": k, "error": v} for k, v in sorted(self.failed.items())],
        }


@dataclass
class SearchContext:
    """Reference sets, loaded indexes and item details, shared by the assets of one run."""

    sets: list[dict[str, Any]] = field(default_factory=list)
    indexes: dict[tuple[str, str], VectorIndex] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    # Reference items' local features (or why they cannot be had), by item id.
    features: dict[int, LocalFeatures | str] = field(default_factory=dict)


def prepare(workspace: Workspace, detectors: dict[str, Detector], *, actor: str) -> SearchContext:
    """Load every active set's index for every detector that can run.

    An index that does not hold exactly the set's items (a ``refs add-items`` killed
    between recording items and rebuilding, or an index file lost) is rebuilt from the
    stored vectors under the set's lock before it is searched, and the check says so in
    the set's problems; one that cannot be rebuilt is not searched, and the check says why.
    """
    context = SearchContext()
    with read_session(workspace.engine) as session:
        sets = session.scalars(
            select(ReferenceSet).where(ReferenceSet.removed_at.is_(None)).order_by(ReferenceSet.id)
        ).all()
        context.sets = [{"name": s.name, "rights_status": s.rights_status} for s in sets]
    for reference_set in context.sets:
        name = reference_set["name"]
        problems = context.problems.setdefault(name, [])
        loaded, missing = _load_indexes(workspace, name, detectors, problems)
        stale = _stale(workspace, name, loaded, missing)
        if stale:
            try:
                # Not waiting: an ingest holding the lock may run for minutes.
                with reference_set_lock(workspace.root, name, wait=False):
                    built = reference_sets.rebuild_indexes(
                        workspace, name, [detectors[d] for d in stale], actor=actor
                    )
            except SetBusy:
                problems.extend(
                    f"{d}: the index is stale ({stale[d]}) while another process changes the "
                    "set; this check searched the index as it was"
                    for d in stale
                )
            except ProvenanceError as exc:
                for detector_name in stale:
                    loaded.pop(detector_name, None)
                    problems.append(
                        f"{detector_name}: the index is stale ({stale[detector_name]}) and could "
                        f"not be rebuilt, so it was not searched: {exc}"
                    )
            else:
                fresh: list[str] = []
                reloaded, _ = _load_indexes(
                    workspace, name, {d: detectors[d] for d in stale}, fresh
                )
                loaded.update(reloaded)
                problems.extend(
                    f"{d}: the index was stale ({stale[d]}); rebuilt with "
                    f"{built[d]['count']} items before this check"
                    for d in stale
                )
                problems.extend(fresh)
        for detector_name, index in loaded.items():
            context.indexes[(name, detector_name)] = index
    return context


def _load_indexes(
    workspace: Workspace, name: str, detectors: dict[str, Detector], problems: list[str]
) -> tuple[dict[str, VectorIndex], list[str]]:
    """Set ``name``'s index of each detector that loads, and the detectors that have none
    yet; why any other one cannot be used goes to ``problems``."""
    loaded: dict[str, VectorIndex] = {}
    missing: list[str] = []
    for detector_name, detector in detectors.items():
        try:
            loaded[detector_name] = load_index(
                workspace.root / "indexes" / name,
                detector_name,
                detector.spec,
                nprobe=int(workspace.settings["search_nprobe"]),
            )
        except IndexMissing:
            missing.append(detector_name)
        except IndexProblem as exc:
            problems.append(f"{detector_name}: {exc}")
    return loaded, missing


def _stale(
    workspace: Workspace, name: str, loaded: dict[str, VectorIndex], missing: list[str]
) -> dict[str, str]:
    """Each detector whose index is missing or does not hold the set's items, with why."""
    with read_session(workspace.engine) as session:
        item_ids = list(
            session.scalars(
                select(ReferenceItem.id)
                .join(ReferenceSet)
                .where(ReferenceSet.name == name, ReferenceSet.removed_at.is_(None))
            )
        )
    expected = ids_checksum(item_ids)
    stale = {detector_name: f"missing, for {len(item_ids)} items" for detector_name in missing}
    for detector_name, index in loaded.items():
        if index.count != len(item_ids) or index.ids_sha256 != expected:
            stale[detector_name] = f"{index.count} vectors for {len(item_ids)} items"
    return stale


def check_asset(
    workspace: Workspace, asset_id: int, *, actor: str, context: SearchContext | None = None
) -> CheckResult:
    """Check one asset, record the check, and return it."""
    available, unavailable = workspace.split_detectors()
    if context is None:
        context = prepare(workspace, available, actor=actor)
    with read_session(workspace.engine) as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            raise NotFound(f"no asset with id {asset_id}")
        sha256 = asset.sha256
    pixels = decode_image(
        workspace.store.read(sha256), max_pixels=workspace.fingerprint_limits.max_pixels
    ).pixels
    bands = thresholds_from(workspace.settings)
    top_k = max(1, int(workspace.settings["top_k"]))
    vectors = asset_vectors(workspace, pixels)
    candidates = _search(context, available, vectors, top_k, region=False)
    if workspace.settings["region_search"] and judge(candidates, bands).verdict is not Verdict.HIGH:
        candidates += _search(context, available, vectors, top_k, region=True)
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
        verifications = verify(
            verifier,
            context,
            pixels,
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
    return _record(
        workspace,
        asset_id,
        actor,
        judgement,
        candidates,
        context,
        (available, unavailable),
        bands,
        (verification, verifications),
    )


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
                workspace.store.read(sha256), max_pixels=workspace.fingerprint_limits.max_pixels
            ).pixels
        ),
    )


def asset_vectors(workspace: Workspace, pixels: Image.Image) -> AssetVectors:
    return AssetVectors(
        pixels,
        method=str(workspace.settings["region_method"]),
        size=int(workspace.settings["region_size"]),
    )


def _search(
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


def _record(
    workspace: Workspace,
    asset_id: int,
    actor: str,
    judgement: Judgement,
    candidates: list[Candidate],
    context: SearchContext,
    detectors: tuple[dict[str, Detector], dict[str, ProvenanceError]],
    bands: dict[str, Thresholds],
    geometry: tuple[dict[str, Any], list[Verification]],
) -> CheckResult:
    available, unavailable = detectors
    verification, verifications = geometry
    kept = kept_matches(candidates, bands)
    verifications_json = [v.to_json() for v in verifications]
    detectors_json = [
        {"name": name, "status": "ran", "spec": detector.spec.to_json()}
        for name, detector in available.items()
    ] + [
        {"name": name, "status": "unavailable", "reason": str(exc)}
        for name, exc in unavailable.items()
    ]
    sets_json = [
        {
            "name": s["name"],
            "rights_status": s["rights_status"],
            "indexes": {
                detector: {
                    "count": index.count,
                    "vectors_sha256": index.vectors_sha256,
                    "index_type": index.index_type,
                    "nprobe": index.nprobe,
                }
                for (set_name, detector), index in context.indexes.items()
                if set_name == s["name"]
            },
            "problems": context.problems.get(s["name"], []),
        }
        for s in context.sets
    ]
    reasons = [reason.to_json() for reason in judgement.reasons]
    context_json = [
        {"reference_set": j.reference_set, "item_id": j.item_id, "verdict": j.verdict.value}
        for j in judgement.context
    ]
    created_at = utcnow()
    with write_transaction(workspace.engine) as session:
        status_before = repository.asset_state(session, asset_id).status
        check = Check(
            asset_id=asset_id,
            created_at=created_at,
            actor=actor,
            verdict=judgement.verdict.value,
            detectors={"detectors": detectors_json, "verification": verification},
            thresholds={name: b.to_json() for name, b in bands.items()},
            reference_sets={"reference_sets": sets_json},
            reasons={
                "reasons": reasons,
                "context": context_json,
                "verifications": verifications_json,
                "priority": judgement.priority,
            },
        )
        session.add(check)
        session.flush()
        added = [
            Match(
                check_id=check.id,
                reference_item_id=candidate.item_id,
                detector=candidate.detector,
                region=candidate.region,
                score=candidate.score,
                rank=rank,
            )
            for rank, candidate in kept
        ]
        session.add_all(added)
        best_json = None
        if judgement.best is not None:
            item = session.get(ReferenceItem, judgement.best.item_id)
            if item is not None:
                best_json = {
                    "reference_set": judgement.best.reference_set,
                    "item_id": item.id,
                    "sha256": item.sha256,
                    "source_path": item.source_path,
                    "attribution": item.attribution,
                    "verdict": judgement.best.verdict.value,
                }
        session.flush()
        after = repository.asset_state(session, asset_id)
        audit.append_event(
            session,
            actor=actor,
            action="asset.checked",
            subject=f"asset:{asset_id}",
            payload={
                "check_id": check.id,
                "verdict": judgement.verdict.value,
                "best_item": best_json["item_id"] if best_json else None,
                "unavailable": sorted(unavailable),
                # A changed verdict reopens review (or clears the asset): the transition.
                "status_before": status_before,
                "status_after": after.status,
                "reopened": after.reopened,
                "record_sha256": check_digest(check, added),
            },
        )
        check_id = check.id
    return CheckResult(
        check_id=check_id,
        asset_id=asset_id,
        created_at=created_at,
        verdict=judgement.verdict.value,
        best_match=best_json,
        reasons=reasons,
        context=context_json,
        detectors=detectors_json,
        reference_sets=sets_json,
        thresholds={name: b.to_json() for name, b in bands.items()},
        matches=[
            {
                "reference_set": c.reference_set,
                "item_id": c.item_id,
                "detector": c.detector,
                "region": c.region,
                "score": round(c.score, 6),
                "rank": rank,
            }
            for rank, c in kept
        ],
        verification=verification,
        verifications=verifications_json,
        priority=judgement.priority,
    )


def has_reference_sets(workspace: Workspace) -> bool:
    with read_session(workspace.engine) as session:
        return repository.active_reference_set_count(session) > 0


def check(workspace: Workspace, refs: Iterable[str], *, by: str | None = None) -> list[CheckResult]:
    """Check the named assets against every active reference set; one new check each."""
    with read_session(workspace.engine) as session:
        ids = [repository.find_asset(session, ref).id for ref in refs]
    if not has_reference_sets(workspace):
        raise NotFound("there are no reference sets to check against; add one with refs add")
    actor = workspace.actor(by)
    available, _ = workspace.split_detectors()
    context = prepare(workspace, available, actor=actor)
    return [check_asset(workspace, asset_id, actor=actor, context=context) for asset_id in ids]


def check_pending(workspace: Workspace, *, by: str | None = None) -> PendingOutcome:
    """Check every asset that has no check yet; a check that fails is named with its
    error and the others go on. Nothing waits while there is no reference set."""
    outcome = PendingOutcome()
    if not has_reference_sets(workspace):
        return outcome
    with read_session(workspace.engine) as session:
        ids = repository.unchecked_asset_ids(session)
    if not ids:
        return outcome
    actor = workspace.actor(by)
    available, _ = workspace.split_detectors()
    context = prepare(workspace, available, actor=actor)
    for asset_id in ids:
        try:
            outcome.checks[asset_id] = check_asset(
                workspace, asset_id, actor=actor, context=context
            )
        except ProvenanceError as exc:
            outcome.failed[asset_id] = str(exc)
        except Exception as exc:  # the asset is recorded; say the check failed, go on
            logger.debug("check of asset %s failed", asset_id, exc_info=exc)
            outcome.failed[asset_id] = one_line(exc)
    return outcome


def asset_checks(workspace: Workspace, ref: str) -> list[dict[str, Any]]:
    """Every check of the asset, oldest first, with its matches in full."""
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        return [stored_check_json(session, check) for check in asset.checks]
