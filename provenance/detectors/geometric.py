"""Geometric verification: is a reference really in the asset, and where.

Local features (SIFT as RootSIFT, OpenCV) are taken from both pictures at a working size of
at most ``MAX_SIDE`` pixels on the longer side. Tentative matches keep a pair only when it
passes Lowe's ratio test and each descriptor is the other's nearest neighbour (mutual
check). A homography from the reference to the asset is fitted with OpenCV's USAC MAGSAC
and kept only when it is plausible: the reference's outline projects to a convex quad of
sane area and without extreme stretching. The asset is also matched mirrored, since SIFT
descriptors do not survive a horizontal flip. The mirrored asset's features are the forward
ones reflected, not made again: a flip moves a keypoint to the other side and reflects its
descriptor, whose 4 x 4 cells and 8 orientation bins are laid out symmetrically
(``MIRROR_ORDER``). A reflected descriptor samples its patch up to a pixel off, so a
reflected match that finds tentative matches but does not verify is tried once more with
features made from the flipped picture: a picture with few features needs every match.

A verification names the inliers, their share of the tentative matches, the transform
(reference fractions to asset fractions), and the matched polygon on both pictures: on the
asset, where the reference's outline lands (clipped to the asset); on the reference, where
the asset's frame lands (clipped to the reference). Coordinates are fractions of each
picture's width and height, so they outline any size of thumbnail.

OpenCV is imported on first use, so that importing provenance stays light.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from provenance.atomic import write_atomically
from provenance.errors import DetectorUnavailable
from provenance.scoring import Verification

INSTALL_HINT = "pip install opencv-python-headless"
FEATURES_FORMAT = "provenance.local-features/1"
MAX_SIDE = 512
# Smaller pictures are enlarged to this longer side first: flat art and small sprites give
# SIFT too few blobs at their own size (150 corpus references with benchmarks/quality.py's
# edits: crops verified 68 % of the time at their own size and 71 % enlarged, combined edits
# 51 % and 59 %, composites 71 % and 75 %; no unrelated pair verified either way).
MIN_SIDE = 384
MAX_FEATURES = 1500
RATIO = 0.8
REPROJECTION_PX = 5.0
MAX_ITERATIONS = 2000
CONFIDENCE = 0.999
# At fewer tentative matches than this no transform is fitted.
MIN_MATCHES = 8
# Plausibility of a fitted transform: the reference's outline may shrink or grow by at most
# this factor in area, and be stretched at most this much in one direction against the other.
MAX_AREA_FACTOR = 100.0
MAX_ANISOTROPY = 6.0


def _mirror_order() -> NDArray[np.intp]:
    """The reordering of a SIFT descriptor's 128 values that reflects it as a horizontal flip
    of the picture reflects it. OpenCV lays a descriptor out as 4 rows x 4 columns of cells
    (in the keypoint's own frame, turned by its orientation), each with 8 orientation bins;
    a flip turns the orientation to its mirror image, so in that frame it swaps the rows
    top for bottom and measures every gradient's angle the other way round. Checked against
    features made from flipped photographs in tests/test_verification.py."""
    order = np.empty(128, dtype=np.intp)
    for row in range(4):
        for column in range(4):
            for angle in range(8):
                order[(row * 4 + column) * 8 + angle] = ((3 - row) * 4 + column) * 8 + (-angle) % 8
    return order


MIRROR_ORDER = _mirror_order()


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise DetectorUnavailable(f"geometric verification needs OpenCV: {INSTALL_HINT}") from None
    return cv2


@dataclass(frozen=True)
class LocalFeatures:
    """One picture's keypoints (working pixels) and SIFT descriptors (OpenCV's, whole
    numbers 0-255, kept as bytes), matched as RootSIFT."""

    points: NDArray[np.float32]
    raw: NDArray[np.uint8]
    width: int
    height: int

    @property
    def count(self) -> int:
        return int(self.points.shape[0])

    def mirrored(self) -> LocalFeatures:
        """The features of the picture flipped left to right: each keypoint moved across,
        each descriptor reflected (``MIRROR_ORDER``)."""
        points = self.points.copy()
        points[:, 0] = self.width - points[:, 0]
        return LocalFeatures(points, self.raw[:, MIRROR_ORDER], self.width, self.height)

    @cached_property
    def descriptors(self) -> NDArray[np.float32]:
        """RootSIFT: each descriptor L1-normalised, then square-rooted."""
        values = self.raw.astype(np.float32)
        values /= np.maximum(values.sum(axis=1, keepdims=True), 1e-7)
        rooted: NDArray[np.float32] = np.sqrt(values)
        return rooted


class FeatureCache:
    """Reference pictures' features on disk, one file per picture (by sha256) under a folder
    named by the features' spec, so a check computes a reference's features once. Each file
    carries FEATURES_FORMAT and the spec; one that is damaged, or made under another spec,
    is made again. The cache can be deleted at any time."""

    def __init__(self, folder: Path, spec: dict[str, Any]) -> None:
        self.spec = json.dumps(spec, sort_keys=True)
        self.folder = folder / hashlib.sha256(self.spec.encode()).hexdigest()[:16]

    def _path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}.npz"

    def get(self, sha256: str) -> LocalFeatures | None:
        try:
            with np.load(self._path(sha256), allow_pickle=False) as stored:
                if str(stored["format"]) != FEATURES_FORMAT or str(stored["spec"]) != self.spec:
                    return None
                points, raw = stored["points"], stored["raw"]
                width, height = (int(v) for v in stored["size"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None  # missing or damaged: made again
        if points.shape != (len(raw), 2) or raw.shape[1:] != (128,) or raw.dtype != np.uint8:
            return None
        return LocalFeatures(points.astype(np.float32), raw, width, height)

    def features(self, sha256: str, make: Callable[[], LocalFeatures]) -> LocalFeatures:
        """The cached features of picture ``sha256``, else ``make()``'s, cached."""
        cached = self.get(sha256)
        if cached is None:
            cached = make()
            self.put(sha256, cached)
        return cached

    def put(self, sha256: str, features: LocalFeatures) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format=np.array(FEATURES_FORMAT),
            spec=np.array(self.spec),
            points=features.points,
            raw=features.raw,
            size=np.array([features.width, features.height]),
        )
        target = self._path(sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, buffer.getvalue())
        except OSError:
            pass  # a cache that cannot be written costs time, not correctness


