"""ComfyUI: ``prompt`` (the executed graph, API format) and ``workflow`` (the editor graph)
PNG text chunks, both JSON, as written by its SaveImage node.

sd-parsers reads the pair. Images saved by scripts through ComfyUI's API often carry only
``prompt``, which sd-parsers refuses; for those, ``read_api_graph`` walks the executed graph
itself: from the first sampler node along its ``positive``, ``negative`` and ``model``
links to the text encoders and the checkpoint loader.
"""

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
        logger.info("sd-parsers did not read the ComfyUI graph (%s); walking it directly", exc)
        fields, settings = read_api_graph(raw["prompt"])
        return MetadataReading(Source.COMFYUI, {"tool": "comfyui", **fields}, settings, raw)
    return reading_from_prompt_info(info, Source.COMFYUI, raw, "comfyui")


_SAMPLER_SETTINGS = {
    "steps": "steps",
    "cfg": "cfg_scale",
    "sampler_name": "sampler",
    "scheduler": "scheduler",
    "denoise": "denoise",
}
_TEXT_INPUTS = ("text", "text_g", "text_l", "prompt")
_MODEL_INPUTS = ("ckpt_name", "unet_name", "model_name")
_MAX_HOPS = 20


def read_api_graph(graph: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields and settings of the first sampler in an API-format graph (node id -> node)."""
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict)}
    sampler = next(
        (
            node
            for _, node in sorted(nodes.items(), key=lambda item: _node_order(item[0]))
            if "Sampler" in str(node.get("class_type", ""))
            and isinstance(node.get("inputs"), dict)
            and "positive" in node["inputs"]
        ),
        None,
    )
    if sampler is None:
        return {}, {}
    inputs = sampler["inputs"]
    fields: dict[str, Any] = {}
    seed = inputs.get("seed", inputs.get("noise_seed"))
    if isinstance(seed, int) and not isinstance(seed, bool):
        fields["seed"] = seed
    positive = _follow(nodes, inputs.get("positive"), _TEXT_INPUTS)
    negative = _follow(nodes, inputs.get("negative"), _TEXT_INPUTS)
    model = _follow(nodes, inputs.get("model"), _MODEL_INPUTS)
    if positive:
        fields["prompt"] = positive
    if negative:
        fields["negative_prompt"] = negative
    if model:
        fields["model"] = model
    settings = {
        name: inputs[key]
        for key, name in _SAMPLER_SETTINGS.items()
        if key in inputs and not isinstance(inputs[key], list)
    }
    settings["sampler_node"] = sampler.get("class_type")
    return fields, settings


def _follow(nodes: dict[str, Any], link: Any, wanted: tuple[str, ...]) -> str | None:
    """Follow ``[node id, slot]`` links upstream until a node holds one of ``wanted`` as a
    literal string; breadth-first, bounded, so that a cyclic or huge graph cannot hang us."""
    queue = [link]
    seen: set[str] = set()
    for _ in range(_MAX_HOPS * 8):
        if not queue:
            return None
        current = queue.pop(0)
        if not (isinstance(current, list) and current and str(current[0]) in nodes):
            continue
        node_id = str(current[0])
        if node_id in seen:
            continue
        seen.add(node_id)
        inputs = nodes[node_id].get("inputs")
        if not isinstance(inputs, dict):
            continue
        texts = [inputs[k] for k in wanted if isinstance(inputs.get(k), str) and inputs[k]]
        if texts:
            return "\n".join(dict.fromkeys(texts))
        queue.extend(value for value in inputs.values() if isinstance(value, list))
    return None


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), node_id) if node_id.isdigit() else (1 << 62, node_id)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
