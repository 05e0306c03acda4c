"""InvokeAI: ``invokeai_metadata`` (3.x and later), ``sd-metadata`` (2.x) or ``Dream``
(1.x) PNG text chunks."""

from __future__ import annotations

import json
import logging
from typing import Any

from sd_parsers.exceptions import ParserError
from sd_parsers.parsers import InvokeAIParser

from provenance.domain import MetadataReading, Source
from provenance.media import DecodedImage
from provenance.metadata._sdparsers import reading_from_prompt_info

logger = logging.getLogger(__name__)

_KEYS = ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream")
_PARSER = InvokeAIParser()


def read(image: DecodedImage) -> MetadataReading | None:
    """The InvokeAI reading of ``image``, or None when it has no InvokeAI chunks."""
    chunks = {key: image.info[key] for key in _KEYS if isinstance(image.info.get(key), str)}
    if not chunks:
        return None
    raw = {key: _json_or_text(value) for key, value in chunks.items()}
    try:
        info = _PARSER.parse(dict(chunks))
    except (ParserError, ValueError, KeyError, TypeError, IndexError) as exc:
        logger.info("InvokeAI metadata present but not parsed: %s", exc)
        return MetadataReading(Source.INVOKEAI, {"tool": "invokeai"}, {}, raw)
    reading = reading_from_prompt_info(info, Source.INVOKEAI, raw, "invokeai")
    metadata = raw.get("invokeai_metadata")
    if isinstance(metadata, dict):
        # sd-parsers reads the model only from 3.x's ``model_name``; 4.x and later write
        # ``name`` (with ``base``, ``hash`` and ``key``), which it drops.
        model = metadata.get("model")
        if isinstance(model, dict):
            name = model.get("model_name") or model.get("name")
            if name:
                reading.fields["model"] = str(name)
            if model.get("hash"):
                reading.fields["model_hash"] = str(model["hash"])
            if model.get("base") or model.get("base_model"):
                reading.settings["model_base"] = model.get("base") or model.get("base_model")
        version = reading.settings.pop("app_version", None)
        if version is not None:
            reading.fields["tool_version"] = str(version)
    return reading


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
