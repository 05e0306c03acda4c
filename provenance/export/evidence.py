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
from provenance.scoring import strongest_items

# The JPEG bytes of a stored image (by sha256) fitting a number of pixels.
Thumbnail = Callable[[str, int], bytes]

# Matched references pictured in an evidence pack (the strongest distinct items).
PICTURED_REFERENCES = 6
THUMBNAIL = 640

_environment = Environment(
    loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)
_environment.filters["basename"] = lambda path: str(path).replace("\\", "/").rsplit("/", 1)[-1]


def _picture(
    thumbnail: Thumbnail, sha256: str, region: tuple[float, float, float, float] | None = None
) -> str | None:
    """A thumbnail as a data: URI, with ``region`` (fractions of the picture) outlined; None
    when the stored copy cannot be read."""
    try:
        data = thumbnail(sha256, THUMBNAIL)
    except ProvenanceError:
        return None
    if region is not None:
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
        width, height = picture.size
        left, top, right, bottom = region
        box = (left * width, top * height, right * width - 1, bottom * height - 1)
        draw = ImageDraw.Draw(picture)
        draw.rectangle(box, outline=(0, 0, 0), width=5)
        draw.rectangle(box, outline=(255, 212, 0), width=3)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=85)
        data = buffer.getvalue()
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _references(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The newest check's strongest matched references, each as its strongest match with
    that match's bands."""
    if not record["checks"]:
        return []
    latest = record["checks"][-1]
    return [
        {
            **item["best"],
            "strength": item["strength"],
            "bands": latest["thresholds"][item["best"]["detector"]],
        }
        for item in strongest_items(latest, PICTURED_REFERENCES)
    ]


def asset_pack_html(record: dict[str, Any], thumbnail: Thumbnail) -> str:
    """The evidence pack of one asset's record, as one HTML page; ``thumbnail`` gives the
    JPEG of a stored image (by sha256) fitting a size, for the pictures."""
    references = [
        {**match, "picture": _picture(thumbnail, match["sha256"])} for match in _references(record)
    ]
    # The region of the asset where the strongest reference was found, outlined.
    region = references[0]["region"] if references else "whole"
    box = None if region == "whole" else REGION_BOXES.get(region)
    return _environment.get_template("evidence.html").render(
        record=record,
        picture=_picture(thumbnail, record["asset"]["sha256"], box),
        region=region if box else None,
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
