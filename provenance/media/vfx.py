"""VFX stills: OpenEXR (half and float, multi-part, multi-layer) and DPX (8 to 16 bits),
read with OpenImageIO and made display-referred with OpenColorIO (``media.colour``).

From an OpenEXR file one layer is fingerprinted, the beauty: the unprefixed R, G, B (and
A) channels of the first part that has them, else a layer named beauty, rgba, combined or
rgb, else the first layer with R, G and B, else a luminance (Y) channel; every other part
and layer is listed in the media facts. Alpha is composited over white in linear light,
as the stills' pipeline composites over white."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from provenance.domain import ColourPolicy
from provenance.errors import CorruptMedia, UnsupportedMedia
from provenance.media import colour
from provenance.media.limits import within_limit

T = TypeVar("T")

EXR_MAGIC = b"\x76\x2f\x31\x01"
DPX_MAGICS = (b"SDPX", b"XPDS")  # big-endian, little-endian

# Layer names (the last part of a channel's prefix, lower case) taken for the beauty.
BEAUTY_NAMES = ("beauty", "rgba", "combined", "rgb")

# EXR chromaticities (red, green, blue, white xy) that name a colourspace by themselves.
_PRIMARIES = {
    "ACES2065-1": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767),
    "ACEScg": (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767),
    "Linear Rec.709 (sRGB)": (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329),
}

# Header attributes that are the reader's own bookkeeping, not what a tool wrote.
_OWN_ATTRIBUTES = ("oiio:", "openexr:", "dpx:DittoKey", "dpx:EndOf")


def kind_of(data: bytes) -> str | None:
    """ "OpenEXR" or "DPX" from the file's first bytes; None for anything else."""
    if data[:4] == EXR_MAGIC:
        return "OpenEXR"
    if data[:4] in DPX_MAGICS:
        return "DPX"
    return None


@dataclass
class VfxStill:
    """A VFX still's display-referred pixels and what was learnt reading it."""

    pixels: Image.Image
    format: str
    width: int
    height: int
    bit_depth: int
    sample_type: str
    has_alpha: bool
    layer: str
    colour: dict[str, Any]
    others: list[str] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    frame_rate: str | None = None  # "24", "24000/1001": OpenEXR framesPerSecond
    timecode: str | None = None  # "01:02:03:04": the SMPTE time code in the header


def read(data: bytes, kind: str, *, max_pixels: int, policy: ColourPolicy) -> VfxStill:
    """Decode an OpenEXR or DPX file's bytes (see ``kind_of``)."""
    return _with_file(data, kind, lambda name: _read(name, kind, max_pixels, policy))


def check(data: bytes, kind: str, *, max_pixels: int) -> tuple[int, int]:
    """Read every pixel of an OpenEXR or DPX file's beauty, as ``read`` does, without
    converting them: the (width, height) of a file that is whole, else the error ``read``
    would raise. For the frames of a sequence after its first."""
    return _with_file(data, kind, lambda name: _pixels(name, kind, max_pixels)[1:3])


def _with_file(data: bytes, kind: str, work: Callable[[str], T]) -> T:
    # OpenImageIO reads files; the bytes are in memory already, so a private temporary file
    # costs one write and is gone when this returns.
    handle, name = tempfile.mkstemp(suffix=".exr" if kind == "OpenEXR" else ".dpx")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return work(name)
    finally:
        os.unlink(name)


def _read(name: str, kind: str, max_pixels: int, policy: ColourPolicy) -> VfxStill:
    picked, width, height, parts, part, layer = _pixels(name, kind, max_pixels)
    spec = parts[part]
    attributes = {a.name: a.value for a in spec.extra_attribs}
    rgb, has_alpha = _composited(picked)
    source, why = _colourspace(kind, attributes, policy)
    if source is None:
        described: dict[str, Any] = {"display_referred": True, "chosen_by": why}
        pixels = colour.to_bytes(rgb)
    else:
        described = colour.describe(policy, source, why)
        pixels = colour.to_display(rgb, policy, source)
    sample_type = str(spec.format)
    bits = attributes.get("oiio:BitsPerSample")
    return VfxStill(
        pixels=Image.fromarray(pixels, "RGB"),
        format=kind,
        width=width,
        height=height,
        bit_depth=int(bits) if isinstance(bits, int) else _BITS.get(sample_type, 32),
        sample_type=sample_type,
        has_alpha=has_alpha,
        layer=layer,
        colour=described,
        others=_others(parts, part, layer),
        header={
            str(key): str(value)[:10_000]
            for key, value in attributes.items()
            if isinstance(value, str) and not str(key).startswith(_OWN_ATTRIBUTES)
        },
        frame_rate=_rate(attributes.get("FramesPerSecond")),
        timecode=_timecode(attributes.get("smpte:TimeCode")),
    )


def _rate(value: Any) -> str | None:
    """A rational frame rate (numerator, denominator) as text: "24", "24000/1001"."""
    if not isinstance(value, tuple) or len(value) != 2 or not all(value) or value[1] < 0:
        return None
    numerator, denominator = int(value[0]), int(value[1])
    return str(numerator) if denominator == 1 else f"{numerator}/{denominator}"


def _timecode(value: Any) -> str | None:
    """An SMPTE time code (SMPTE 12M, packed BCD; the user bits beside it) as
    "HH:MM:SS:FF", with ";" before the frames when it counts drop frames."""
    if not isinstance(value, tuple) or not value or not isinstance(value[0], int):
        return None
    packed = value[0]

    def bcd(shift: int, tens_bits: int) -> int:
        return ((packed >> (shift + 4)) & ((1 << tens_bits) - 1)) * 10 + ((packed >> shift) & 15)

    frames, seconds, minutes, hours = bcd(0, 2), bcd(8, 3), bcd(16, 3), bcd(24, 2)
    drop = ";" if packed & (1 << 6) else ":"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{drop}{frames:02d}"


