"""VFX stills made in the tests from the sample photographs, with the libraries studios'
tools write them with: OpenEXR (the Academy's own bindings) and DPX (OpenImageIO)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

ACESCG = (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)


def linear(image: Image.Image) -> NDArray[np.float32]:
    """An sRGB picture as scene-linear Rec.709 light (the inverse of the sRGB curve)."""
    encoded = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4).astype(
        np.float32
    )


def write_exr(
    path: Path,
    image: Image.Image,
    *,
    half: bool = True,
    alpha: bool = False,
    extra: dict[str, NDArray[Any]] | None = None,
    header: dict[str, Any] | None = None,
    prefix: str = "",
) -> Path:
    """A single-part OpenEXR of ``image`` in linear light; ``extra`` channels beside it."""
    import OpenEXR

    light = linear(image).astype(np.float16 if half else np.float32)
    channels: dict[str, NDArray[Any]] = {
        f"{prefix}{name}": light[..., i].copy() for i, name in enumerate("RGB")
    }
    if alpha:
        channels[f"{prefix}A"] = np.ones(light.shape[:2], dtype=light.dtype)
    channels.update(extra or {})
    fields = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File({**fields, **(header or {})}, channels).write(str(path))
    return path


def write_multipart_exr(path: Path, image: Image.Image) -> Path:
    """A two-part OpenEXR: a normals pass first, the beauty second."""
    import OpenEXR

    light = linear(image).astype(np.float16)
    height, width = light.shape[:2]
    normals = OpenEXR.Part(
        {"name": "normals"},
        {f"N.{axis}": np.zeros((height, width), np.float32) for axis in "XYZ"},
    )
    beauty = OpenEXR.Part(
        {"name": "beauty"}, {name: light[..., i].copy() for i, name in enumerate("RGB")}
    )
    OpenEXR.File([normals, beauty]).write(str(path))
    return path


def write_dpx(path: Path, image: Image.Image, *, bits: int = 10, transfer: str = "") -> Path:
    """A DPX of ``image``'s own (display-referred) code values, at ``bits`` per sample."""
    import OpenImageIO as oiio

    values = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    spec = oiio.ImageSpec(image.width, image.height, 3, "uint16" if bits > 8 else "uint8")
    spec.attribute("oiio:BitsPerSample", bits)
    if transfer:
        spec.attribute("dpx:Transfer", transfer)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None, oiio.geterror()
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(values), out.geterror()
    out.close()
    return path


def write_movie(
    path: Path,
    pictures: list[Image.Image],
    *,
    codec: str = "libx264",
    pixel_format: str = "yuv420p",
    size: tuple[int, int] = (320, 240),
    rate: int = 24,
    tags: dict[str, str] | None = None,
) -> Path:
    """A movie of ``pictures``, one per frame, written with PyAV (FFmpeg inside)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = pixel_format
        for key, value in (tags or {}).items():
            container.metadata[key] = value
        for picture in pictures:
            if picture.mode == "RGBA":  # a matte: from_image would drop it
                frame = av.VideoFrame.from_ndarray(np.asarray(picture.resize(size)), format="rgba")
            else:
                frame = av.VideoFrame.from_image(picture.convert("RGB").resize(size))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