def prune_features(
    root: Path, keep: Collection[str], *, older_than: float, current: Path | None
) -> int:
    """Remove from the feature caches under ``root`` (one folder per spec) the files of
    pictures not in ``keep`` and, when the ``current`` spec's folder is known, every file of
    another spec; only files last written before ``older_than``. The number removed."""
    removed = 0
    for path in sorted(root.glob("*/*/*.npz")):
        other_spec = current is not None and path.parent.parent != current
        with contextlib.suppress(OSError):
            if (other_spec or path.stem not in keep) and path.stat().st_mtime < older_than:
                path.unlink()
                removed += 1
    for folder in sorted(root.glob("*/*")) + sorted(root.glob("*")):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    return removed


@dataclass
class AssetFeatures:
    """An asset's features as it is, and mirrored (on first use: only a reference that does
    not verify forward needs them): the forward ones reflected, and, for a match the
    reflection nearly makes, those of the flipped picture (``image``, when known)."""

    forward: LocalFeatures
    image: Image.Image | None = None
    flipped: LocalFeatures | None = field(default=None, repr=False)

    @cached_property
    def mirrored(self) -> LocalFeatures:
        return self.forward.mirrored()


class GeometricVerifier:
    """Local-feature matching and a robust transform between an asset and a reference."""

    def __init__(self, *, min_inliers: int = 15) -> None:
        self.cv2 = _cv2()
        self.min_inliers = min_inliers
        self.cv2.setRNGSeed(0)

    @cached_property
    def features_spec(self) -> dict[str, Any]:
        """What a picture's features depend on (the key of a FeatureCache)."""
        return {
            "format": FEATURES_FORMAT,
            "features": self.spec["features"],
            "library": self.spec["library"],
            "max_side": MAX_SIDE,
            "min_side": MIN_SIDE,
            "max_features": MAX_FEATURES,
        }

    @cached_property
    def spec(self) -> dict[str, Any]:
        """Everything that changes a verification's result, recorded on every check."""
        return {
            "name": "geometry",
            "features": "RootSIFT (OpenCV SIFT, L1-normalised, square-rooted)",
            "library": f"opencv {self.cv2.__version__}",
            "max_side": MAX_SIDE,
            "min_side": MIN_SIDE,
            "max_features": MAX_FEATURES,
            "ratio": RATIO,
            "mutual": True,
            "model": "homography, USAC MAGSAC",
            "reprojection_px": REPROJECTION_PX,
            "max_iterations": MAX_ITERATIONS,
            "confidence": CONFIDENCE,
            "max_area_factor": MAX_AREA_FACTOR,
            "max_anisotropy": MAX_ANISOTROPY,
            "mirrored": "forward features reflected; made from the flipped picture when the "
            "reflected ones match without verifying",
            "min_inliers": self.min_inliers,
        }

    def features(self, image: Image.Image) -> LocalFeatures:
        """RootSIFT features of a canonical RGB picture at the working size."""
        cv2 = self.cv2
        longest = max(image.width, image.height)
        working = min(max(longest, MIN_SIDE), MAX_SIDE)
        if working != longest:  # before making it grey: a large picture costs more to convert
            scale = working / longest
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            shrink = scale < 1
            image = image.resize(size, Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC)
        grey = image.convert("L")
        pixels = np.asarray(grey)
        sift = cv2.SIFT_create(nfeatures=MAX_FEATURES)
        keypoints, descriptors = sift.detectAndCompute(pixels, None)
        if descriptors is None or not keypoints:
            empty = np.zeros((0, 2), np.float32)
            return LocalFeatures(empty, np.zeros((0, 128), np.uint8), grey.width, grey.height)
        # OpenCV's SIFT descriptors are whole numbers 0-255 held as floats: bytes lose nothing.
        raw = np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)
        points = np.array([k.pt for k in keypoints], dtype=np.float32)
        return LocalFeatures(points, raw, grey.width, grey.height)

    def asset_features(self, image: Image.Image) -> AssetFeatures:
        return AssetFeatures(self.features(image), image)

    def verify(
        self, asset: AssetFeatures, reference: LocalFeatures, reference_set: str, item_id: int
    ) -> Verification:
        """The forward match of ``reference`` in ``asset`` when it verifies, else the better
        of it and the mirrored match."""
        if reference.count < MIN_MATCHES:
            return Verification.failed(
                reference_set,
                item_id,
                f"the reference has too few local features ({reference.count})",
            )
        if asset.forward.count < MIN_MATCHES:
            return Verification.failed(
                reference_set,
                item_id,
                f"the asset has too few local features ({asset.forward.count})",
            )
        forward = self._fit(asset.forward, reference, reference_set, item_id, mirrored=False)
        if forward.verified:
            return forward
        mirrored = self._fit(asset.mirrored, reference, reference_set, item_id, mirrored=True)
        if not mirrored.verified and mirrored.matches >= MIN_MATCHES and asset.image is not None:
            # Reflected descriptors sample each keypoint's patch up to a pixel off, which
            # costs a picture with few features its last few matches: make them for real.
            if asset.flipped is None:
                asset.flipped = self.features(ImageOps.mirror(asset.image))
            exact = self._fit(asset.flipped, reference, reference_set, item_id, mirrored=True)
            mirrored = max(mirrored, exact, key=lambda v: (v.verified, v.inliers))
        return max(forward, mirrored, key=lambda v: (v.verified, v.inliers))

    def _fit(
        self,
        asset: LocalFeatures,
        reference: LocalFeatures,
        reference_set: str,
        item_id: int,
        *,
        mirrored: bool,
    ) -> Verification:
        cv2 = self.cv2
        pairs = _mutual_matches(reference.descriptors, asset.descriptors)
        if len(pairs) < MIN_MATCHES:
            return Verification.failed(
                reference_set, item_id, f"{len(pairs)} matched features", matches=len(pairs)
            )
        source = reference.points[pairs[:, 0]]
        target = asset.points[pairs[:, 1]]
        homography, mask = cv2.findHomography(
            source,
            target,
            cv2.USAC_MAGSAC,
            REPROJECTION_PX,
            maxIters=MAX_ITERATIONS,
            confidence=CONFIDENCE,
        )
        if homography is None or mask is None:
            return Verification.failed(
                reference_set, item_id, "no consistent transform", matches=len(pairs)
            )
        inliers = int(mask.sum())
        # In fractions of each picture: reference (0..1)² to asset (0..1)².
        to_asset = np.diag([1 / asset.width, 1 / asset.height, 1.0])
        from_reference = np.diag([reference.width, reference.height, 1.0])
        transform = to_asset @ homography @ from_reference
        if mirrored:
            transform = np.array([[-1.0, 0, 1], [0, 1, 0], [0, 0, 1]]) @ transform
        transform /= transform[2, 2]
        problem = _implausible(homography)
        asset_polygon = _clip_unit(_project(transform, _UNIT))
        if problem is None and not asset_polygon:
            problem = "the reference's outline does not land in the asset as a convex shape"
        reference_polygon: tuple[tuple[float, float], ...] = ()
        if problem:  # no region to show for a transform that is not a copy's
            asset_polygon = ()
        else:
            reference_polygon = _clip_unit(_project(_inverse(transform), _UNIT))
        verified = problem is None and inliers >= self.min_inliers
        note = problem or (
            "" if verified else f"{inliers} consistent matches, fewer than {self.min_inliers}"
        )
        return Verification(
            reference_set=reference_set,
            item_id=item_id,
            verified=verified,
            inliers=inliers,
            matches=len(pairs),
            mirrored=mirrored,
            transform=tuple(round(float(v), 6) for v in transform.ravel()),
            asset_polygon=asset_polygon,
            reference_polygon=reference_polygon,
            asset_coverage=round(_area(asset_polygon), 4),
            reference_coverage=round(_area(reference_polygon), 4),
            note=note,
        )


