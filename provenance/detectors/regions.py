"""An asset's vectors for one check: the whole picture's and its regions', per detector,
each made once. Regions are crops (``media.regions``: the corners and the centre, each
embedded) or windows (``media.WINDOWS``, pooled from SSCD's feature map of one pass)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from provenance.detectors.base import Detector
from provenance.media import WINDOWS, regions


@dataclass
class AssetVectors:
    """An asset's vectors per detector, each made once per check: the whole picture's and
    its regions' (``method`` "crops": the corners and centre embedded one by one;
    "windows": SSCD's feature map of one pass at ``size`` px pooled over WINDOWS; other
    detectors always use crops). With windows at the detector's own size, the whole
    picture and its windows come from the same pass."""

    pixels: Image.Image
    method: str = "crops"
    size: int = 320
    whole: dict[str, Any] = field(default_factory=dict)
    regions: dict[str, tuple[list[str], Any]] = field(default_factory=dict)

    def whole_vectors(self, name: str, detector: Detector) -> Any:
        if name not in self.whole:
            if self._windowed(detector) and self.size == detector.size:  # type: ignore[attr-defined]
                vector, feature_map = detector.embed_and_map(self.pixels)  # type: ignore[attr-defined]
                self.whole[name] = vector
                self.regions[name] = self._pooled(detector, feature_map)
            else:
                self.whole[name] = detector.embed([self.pixels])
        return self.whole[name]

    def region_vectors(self, name: str, detector: Detector) -> tuple[list[str], Any]:
        if name not in self.regions:
            if self._windowed(detector):
                _, feature_map = detector.embed_and_map(self.pixels, self.size)  # type: ignore[attr-defined]
                self.regions[name] = self._pooled(detector, feature_map)
            else:
                crops = regions(self.pixels)
                names = list(crops)
                vectors = detector.embed([crops[n] for n in names]) if names else None
                self.regions[name] = (names, vectors)
        return self.regions[name]

    def _windowed(self, detector: Detector) -> bool:
        return self.method == "windows" and hasattr(detector, "embed_and_map")

    @staticmethod
    def _pooled(detector: Any, feature_map: Any) -> tuple[list[str], Any]:
        return list(WINDOWS), detector.pool_windows(feature_map, list(WINDOWS.values()))
