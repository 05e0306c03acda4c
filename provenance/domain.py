"""Plain values of the domain. Imports nothing heavy: no SQLAlchemy, torch, faiss or Pillow."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from provenance.errors import UnknownIntendedUse


class IntendedUse(enum.StrEnum):
    """What a generated asset is for; it decides what the studio's rules require."""

    IDEATION = "ideation"
    PREVIZ = "previz"
    BACKGROUND = "background"
    KEY_CREATIVE = "key-creative"
    TALENT_LIKENESS = "talent-likeness"
    FINAL_DELIVERABLE = "final-deliverable"
    # Recorded when nobody declared a use; never accepted from --use.
    UNDECLARED = "undeclared"

    @property
    def description(self) -> str:
        return _USE_DESCRIPTIONS[self]

    @classmethod
    def declarable(cls) -> list[IntendedUse]:
        """The uses an artist may declare (everything but ``undeclared``)."""
        return [use for use in cls if use is not cls.UNDECLARED]

    @classmethod
    def parse(cls, text: str) -> IntendedUse:
        """Return the declared use named by ``text``; refuse anything else with the list."""
        normalised = text.strip().lower().replace("_", "-")
        for use in cls.declarable():
            if use.value == normalised:
                return use
        choices = ", ".join(use.value for use in cls.declarable())
        raise UnknownIntendedUse(f"unknown intended use {text!r}; choose one of: {choices}")


_USE_DESCRIPTIONS = {
    IntendedUse.IDEATION: "mood board, concept sketch, pitch, early experiment",
    IntendedUse.PREVIZ: "temporary or previsualisation material, not meant for the final cut",
    IntendedUse.BACKGROUND: "incidental background element (signage, posters, set dressing)",
    IntendedUse.KEY_CREATIVE: "main character, story-critical visual or central setting",
    IntendedUse.TALENT_LIKENESS: "a performer's face, voice or performance",
    IntendedUse.FINAL_DELIVERABLE: "material that appears in the final deliverable",
    IntendedUse.UNDECLARED: "no intended use was declared at registration",
}


class Source(enum.StrEnum):
    """Where a generation value came from, in rising order of precedence."""

    EXIF = "exif"  # EXIF and XMP fields
    A1111 = "a1111"
    COMFYUI = "comfyui"
    INVOKEAI = "invokeai"
    SIDECAR = "sidecar"
    METADATA_FILE = "metadata-file"
    C2PA = "c2pa"  # a Content Credentials manifest that validates (signed by the maker)
    FLAG = "flag"


# The generation fields every record has; anything else a tool writes goes into settings.
GENERATION_FIELDS: tuple[str, ...] = (
    "tool",
    "tool_version",
    "model",
    "model_version",
    "model_hash",
    "prompt",
    "negative_prompt",
    "seed",
)


@dataclass(frozen=True)
class Sourced:
    """A value and the source it was read from."""

    value: Any
    source: Source

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source.value}


@dataclass(frozen=True)
class MetadataReading:
    """What one metadata source found in or beside a file."""

    source: Source
    fields: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    raw: Any = None


@dataclass
class GenerationInfo:
    """How an asset was made, each value with its source."""

    fields: dict[str, Sourced] = field(default_factory=dict)
    settings: dict[str, Sourced] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def merge(cls, readings: list[MetadataReading]) -> GenerationInfo:
        """Combine readings; a later reading's value replaces an earlier one's."""
        info = cls()
        for reading in readings:
            for name, value in reading.fields.items():
                if value is not None and value != "":
                    info.fields[name] = Sourced(value, reading.source)
            for name, value in reading.settings.items():
                if value is not None:
                    info.settings[name] = Sourced(value, reading.source)
            if reading.raw is not None:
                info.raw[reading.source.value] = reading.raw
        return info

    def value(self, name: str) -> Any:
        sourced = self.fields.get(name)
        return None if sourced is None else sourced.value


@dataclass(frozen=True)
class Fingerprint:
    """One fingerprint of an asset: an exact or perceptual hash, labelled with its spec."""

    kind: str
    spec: str
    value: str
    bits: int


@dataclass(frozen=True)
class ColourPolicy:
    """How scene-linear and log pictures (OpenEXR, DPX) are made display-referred: an
    OpenColorIO config (a built-in config's name or a ``config.ocio`` file), the
    colourspace assumed for linear and for log pixels when the file does not say, and the
    display and view converted to."""

    config: str = "studio-config-v5.0.0_aces-v2.1_ocio-v2.6"
    linear: str = "Linear Rec.709 (sRGB)"
    log: str = "ADX10"
    display: str = "sRGB - Display"
    view: str = "Un-tone-mapped"


@dataclass(frozen=True)
class FingerprintLimits:
    """The settings a fingerprinting worker needs, as plain values that pickle."""

    max_file_bytes: int
    max_pixels: int
    hash_names: tuple[str, ...]
    colour: ColourPolicy = ColourPolicy()
    max_movie_bytes: int = 100 * 1024 * 1024 * 1024
    # PEM of the roots Content Credentials are validated against (empty: none trusted).
    trust_anchors: str = ""


@dataclass(frozen=True)
class UserInfo:
    """A user of the workspace: name, role, and whether and when a token was issued (times
    as ISO 8601 text, to the second)."""

    name: str
    role: str
    has_token: bool
    token_issued_at: str | None
    created_at: str | None
    disabled_at: str | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Decision:
    """A recorded review decision; as JSON, ``provenance.review/1``. ``evidence`` is what the
    decided check showed (verdict, reasons, thresholds, strongest matches), kept as it was."""

    review_id: int
    asset_id: int
    seq: int
    check_id: int
    check_verdict: str
    decision: str
    outcome: str
    rationale: str
    decided_by: str
    role: str
    decided_at: dt.datetime
    previous_id: int | None
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        # The fields in their order; the time as ISO 8601 text where it stands.
        document = {"schema": "provenance.review/1", **dataclasses.asdict(self)}
        document["decided_at"] = self.decided_at.isoformat()
        return document


@dataclass(frozen=True)
class ReferenceItemInfo:
    """One picture of a reference set: its id, content hash, where it came from, its credit."""

    id: int
    sha256: str
    source_path: str
    attribution: str | None


@dataclass(frozen=True)
class ReferenceSetInfo:
    """An active reference set: what it is, its rights, how many items it holds, and (when
    asked for) the items themselves (``item_list``; None when not asked for)."""

    name: str
    description: str
    rights_status: str
    rights_holder: str | None
    source: str | None
    created_at: dt.datetime
    items: int
    item_list: list[ReferenceItemInfo] | None = None

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["created_at"] = self.created_at.isoformat()
        if self.item_list is None:
            del document["item_list"]
        return document