def _inverse(transform: NDArray[np.float64]) -> NDArray[np.float64]:
    try:
        inverse: NDArray[np.float64] = np.linalg.inv(transform).astype(np.float64)
        return inverse
    except np.linalg.LinAlgError:
        return np.full((3, 3), np.nan)


_UNIT = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def _mutual_matches(query: NDArray[np.float32], train: NDArray[np.float32]) -> NDArray[np.int64]:
    """Index pairs (query row, train row) where each is the other's nearest neighbour and
    passes Lowe's ratio test both ways: nearer than ``RATIO`` times the second nearest.

    The descriptors are unit vectors (RootSIFT), so a squared distance is 2 - 2 x their
    product: one matrix product gives every distance in both directions, where a
    brute-force matcher searches twice. The pairs are those of OpenCV's ``BFMatcher``
    (L2, k = 2) run both ways."""
    if len(query) < 2 or len(train) < 2:
        return np.zeros((0, 2), np.int64)
    similarity = query @ train.T
    by_train = np.ascontiguousarray(similarity.T)
    nearest = similarity.argmax(axis=1)
    rows = np.flatnonzero(by_train.argmax(axis=1)[nearest] == np.arange(len(query)))
    cols = nearest[rows]
    picked = np.arange(len(rows))
    best = similarity[rows, cols]
    others = similarity[rows]
    others[picked, cols] = -np.inf
    others_back = by_train[cols]
    others_back[picked, rows] = -np.inf

    # Half the squared distances (1 - product), so the ratio test compares them to RATIO².
    line = RATIO * RATIO
    nearest_distance = np.maximum(1.0 - best, 0.0)
    keep = (nearest_distance < line * np.maximum(1.0 - others.max(axis=1), 0.0)) & (
        nearest_distance < line * np.maximum(1.0 - others_back.max(axis=1), 0.0)
    )
    return np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)


