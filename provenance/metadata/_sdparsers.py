"""Turning an sd-parsers ``PromptInfo`` into a reading.

sd-parsers knows the text formats of AUTOMATIC1111, ComfyUI and InvokeAI well, so we use its
parsers. We do not use its ``ParserManager`` for discovery: its JPEG extractor caches the last
UserComment by ``id(image)``, which can hand one image's metadata to the next image that
reuses the id. We find the chunks ourselves and call the parsers directly.
"""

from __future__ import annotations

import re
from typing import Any

from provenance.domain import MetadataReading, Source

_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")


def coerce_number(value: Any) -> Any:
    """Numbers written as text by a tool ("30", "7.5") become numbers; the rest is kept."""
    if isinstance(value, str):
        text = value.strip()
        if _INT.match(text):
            return int(text)
        if _FLOAT.match(text):
            return float(text)
    return value


def reading_from_prompt_info(
    info: Any, source: Source, raw: dict[str, Any], tool: str
) -> MetadataReading:
    """Map sd-parsers' structured result onto our fields and settings."""
    fields: dict[str, Any] = {"tool": tool}
    settings: dict[str, Any] = {}
    samplers = list(info.samplers)
    if samplers:
        first = samplers[0]
        settings["sampler"] = first.name
        params = {key: coerce_number(value) for key, value in first.parameters.items()}
        seed = params.pop("seed", None)
        if seed is not None:
            fields["seed"] = seed
        settings.update(params)
        if first.model is not None:
            fields["model"] = first.model.name
            if first.model.hash:
                fields["model_hash"] = first.model.hash
    if info.prompts:
        fields["prompt"] = info.full_prompt
    if info.negative_prompts:
        fields["negative_prompt"] = info.full_negative_prompt
    if len(samplers) > 1:
        settings["samplers"] = [
            {"name": s.name, "parameters": dict(s.parameters), "model": str(s.model or "")}
            for s in samplers
        ]
    for key, value in info.metadata.items():
        if key in {"full_prompt", "full_negative_prompt"}:
            continue
        settings.setdefault(str(key), coerce_number(value))
    return MetadataReading(source, fields, settings, raw)
