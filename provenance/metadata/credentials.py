"""Generation fields from a file's Content Credentials (C2PA manifest).

The reading always carries the manifest's summary (``raw``), whatever its validation
state: a manifest that fails validation is evidence too. Generation fields are filled only
from a manifest whose signature holds (``valid``, or ``valid but signer not trusted``):
the claim generator is the tool, the software agent of the creating action the model, and
the IPTC digital source type a setting.
"""

from __future__ import annotations

from typing import Any

from provenance.domain import MetadataReading, Source

# The actions that bring a picture into being (its generation, not a later edit).
_CREATING = ("c2pa.created", "c2pa.converted")


def reading(summary: dict[str, Any] | None) -> MetadataReading | None:
    """The reading of a Content Credentials summary; None when the file had none."""
    if summary is None:
        return None
    state = str(summary.get("validation_state", ""))
    if state.startswith("invalid"):
        return MetadataReading(Source.C2PA, {}, {}, summary)
    fields: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    if summary.get("claim_generator"):
        fields["tool"] = summary["claim_generator"]
        if summary.get("claim_generator_version"):
            fields["tool_version"] = str(summary["claim_generator_version"])
    actions = summary.get("actions") or []
    creating = [a for a in actions if a.get("action") in _CREATING] or actions
    if creating:
        first = creating[0]
        agent = first.get("software_agent")
        if agent and agent != fields.get("tool"):
            fields["model"] = agent
        if first.get("digital_source_type"):
            settings["digital_source_type"] = first["digital_source_type"]
    if summary.get("signer"):
        settings["c2pa_signer"] = summary["signer"]
    return MetadataReading(Source.C2PA, fields, settings, summary)
