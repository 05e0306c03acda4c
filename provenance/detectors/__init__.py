"""Fingerprinting detectors: exact and perceptual hashes, SSCD, CLIP.

``load_detector`` builds a configured detector by name, or raises DetectorUnavailable with
the reason and the fix; heavy libraries load only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provenance.config import parse_name_list
from provenance.detectors.base import Detector
from provenance.errors import ConfigError

DETECTOR_NAMES = ("phash", "sscd", "clip")


def parse_detector_names(text: str) -> list[str]:
    """Parse the ``detectors`` setting; refuse unknown names with the list of known ones."""
    return parse_name_list("detectors", text, DETECTOR_NAMES)


def load_detector(
    name: str, settings: Mapping[str, Any], root: Path, *, threads: int | None = None
) -> Detector:
    """The detector called ``name``, configured by ``settings`` (paths relative to the
    workspace ``root``), its model running on ``threads`` threads (default: one per core);
    DetectorUnavailable when it cannot run here."""
    if name == "clip":
        from provenance.detectors.clip import CLIPDetector

        def path(setting: str) -> Path | None:
            text = str(settings[setting]).strip()
            return (root / Path(text).expanduser()) if text else None

        return CLIPDetector(
            model=settings["clip_model"],
            pretrained=settings["clip_pretrained"],
            checkpoint=path("clip_checkpoint"),
            model_config=path("clip_model_config"),
            threads=threads,
        )
    if name == "phash":
        from provenance.detectors.hashes import PHashDetector

        return PHashDetector()
    if name == "sscd":
        from provenance.detectors.sscd import SSCDDetector

        return SSCDDetector(threads=threads)
    raise ConfigError(f"unknown detector {name!r}")
