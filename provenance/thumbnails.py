"""Thumbnails of stored images: a JPEG fitting a size, made once and kept under
``thumbnails/<size>/`` in the workspace (made again only if deleted)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from provenance.atomic import write_atomically
from provenance.domain import FingerprintLimits
from provenance.errors import NotFound, StoreError
from provenance.media import decode_image
from provenance.media.moving import manifest_frames, sample_movie, stored_kind
from provenance.store import ContentStore


def poster(
    store: ContentStore, sha256: str, limits: FingerprintLimits, frame: int | None = None
) -> Image.Image:
    """The picture that stands for stored file ``sha256``: a still itself, a sequence's
    first frame, a movie's first frame (read from the stored file, never whole); with
    ``frame``, that frame of a movie (numbered from 0) or sequence (by its own number)."""
    path = store.path_for(sha256)
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise StoreError(f"stored file {sha256[:12]} cannot be read: {exc.strerror}") from None
    kind = stored_kind(head)
    if kind == "sequence":
        frames = manifest_frames(store.read(sha256))
        chosen = next(iter(frames.values())) if frame is None else frames.get(frame)
        if chosen is None:
            raise NotFound(f"the sequence has no frame {frame}")
        return poster(store, chosen, limits)
    if kind == "movie":
        wanted = {frame or 0}
        for _, picture in sample_movie(path, step=1, limit=1, expected_frames=None, keep=wanted):
            return picture
        raise NotFound(f"the movie has no frame {frame}")
    if frame not in (None, 0):
        raise NotFound("a still has no other frames")
    return decode_image(
        store.read(sha256), max_pixels=limits.max_pixels, colour=limits.colour
    ).pixels


def frame_thumbnail(
    root: Path, store: ContentStore, sha256: str, frame: int, size: int, limits: FingerprintLimits
) -> Path:
    """The thumbnail of one frame of stored movie or sequence ``sha256`` (made if missing,
    kept under ``thumbnails/<size>/frames/``)."""
    target = root / "thumbnails" / str(size) / "frames" / sha256[:2] / f"{sha256}-{frame}.jpg"
    if target.is_file():
        return target
    return _write(target, poster(store, sha256, limits, frame), size)


def _write(target: Path, picture: Image.Image, size: int) -> Path:
    picture = picture.convert("RGB")
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, buffer.getvalue())
    return target


def thumbnail(
    root: Path, store: ContentStore, sha256: str, size: int, limits: FingerprintLimits
) -> Path:
    """The thumbnail of stored image ``sha256`` fitting ``size`` pixels (made if missing),
    decoded as for fingerprinting (``limits``: pixel limit, colour policy)."""
    target = root / "thumbnails" / str(size) / sha256[:2] / f"{sha256}.jpg"
    if target.is_file():
        return target
    return _write(target, poster(store, sha256, limits), size)


def aligned(
    root: Path,
    store: ContentStore,
    asset_sha256: str,
    reference_sha256: str,
    transform: tuple[float, ...] | None,
    size: int,
    limits: FingerprintLimits,
) -> Path:
    """The reference redrawn in the asset's frame, as a JPEG of the asset's displayed size
    (fitting ``size``): warped by a verified match's ``transform`` (the 3x3 homography, row
    by row, from the reference's unit square to the asset's), else stretched to the asset's
    size. The asset's own picture at that size is ``thumbnail(..., size)``; laid over each
    other they give the wipe, flicker and difference views. Kept under
    ``thumbnails/<size>/aligned/``."""
    import cv2
    import numpy as np

    key = hashlib.sha256(f"{asset_sha256}:{reference_sha256}:{transform}".encode()).hexdigest()
    target = root / "thumbnails" / str(size) / "aligned" / key[:2] / f"{key}.jpg"
    if target.is_file():
        return target
    frame = poster(store, asset_sha256, limits).convert("RGB")
    frame.thumbnail((size, size))
    width, height = frame.size
    reference = np.asarray(poster(store, reference_sha256, limits).convert("RGB"))
    if transform is None:
        warped = cv2.resize(reference, (width, height), interpolation=cv2.INTER_AREA)
    else:
        ref_height, ref_width = reference.shape[:2]
        to_pixels = np.diag([float(width), float(height), 1.0])
        from_pixels = np.diag([1.0 / ref_width, 1.0 / ref_height, 1.0])
        homography = to_pixels @ np.array(transform, dtype=np.float64).reshape(3, 3) @ from_pixels
        warped = cv2.warpPerspective(reference, homography, (width, height), flags=cv2.INTER_AREA)
    picture = Image.fromarray(warped)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, buffer.getvalue())
    return target
