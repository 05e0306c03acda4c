"""The sidecar JSON schema: generation metadata written beside a file by a pipeline.

A sidecar is ``<file>.json`` (``shot010.png.json``) or ``<stem>.json`` (``shot010.json``)
next to the file, or any file passed with ``--metadata``. It is one JSON object::

    {
      "schema": "provenance.sidecar/1",      optional; when present it must be this
      "tool": "comfyui",                     strings, all optional
      "tool_version": "0.3.10",
      "model": "sdxl-base-1.0",
      "model_version": "1.0",
      "model_hash": "31e35c80fc",
      "prompt": "...",
      "negative_prompt": "...",
      "seed": 1234,                          integer (or its decimal string)
      "settings": {"steps": 30, "cfg_scale": 7.0}   object of any JSON values
    }

Unknown top-level keys are refused, so a misspelt field is caught instead of being lost.

A ``<stem>.json`` is often something else that happens to share the picture's name (a
render log, a shell redirect's output): it is read as a sidecar only when it declares the
schema, and passed over with a note otherwise. ``<file>.json`` and ``--metadata`` files are
always sidecars, so their mistakes are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provenance import jsontext
from provenance.domain import GENERATION_FIELDS, MetadataReading, Source
from provenance.errors import MetadataError

SIDECAR_SCHEMA = "provenance.sidecar/1"
MAX_SIDECAR_BYTES = 4 * 1024 * 1024
_ALLOWED_KEYS = {"schema", "settings", *GENERATION_FIELDS}


def find_sidecar(path: Path, suffix: str = ".json") -> Path | None:
    """The sidecar beside ``path``, if any: ``<file>.json`` first, then ``<stem>.json``
    (or another ``suffix``: ``.c2pa`` for a Content Credentials manifest store)."""
    for candidate in (path.with_name(path.name + suffix), path.with_suffix(suffix)):
        if candidate != path and candidate.is_file():
            return candidate
    return None


def read_beside(path: Path) -> tuple[MetadataReading | None, str | None]:
    """The sidecar beside ``path`` and a note: ``(reading, None)`` for a sidecar,
    ``(None, note)`` for a ``<stem>.json`` that does not declare the schema, ``(None, None)``
    when there is none. MetadataError for a sidecar that is malformed."""
    sidecar = find_sidecar(path)
    if sidecar is None:
        return None, None
    if sidecar.name == path.name + ".json":
        return read_sidecar(sidecar), None
    try:
        document = _load(sidecar)
    except MetadataError as exc:
        return None, f"{exc}; not read as its sidecar"
    if isinstance(document, dict) and document.get("schema") == SIDECAR_SCHEMA:
        return parse_sidecar(document, sidecar.name), None
    return None, (
        f'{sidecar.name} does not declare "schema": "{SIDECAR_SCHEMA}"; not read as '
        f"its sidecar (name it {path.name}.json, or add the schema key)"
    )


def read_sidecar(path: Path, source: Source = Source.SIDECAR) -> MetadataReading:
    """Read and validate a sidecar file; MetadataError names the file and the problem."""
    return parse_sidecar(_load(path), path.name, source)


def _load(path: Path) -> Any:
    """The decoded JSON of a metadata file; MetadataError names the file and the problem."""
    try:
        size = path.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            raise MetadataError(f"{path.name}: metadata file is {size:,} bytes, over 4 MiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MetadataError(f"{path.name}: cannot read metadata file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MetadataError(f"{path.name}: metadata file is not UTF-8 text") from None
    try:
        document = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(
            f"{path.name}: not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    except jsontext.TooDeep as exc:
        raise MetadataError(f"{path.name}: {exc}") from None
    return document


def parse_sidecar(document: Any, label: str, source: Source = Source.SIDECAR) -> MetadataReading:
    """Validate a decoded sidecar document and turn it into a reading."""
    if not isinstance(document, dict):
        raise MetadataError(f"{label}: metadata must be a JSON object")
    schema = document.get("schema", SIDECAR_SCHEMA)
    if schema != SIDECAR_SCHEMA:
        raise MetadataError(f"{label}: schema {schema!r} is not {SIDECAR_SCHEMA!r}")
    unknown = sorted(set(document) - _ALLOWED_KEYS)
    if unknown:
        raise MetadataError(
            f"{label}: unknown key(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(_ALLOWED_KEYS))}"
        )
    fields: dict[str, Any] = {}
    for name in GENERATION_FIELDS:
        if name not in document or document[name] is None:
            continue
        value = document[name]
        fields[name] = parse_seed(value, label) if name == "seed" else _text(name, value, label)
    settings = document.get("settings", {})
    if not isinstance(settings, dict):
        raise MetadataError(f"{label}: 'settings' must be a JSON object")
    return MetadataReading(source, fields, dict(settings), document)


def parse_seed(value: Any, label: str) -> int:
    """A seed is a non-negative integer (ComfyUI's go up to 2**64 - 1)."""
    if isinstance(value, bool):
        raise MetadataError(f"{label}: seed must be an integer, not {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0 or value >= 2**64:
        raise MetadataError(f"{label}: seed must be an integer from 0 to 2**64-1, not {value!r}")
    return value


def _text(name: str, value: Any, label: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise MetadataError(f"{label}: {name!r} must be a string")
    return str(value)
