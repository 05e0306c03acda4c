"""CLIP image embeddings (open_clip): "looks like" — the same character, composition or
distinctive style re-rendered, where copy detectors see a different picture.

Weights come from open_clip's normal download of a pretrained tag (default ViT-B-32,
``laion2b_s34b_b79k``) where the network allows, or from a local checkpoint file for
air-gapped studios (setting ``clip_checkpoint``; its sha256 goes into the spec). A custom
architecture can be described by an open_clip model-config JSON (``clip_model_config``).

torch and open_clip are optional (``pip install 'provenance[clip]'``) and imported only when
the detector is built; without them, or without weights, the detector is unavailable and
says why and how to fix it.

On CPUs with bf16 matrix units (AMX), the weights are held in bf16 when the first batch's
embeddings stay within cosine 0.999 of fp32; otherwise inference stays in fp32.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from provenance.detectors.base import DetectorSpec, file_sha256, l2_normalise
from provenance.errors import DetectorUnavailable

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "pip install 'provenance[clip]' (torch==2.14.1, torchvision==0.29.1, open-clip-torch)"
)
BF16_MIN_COSINE = 0.999


class CLIPDetector:
    """open_clip image embeddings, unit length, cosine similarity."""

    def __init__(
        self,
        *,
        model: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        checkpoint: Path | None = None,
        model_config: Path | None = None,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise DetectorUnavailable(
                f"the clip detector needs torch and open-clip-torch ({exc.name} is missing): "
                f"{INSTALL_HINT}"
            ) from None
        self._torch = torch
        self.batch_size = batch_size
        torch.set_num_threads(threads or os.cpu_count() or 1)
        if model_config is not None:
            if not model_config.is_file():
                raise DetectorUnavailable(f"clip_model_config {model_config} does not exist")
            open_clip.add_model_config(model_config)
        if checkpoint is not None:
            if not checkpoint.is_file():
                raise DetectorUnavailable(
                    f"clip_checkpoint {checkpoint} does not exist; point it at a weights file"
                )
            weights = file_sha256(checkpoint)
            source = str(checkpoint)
        else:
            weights = f"open_clip pretrained tag {pretrained}"
            source = pretrained
        try:
            network, _, preprocess = open_clip.create_model_and_transforms(
                model, pretrained=source, device="cpu"
            )
        except Exception as exc:  # open_clip raises many kinds; all mean "cannot load"
            raise DetectorUnavailable(
                f"cannot load CLIP {model} weights ({type(exc).__name__}: {exc}); where there "
                "is no network, set clip_checkpoint to a local weights file"
            ) from None
        network.eval()
        self._network = network
        self._preprocess = preprocess
        self._bf16: bool | None = None
        size = getattr(network.visual, "image_size", "?")
        self.spec = DetectorSpec(
            name="clip",
            model=f"open_clip {model}",
            weights_sha256=weights,
            dim=int(network.visual.output_dim),
            metric="cosine",
            preprocess=f"open_clip transform, image size {size}",
        )

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """Unit-length float32 rows, one per image."""
        if not images:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        rows = []
        for start in range(0, len(images), self.batch_size):
            batch = self._torch.stack(
                [
                    self._preprocess(image.convert("RGB"))
                    for image in images[start : start + self.batch_size]
                ]
            )
            rows.append(self._encode(batch))
        return l2_normalise(np.concatenate(rows))

    def _encode(self, batch: Any) -> NDArray[np.float32]:
        torch = self._torch
        with torch.inference_mode():
            if self._bf16 is None:
                self._bf16 = self._switch_to_bf16_if_faithful(batch)
            if self._bf16:
                features = self._network.encode_image(batch.to(torch.bfloat16))
            else:
                features = self._network.encode_image(batch)
        return np.asarray(features.float().numpy(), dtype=np.float32)

    def _switch_to_bf16_if_faithful(self, batch: Any) -> bool:
        """On CPUs with AMX bf16 units, hold the weights in bf16 when that keeps every
        embedding of ``batch`` within cosine 0.999 of fp32. Converting the weights once is
        3-4x faster than autocast, which re-casts every weight on every call."""
        if not cpu_has_amx_bf16():
            return False
        torch = self._torch
        reference = self._network.encode_image(batch).float()
        converted = copy.deepcopy(self._network).to(torch.bfloat16)
        candidate = converted.encode_image(batch.to(torch.bfloat16)).float()
        cosine = torch.nn.functional.cosine_similarity(reference, candidate).min().item()
        logger.info("CLIP bf16 calibration: minimum cosine to fp32 %.5f", cosine)
        if cosine < BF16_MIN_COSINE:
            return False
        self._network = converted
        return True


def cpu_has_amx_bf16() -> bool:
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
