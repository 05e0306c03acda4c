"""Evidence packs: a record or a disclosure summary as a self-contained HTML page (pictures
embedded) and as PDF (WeasyPrint, which needs Pango from the system).

The pages are rendered from the JSON documents of ``provenance.export.record`` and nothing
else, so the readable pack and the machine-readable record always say the same.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image, ImageDraw, ImageFile

from provenance.errors import PdfUnavailable, ProvenanceError
from provenance.export.record import dumps
from provenance.media import REGION_BOXES
from provenance.scoring import measure, nearest_words, score_words, strongest_items

# The JPEG bytes of a stored image (by sha256) fitting a number of pixels.
Thumbnail = Callable[[str, int], bytes]
# The JPEG bytes of one frame of a stored movie or sequence (sha256, frame, pixels).
FrameThumbnail = Callable[[str, int, int], bytes]

# Matched references pictured in an evidence pack (the strongest distinct items).
PICTURED_REFERENCES = 6
THUMBNAIL = 640

_environment = Environment(
    loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)
_environment.filters["basename"] = lambda path: str(path).replace("\\", "/").rsplit("/", 1)[-1]
# One wording for each measure, as on the command line and the reviewer pages.
_environment.filters["measure"] = measure
_environment.filters["nearest"] = nearest_words
_environment.globals["score_words"] = score_words


Outline = list[tuple[float, float]]


def _picture(thumbnail: Thumbnail, sha256: str, outline: Outline | None = None) -> str | None:
    """A thumbnail as a data: URI, with ``outline`` (a polygon in fractions of the picture)
    drawn on it; None when the stored copy cannot be read."""
    try:
        data = thumbnail(sha256, THUMBNAIL)
    except ProvenanceError:
        return None
    if outline:
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
        width, height = picture.size
        points = [(min(x * width, width - 2.0), min(y * height, height - 2.0)) for x, y in outline]
        draw = ImageDraw.Draw(picture)
        draw.polygon(points, outline=(0, 0, 0), width=5)
        draw.polygon(points, outline=(255, 212, 0), width=3)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=85)
        data = buffer.getvalue()
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _box_outline(region: str) -> Outline | None:
    """The crop named ``region`` as a polygon (None for the whole picture)."""
    box = None if region == "whole" else REGION_BOXES.get(region)
    if box is None:
        return None
    left, top, right, bottom = box
    return [(left, top), (right, top), (right, bottom), (left, bottom)]


def _references(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The newest check's strongest matched references, each as its strongest match with
    that match's bands."""
    if not record["checks"]:
        return []
    latest = record["checks"][-1]
    verifications = {(v["reference_set"], v["item_id"]): v for v in latest.get("verifications", [])}
    return [
        {
            **item["best"],
            "strength": item["strength"],
            "bands": latest["thresholds"][item["best"]["detector"]],
            "verification": verifications.get(
                (item["best"]["reference_set"], item["best"]["item_id"])
            ),
        }
        for item in strongest_items(latest, PICTURED_REFERENCES)
    ]


def asset_pack_html(
    record: dict[str, Any], thumbnail: Thumbnail, frame_thumbnail: FrameThumbnail | None = None
) -> str:
    """The evidence pack of one asset's record, as one HTML page; ``thumbnail`` gives the
    JPEG of a stored image (by sha256) fitting a size, for the pictures, and
    ``frame_thumbnail`` that of a movie's or sequence's frame (the frame where the
    strongest reference was found is pictured)."""
    references = []
    for match in _references(record):
        verified = match["verification"] if (match["verification"] or {}).get("verified") else None
        outline = [tuple(p) for p in verified["reference_polygon"]] if verified else None
        references.append({**match, "picture": _picture(thumbnail, match["sha256"], outline)})
    # Where the strongest reference was found in the asset, outlined: the matched polygon
    # when it verified, else the crop an embedding matched.
    strongest = references[0] if references else None
    region, outline = None, None
    if (
        strongest is not None
        and strongest["verification"]
        and strongest["verification"]["verified"]
    ):
        outline = [tuple(p) for p in strongest["verification"]["asset_polygon"]]
        region = "the matched polygon"
    elif strongest is not None and (outline := _box_outline(strongest["region"])):
        region = f"the region ({strongest['region']})"
    shown_frame = None
    if strongest is not None and record["checks"] and record["checks"][-1].get("frames"):
        verified = (
            strongest["verification"] if (strongest["verification"] or {}).get("verified") else None
        )
        shown_frame = verified["frame"] if verified else strongest.get("frame")
    asset_picture = thumbnail
    if shown_frame is not None and frame_thumbnail is not None:
        frame = int(shown_frame)

        def asset_picture(sha256: str, size: int) -> bytes:
            return frame_thumbnail(sha256, frame, size)

    return _environment.get_template("evidence.html").render(
        record=record,
        shown_frame=shown_frame,
        picture=_picture(asset_picture, record["asset"]["sha256"], outline),
        region=region,
        references=references,
        record_sha256=hashlib.sha256(dumps(record).encode("utf-8")).hexdigest(),
    )


def disclosure_html(document: dict[str, Any]) -> str:
    return _environment.get_template("disclosure.html").render(
        document=document,
        document_sha256=hashlib.sha256(dumps(document).encode("utf-8")).hexdigest(),
    )


def to_pdf(html: str) -> bytes:
    """The page as PDF; PdfUnavailable (one line, with the fix) when Pango is missing."""
    try:
        from weasyprint import HTML
    except OSError as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise PdfUnavailable(
            f"PDF needs Pango ({first}); on Debian: apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0 fonts-dejavu-core"
        ) from None
    # WeasyPrint turns on Pillow's process-wide LOAD_TRUNCATED_IMAGES when imported; the
    # pictures it embeds here are our own thumbnails, and decoding elsewhere must stay strict.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
