"""Thumbnails of stored images: a JPEG fitting a size, made once and kept under
``thumbnails/<size>/`` in the workspace (made again only if deleted)."""

from __future__ import annotations

import io
from pathlib import Path

from provenance.atomic import write_atomically
from provenance.domain import FingerprintLimits
from provenance.media import decode_image
from provenance.store import ContentStore


def thumbnail(
    root: Path, store: ContentStore, sha256: str, size: int, limits: FingerprintLimits
) -> Path:
    """The thumbnail of stored image ``sha256`` fitting ``size`` pixels (made if missing),
    decoded as for fingerprinting (``limits``: pixel limit, colour policy)."""
    target = root / "thumbnails" / str(size) / sha256[:2] / f"{sha256}.jpg"
    if target.is_file():
        return target
    picture = decode_image(
        store.read(sha256), max_pixels=limits.max_pixels, colour=limits.colour
    ).pixels.convert("RGB")
    picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, buffer.getvalue())
    return target
