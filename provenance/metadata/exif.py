"""EXIF and XMP fields that say which software made a file.

EXIF ``Software`` names the tool; XMP ``xmp:CreatorTool`` does the same, and IPTC's
``Iptc4xmpExt:DigitalSourceType`` says whether the picture is generated
(``trainedAlgorithmicMedia``). XMP is parsed with defusedxml: it is text from the file.
"""

from __future__ import annotations

import logging
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from provenance.domain import MetadataReading, Source
from provenance.media import DecodedImage

logger = logging.getLogger(__name__)

# EXIF tag -> (where it goes, name). Only tags that describe how the file was made.
_EXIF_TAGS = {
    0x0131: ("field", "tool"),  # Software
    0x013B: ("setting", "artist"),  # Artist
    0x010E: ("setting", "image_description"),  # ImageDescription
    0x8298: ("setting", "copyright"),  # Copyright
    0x0132: ("setting", "modified_at"),  # DateTime
    0x9003: ("setting", "created_at"),  # DateTimeOriginal
    0x010F: ("setting", "camera_make"),  # Make
    0x0110: ("setting", "camera_model"),  # Model
}

_XMP = "http://ns.adobe.com/xap/1.0/"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_DC = "http://purl.org/dc/elements/1.1/"
_XMP_NAMES = {
    f"{{{_XMP}}}CreatorTool": ("field", "tool"),
    f"{{{_IPTC_EXT}}}DigitalSourceType": ("setting", "digital_source_type"),
    f"{{{_DC}}}description": ("setting", "description"),
    f"{{{_DC}}}creator": ("setting", "creator"),
}


def read(image: DecodedImage) -> MetadataReading | None:
    """EXIF then XMP readings folded into one; None when neither says anything useful."""
    fields: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for tag, (kind, name) in _EXIF_TAGS.items():
        value = image.exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            value = value.strip("\x00 ").strip()
            if value:
                (fields if kind == "field" else settings)[name] = value
                raw[f"exif:{name}"] = value
    if image.xmp:
        for name, value in _read_xmp(image.xmp).items():
            kind, target = _XMP_NAMES[name]
            raw[f"xmp:{target}"] = value
            (fields if kind == "field" else settings).setdefault(target, value)
    if not fields and not settings:
        return None
    return MetadataReading(Source.EXIF, fields, settings, raw)


def _read_xmp(packet: bytes) -> dict[str, str]:
    text = packet.strip(b"\x00 \n\r\t")
    try:
        root = ElementTree.fromstring(text)
    except (DefusedXmlException, ValueError, SyntaxError) as exc:
        logger.info("unreadable XMP packet: %s", exc)
        return {}
    found: dict[str, str] = {}
    for element in root.iter():
        for attribute, value in element.attrib.items():
            if attribute in _XMP_NAMES and value.strip():
                found.setdefault(attribute, value.strip())
        if element.tag in _XMP_NAMES:
            value = _element_text(element)
            if value:
                found.setdefault(element.tag, value)
    return found


def _element_text(element: Element) -> str:
    """The text of a simple property or the first item of an rdf:Alt/Seq/Bag."""
    if element.text and element.text.strip():
        return element.text.strip()
    for child in element.iter():
        if child is not element and child.text and child.text.strip():
            return child.text.strip()
    resource = element.attrib.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource")
    return resource.strip() if resource else ""
