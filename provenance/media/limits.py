"""The pixel limit every decoder applies before it reads pixels (the ``max_image_pixels``
setting: a decompression bomb is refused, not decoded)."""

from __future__ import annotations

from provenance.errors import ImageTooLarge


def within_limit(width: int, height: int, max_pixels: int, what: str = "image is") -> None:
    """ImageTooLarge for a picture of more than ``max_pixels``; ``what`` starts the
    message ("image is", "frames are")."""
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{what} {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (setting max_image_pixels)"
        )
