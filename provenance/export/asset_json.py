"""An asset's record as JSON, schema ``provenance.asset/1``.

    {
      "schema": "provenance.asset/1",
      "id": 42, "sha256": "...", "size_bytes": 123, "original_name": "shot010.png",
      "store_path": "store/ab/ab12...", "media": {format, width, height, mode, bit_depth,
      frames, has_alpha, exif_orientation}, "intended_use": "background",
      "production": "name or null", "registered_by": "...", "registered_at": "ISO 8601",
      "fingerprints": [{"kind": "phash", "spec": "phash(...);imagehash=4.3.2",
                        "value": "hex", "bits": 64}],
      "generation": {"fields": {"prompt": {"value": "...", "source": "a1111"}, ...},
                     "settings": {"steps": {"value": 30, "source": "a1111"}, ...},
                     "raw": {"a1111": {...}, ...}},
      "content_credentials": provenance.content-credentials/1 or null,
      "checks": [{"check_id", "created_at", "verdict", "reasons"}],   oldest first
      "review": {"status", "reopened", "latest_decision_id",
                 "decisions": [provenance.review/1 without "schema"]}   oldest first
    }

``generation`` describes the newest generation record; every field of
``provenance.domain.GENERATION_FIELDS`` is present, null when unknown.
"""

from __future__ import annotations

from typing import Any

from provenance.db.tables import Asset, GenerationRecord
from provenance.domain import GENERATION_FIELDS
from provenance.export.documents import review_summary

ASSET_SCHEMA = "provenance.asset/1"


def asset_json(asset: Asset, *, include_raw: bool = True) -> dict[str, Any]:
    record = asset.generation_records[-1] if asset.generation_records else None
    return {
        "schema": ASSET_SCHEMA,
        "id": asset.id,
        "sha256": asset.sha256,
        "size_bytes": asset.size_bytes,
        "original_name": asset.original_name,
        "store_path": asset.store_path,
        "media": asset.media,
        "intended_use": asset.intended_use,
        "production": asset.production.name if asset.production else None,
        "registered_by": asset.registered_by,
        "registered_at": asset.registered_at.isoformat(),
        "fingerprints": [
            {"kind": f.kind, "spec": f.spec, "value": f.value, "bits": f.bits}
            for f in asset.fingerprints
        ],
        "generation": generation_json(record, include_raw=include_raw),
        # What the file's Content Credentials (C2PA) said when it was registered, or null.
        "content_credentials": (record.raw_metadata or {}).get("c2pa") if record else None,
        "checks": [
            {
                "check_id": check.id,
                "created_at": check.created_at.isoformat(),
                "verdict": check.verdict,
                "reasons": check.reasons.get("reasons", []),
                # A movie or frame sequence: the frames looked at and the ranges matched.
                **({"frames": check.reasons["frames"]} if "frames" in check.reasons else {}),
            }
            for check in asset.checks
        ],
        "review": review_summary(asset),
    }


def generation_json(record: GenerationRecord | None, *, include_raw: bool) -> dict[str, Any]:
    if record is None:
        return {"fields": dict.fromkeys(GENERATION_FIELDS), "settings": {}, "raw": {}}
    sources = record.sources or {}
    field_sources = sources.get("fields", {})
    setting_sources = sources.get("settings", {})
    values = {
        "tool": record.tool.name if record.tool else None,
        "tool_version": record.tool_version,
        "model": record.model,
        "model_version": record.model_version,
        "model_hash": record.model_hash,
        "prompt": record.prompt,
        "negative_prompt": record.negative_prompt,
        "seed": int(record.seed) if record.seed and record.seed.isdigit() else record.seed,
    }
    fields = {
        name: (
            None
            if values[name] is None
            else {"value": values[name], "source": field_sources.get(name)}
        )
        for name in GENERATION_FIELDS
    }
    settings = {
        key: {"value": value, "source": setting_sources.get(key)}
        for key, value in (record.settings or {}).items()
    }
    document: dict[str, Any] = {"fields": fields, "settings": settings}
    if include_raw:
        document["raw"] = record.raw_metadata
    return document