def _pixels(
    name: str, kind: str, max_pixels: int
) -> tuple[NDArray[np.float32], int, int, list[Any], int, str]:
    """The beauty's channels as floats (H x W x channels), its size, every part's spec, the
    part taken and the layer's name."""
    import OpenImageIO as oiio

    image = oiio.ImageInput.open(name)
    if image is None:
        raise CorruptMedia(f"damaged {kind} header: {_first_line(oiio.geterror())}")
    try:
        parts: list[Any] = []
        while image.seek_subimage(len(parts), 0):
            parts.append(image.spec())
        if not parts:
            raise CorruptMedia(f"damaged {kind} header: no image in the file")
        part, channels, layer = _beauty(parts, kind)
        spec = parts[part]
        width, height = int(spec.width), int(spec.height)
        if width <= 0 or height <= 0:
            raise CorruptMedia(f"image has no pixels ({width}x{height})")
        within_limit(width, height, max_pixels)
        first, last = min(channels), max(channels)
        block = image.read_image(part, 0, first, last + 1, "float")
        if block is None:
            raise CorruptMedia(f"damaged or truncated {kind} data: {_first_line(image.geterror())}")
        block = np.asarray(block, dtype=np.float32).reshape(height, width, -1)
        wanted = [c - first for c in channels]
        # The usual R, G, B (and A) side by side are taken as read, without a copy.
        picked = block if wanted == list(range(block.shape[2])) else block[..., wanted]
    finally:
        image.close()
    return picked, width, height, parts, part, layer


_BITS = {"uint8": 8, "uint16": 16, "half": 16, "float": 32, "uint32": 32}


def _beauty(parts: list[Any], kind: str) -> tuple[int, list[int], str]:
    """(part index, channel indexes R G B [A] or Y, layer name) of the picture to take."""
    layers: list[tuple[int, int, str, dict[str, int]]] = []  # (rank, part, name, channels)
    for index, spec in enumerate(parts):
        grouped: dict[str, dict[str, int]] = {}
        for position, channel in enumerate(spec.channelnames):
            prefix, _, suffix = str(channel).rpartition(".")
            grouped.setdefault(prefix, {})[suffix.upper()] = position
        for prefix, found in grouped.items():
            if {"R", "G", "B"} <= found.keys():
                last = prefix.rpartition(".")[2].lower()
                rank = 0 if not prefix else 1 if last in BEAUTY_NAMES else 2
            elif "Y" in found:
                rank = 3
            else:
                continue
            layers.append((rank, index, prefix, found))
    if not layers:
        names = sorted({str(c) for spec in parts for c in spec.channelnames})
        raise UnsupportedMedia(
            f"{kind} file has no RGB or luminance (Y) layer to fingerprint; its channels: "
            f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}"
        )
    rank, part, prefix, found = min(layers, key=lambda layer: (layer[0], layer[1]))
    keys = ["Y"] if rank == 3 else ["R", "G", "B"]
    if "A" in found:
        keys.append("A")
    part_name = str(parts[part].getattribute("name") or "") if len(parts) > 1 else ""
    label = ".".join(n for n in (part_name, prefix) if n) or "RGBA"
    return part, [found[k] for k in keys], label


def _others(parts: list[Any], taken: int, layer: str) -> list[str]:
    """Every part and layer besides the one fingerprinted, as "part/layer" names."""
    names = []
    for index, spec in enumerate(parts):
        part_name = str(spec.getattribute("name") or "") if len(parts) > 1 else ""
        prefixes = dict.fromkeys(str(c).rpartition(".")[0] for c in spec.channelnames)
        for prefix in prefixes:
            label = ".".join(n for n in (part_name, prefix) if n) or "RGBA"
            if not (index == taken and label == layer):
                names.append(label)
    return names


def _composited(picked: NDArray[np.float32]) -> tuple[NDArray[np.float32], bool]:
    """H x W x 3 RGB from R G B [A] or Y [A]: premultiplied alpha over white."""
    channels = picked.shape[2]
    has_alpha = channels in (2, 4)
    if channels == 3:
        return picked, False
    colour_part = picked[..., :3] if channels >= 3 else np.repeat(picked[..., :1], 3, axis=2)
    if has_alpha:
        alpha = np.clip(np.nan_to_num(picked[..., -1:]), 0.0, 1.0)
        colour_part = colour_part + (1.0 - alpha)
    return np.ascontiguousarray(colour_part, dtype=np.float32), has_alpha


def _colourspace(
    kind: str, attributes: dict[str, Any], policy: ColourPolicy
) -> tuple[str | None, str]:
    """The colourspace the pixels are in and why; None for display-referred pixels."""
    if kind == "OpenEXR":
        chromaticities = attributes.get("chromaticities")
        if isinstance(chromaticities, tuple) and len(chromaticities) == 8:
            for name, primaries in _PRIMARIES.items():
                if np.allclose(chromaticities, primaries, atol=2e-3):
                    return name, "the file's chromaticities"
            return policy.linear, "setting colour_linear (the file's chromaticities are unknown)"
        return policy.linear, "setting colour_linear (OpenEXR is scene-linear)"
    transfer = str(attributes.get("dpx:Transfer", ""))
    if transfer in ("Printing density", "Logarithmic"):
        return policy.log, f"setting colour_log (the DPX header says {transfer.lower()})"
    if transfer == "Linear":
        return policy.linear, "setting colour_linear (the DPX header says linear)"
    return None, f"display-referred (the DPX header says {transfer.lower() or 'nothing'})"


def _first_line(text: str) -> str:
    line = (text or "unknown error").strip().splitlines()
    return line[0][:200] if line else "unknown error"
