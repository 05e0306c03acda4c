"""ComfyUI: ``prompt`` (the executed graph, API format) and ``workflow`` (the editor graph)
PNG text chunks, both JSON, as written by its SaveImage node."""

from __future__ import annotations

import json
import logging
from typing import Any

from sd_parsers.exceptions import ParserError
from sd_parsers.parsers import ComfyUIParser

from provenance.domain import MetadataReading, Source
from provenance.media import DecodedImage
from provenance.metadata._sdparsers import reading_from_prompt_info

logger = logging.getLogger(__name__)

_PARSER = ComfyUIParser()


def read(image: DecodedImage) -> MetadataReading | None:
    """The ComfyUI reading of ``image``, or None when it has no ComfyUI graph."""
    prompt = image.info.get("prompt")
    workflow = image.info.get("workflow")
    if not isinstance(prompt, str) or not _is_json_object(prompt):
        return None
    raw: dict[str, Any] = {"prompt": json.loads(prompt)}
    chunks = {"prompt": prompt}
    if isinstance(workflow, str) and _is_json_object(workflow):
        raw["workflow"] = json.loads(workflow)
        chunks["workflow"] = workflow
    try:
        info = _PARSER.parse(chunks)
    except (ParserError, ValueError, KeyError, TypeError, IndexError) as exc:
        logger.info("ComfyUI graph present but not parsed: %s", exc)
        return MetadataReading(Source.COMFYUI, {"tool": "comfyui"}, {}, raw)
    return reading_from_prompt_info(info, Source.COMFYUI, raw, "comfyui")


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
