"""AUTOMATIC1111 (stable-diffusion-webui) and its forks (Forge, SD.Next).

PNG: a ``parameters`` text chunk. JPEG and WebP: the same text in EXIF UserComment,
written by piexif with an 8-byte character-code prefix and UTF-16 text.
"""

from __future__ import annotations

import logging
from typing import Any

from sd_parsers.exceptions import ParserError
from sd_parsers.parsers import AUTOMATIC1111Parser

from provenance.domain import MetadataReading, Source
from provenance.media import DecodedImage
from provenance.metadata._sdparsers import reading_from_prompt_info

logger = logging.getLogger(__name__)

_USER_COMMENT = 0x9286
_PARSER = AUTOMATIC1111Parser()


def read(image: DecodedImage) -> MetadataReading | None:
    """The A1111 reading of ``image``, or None when it carries no A1111 parameters."""
    text = image.info.get("parameters")
    if not isinstance(text, str):
        text = decode_user_comment(image.exif.get(_USER_COMMENT))
    if not text or not text.strip():
        return None
    try:
        info = _PARSER.parse({"parameters": text})
    except (ParserError, ValueError, KeyError, IndexError) as exc:
        logger.info("A1111 parameters present but not parsed: %s", exc)
        return MetadataReading(Source.A1111, {"tool": "automatic1111"}, {}, {"parameters": text})
    reading = reading_from_prompt_info(info, Source.A1111, {"parameters": text}, "automatic1111")
    version = reading.settings.pop("Version", None)
    if version is not None:
        reading.fields["tool_version"] = str(version)
    return reading


def decode_user_comment(value: Any) -> str | None:
    """Decode an EXIF UserComment (8-byte character code, then the text)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes) or len(value) <= 8:
        return None
    code, body = value[:8], value[8:]
    if code.startswith(b"UNICODE"):
        # piexif writes big-endian UTF-16; some tools write little-endian. ASCII text in
        # the wrong byte order puts the NULs first, which tells the two apart.
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16", errors="replace")
        big_endian = body[:1] == b"\x00" or body[1:2] != b"\x00"
        return body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")
    if code.startswith(b"ASCII") or code == b"\x00" * 8:
        return body.rstrip(b"\x00").decode("latin-1")
    return body.decode("utf-8", errors="replace")
