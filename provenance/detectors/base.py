"""What every detector is: a spec and a way to turn decoded images into vectors.

The spec names everything that changes a detector's vectors (model, weights checksum,
preprocessing, dimension, metric). It is stored with every vector, index and check, and an
index built under one spec is never searched with vectors made under another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

METRICS = ("cosine", "hamming")


@dataclass(frozen=True)
class DetectorSpec:
    """Everything that determines a detector's vectors."""

    name: str
    model: str
    weights_sha256: str
    dim: int
    metric: str
    preprocess: str

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {self.metric!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> DetectorSpec:
        return cls(**{key: document[key] for key in cls.__dataclass_fields__})

    def vector_layout(self) -> tuple[int, type[np.generic]]:
        """Columns and dtype of this detector's vectors: packed bits for Hamming detectors,
        float32 for cosine ones."""
        if self.metric == "hamming":
            return self.dim // 8, np.uint8
        return self.dim, np.float32

    def label(self) -> str:
        """A one-line, canonical spelling of the spec (for messages and keys)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


class Detector(Protocol):
    """A copy detector: images in, one vector per image out."""

    @property
    def spec(self) -> DetectorSpec: ...

    def embed(self, images: Sequence[Image.Image]) -> NDArray[Any]:
        """Vectors for ``images`` (canonical RGB), one row each, in order.

        Cosine detectors return float32 rows of unit length; Hamming detectors return the
        bits packed into uint8 rows (``dim / 8`` bytes).
        """
        ...


def file_sha256(path: Path) -> str:
    """The sha256 of a (possibly large) weights file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def l2_normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return result
