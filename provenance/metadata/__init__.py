"""Generation metadata: what files carry inside them and what sits beside them.

One module per source. ``read_embedded`` looks inside a decoded file; ``sidecar`` reads
the documented JSON schema beside it or named by ``--metadata``. Readings are merged by
``GenerationInfo.merge`` in the order of ``Source`` (later wins), flags last.
"""

from __future__ import annotations

import logging

from provenance import jsontext
from provenance.domain import MetadataReading
from provenance.errors import MetadataError
from provenance.media import DecodedImage
from provenance.metadata import a1111, comfyui, exif, invokeai

logger = logging.getLogger(__name__)


def read_embedded(image: DecodedImage) -> list[MetadataReading]:
    """Every reading found inside the file, lowest precedence first. MetadataError when an
    embedded JSON text nests deeper than any tool writes (``jsontext.MAX_DEPTH``): every
    reader, and the parsers they use, would otherwise recurse level by level."""
    for key, value in image.info.items():
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                jsontext.check_depth(value)
            except jsontext.TooDeep as exc:
                raise MetadataError(f"embedded {str(key)[:40]!r} metadata: {exc}") from None
    readings: list[MetadataReading] = []
    for reader in (exif.read, a1111.read, comfyui.read, invokeai.read):
        reading = reader(image)
        if reading is not None:
            readings.append(reading)
    return readings