def _project(transform: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    homogeneous = np.hstack([points, np.ones((len(points), 1))]) @ transform.T
    w = homogeneous[:, 2:3]
    w = np.where(np.abs(w) < 1e-9, 1e-9, w)
    return homogeneous[:, :2] / w


def _implausible(homography: NDArray[np.float64]) -> str | None:
    """Why a homography (reference working pixels to asset working pixels) is not a copy's
    transform, or None when it is plausible."""
    if not np.all(np.isfinite(homography)) or abs(homography[2, 2]) < 1e-12:
        return "the transform is degenerate"
    linear = homography[:2, :2] / homography[2, 2]
    determinant = float(np.linalg.det(linear))
    if determinant <= 0:
        return "the transform folds the picture over"
    singular = np.linalg.svd(linear, compute_uv=False)
    if singular[1] <= 0 or singular[0] / singular[1] > MAX_ANISOTROPY:
        return "the transform stretches the picture implausibly"
    if not 1 / MAX_AREA_FACTOR <= determinant <= MAX_AREA_FACTOR:
        return "the transform changes the picture's size implausibly"
    return None


def _clip_unit(polygon: NDArray[np.float64]) -> tuple[tuple[float, float], ...]:
    """A convex ``polygon`` clipped to the unit square (Sutherland-Hodgman), as rounded
    points; empty when it is not convex or lies outside the square."""
    if not np.all(np.isfinite(polygon)) or not _convex(polygon):
        return ()
    points = [(float(x), float(y)) for x, y in polygon]
    for axis, bound, keep_below in (
        (0, 0.0, False),
        (0, 1.0, True),
        (1, 0.0, False),
        (1, 1.0, True),
    ):
        points = _clip_edge(points, axis, bound, keep_below)
        if not points:
            return ()
    rounded = tuple((round(x, 4), round(y, 4)) for x, y in points)
    return rounded if _area(rounded) > 0 else ()


def _clip_edge(
    points: list[tuple[float, float]], axis: int, bound: float, keep_below: bool
) -> list[tuple[float, float]]:
    def inside(p: tuple[float, float]) -> bool:
        return p[axis] <= bound if keep_below else p[axis] >= bound

    clipped: list[tuple[float, float]] = []
    for current, following in zip(points, [*points[1:], points[0]], strict=True):
        if inside(current):
            clipped.append(current)
        if inside(current) != inside(following):
            t = (bound - current[axis]) / (following[axis] - current[axis])
            clipped.append(
                (
                    current[0] + t * (following[0] - current[0]),
                    current[1] + t * (following[1] - current[1]),
                )
            )
    return clipped


def _convex(polygon: NDArray[np.float64]) -> bool:
    """Whether the closed polygon turns the same way at every corner (and is not flat)."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    turns = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    return bool(np.all(turns > 0) or np.all(turns < 0))


def _area(polygon: Sequence[tuple[float, float]]) -> float:
    """The shoelace area of a polygon given as points."""
    if len(polygon) < 3:
        return 0.0
    total = 0.0
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2
