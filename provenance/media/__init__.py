"""Safe decoding of image files into one canonical form.

Every consumer (hashes now, embedders later) works on the same decoded pixels: 8-bit RGB,
EXIF orientation applied, transparency composited over white, 16-bit samples scaled (not
clipped) to 8 bits, and the first frame of animations and multi-page files. Decoding is
the expensive part of fingerprinting, so it happens once per file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFile, PngImagePlugin, UnidentifiedImageError

from provenance.domain import ColourPolicy
from provenance.errors import CorruptMedia, ImageTooLarge, UnsupportedMedia
from provenance.media import vfx
from provenance.media.limits import within_limit

logger = logging.getLogger(__name__)

DEFAULT_COLOUR = ColourPolicy()

# Formats we accept, as Pillow names them (MPO is how Pillow names some camera JPEGs; HEIF
# comes from the pillow-heif plugin), and the VFX stills read with OpenImageIO
# (``media.vfx``).
SUPPORTED_FORMATS = frozenset(
    {"PNG", "JPEG", "MPO", "WEBP", "TIFF", "BMP", "GIF", "AVIF", "HEIF", "OpenEXR", "DPX"}
)
# ISO base media brands of HEIF pictures, read through pillow-heif.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})

# A truncated file must fail, never decode to a half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow's warnings (damaged EXIF, a truncated TIFF tag) are raised as errors while decoding
# (see decode_image), and so are among the damage they stand for.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
    zlib.error,
    EOFError,
    IndexError,
    Warning,
)
# PNG text chunks (a ComfyUI workflow can be megabytes) are read up to this size each;
# Pillow's own default refuses any over 1 MiB as if the file were damaged.
MAX_PNG_TEXT_BYTES = 16 * 1024 * 1024
PngImagePlugin.MAX_TEXT_CHUNK = MAX_PNG_TEXT_BYTES
PngImagePlugin.MAX_TEXT_MEMORY = 4 * MAX_PNG_TEXT_BYTES


@dataclass
class DecodedImage:
    """A file's canonical pixels and what was learnt about it while decoding."""

    pixels: Image.Image
    format: str
    width: int
    height: int
    mode: str
    bit_depth: int
    frame_count: int
    has_alpha: bool
    orientation: int
    info: dict[str, Any] = field(default_factory=dict)
    exif: dict[int, Any] = field(default_factory=dict)
    xmp: bytes | None = None
    draft_scale: int = 1
    # VFX stills: the OCIO transform that made the pixels display-referred (or why none
    # was needed), the layer fingerprinted and every other part or layer of the file.
    colour: dict[str, Any] | None = None
    layer: str | None = None
    other_layers: list[str] = field(default_factory=list)
    # What an OpenEXR frame says of the sequence it belongs to (None: it does not say).
    frame_rate: str | None = None
    timecode: str | None = None

    def media_json(self) -> dict[str, Any]:
        facts = {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "bit_depth": self.bit_depth,
            "frames": self.frame_count,
            "has_alpha": self.has_alpha,
            "exif_orientation": self.orientation,
        }
        if self.colour is not None:
            facts["colour"] = self.colour
        if self.layer is not None:
            facts["layer"] = self.layer
            facts["other_layers"] = self.other_layers
        return facts


def decode_image(
    data: bytes,
    *,
    max_pixels: int,
    draft_min_side: int | None = None,
    colour: ColourPolicy = DEFAULT_COLOUR,
) -> DecodedImage:
    """Decode ``data`` into canonical RGB pixels.

    ``draft_min_side``: for JPEG, let the decoder scale down by 1/2, 1/4 or 1/8 while the
    shorter side stays at or above this many pixels (DCT-domain scaling, several times
    faster). None decodes at full size.

    ``colour``: how OpenEXR and DPX pixels are made display-referred (``media.colour``).

    Raises UnsupportedMedia (not an image, or a format we do not take), ImageTooLarge
    (over ``max_pixels``) or CorruptMedia (truncated or damaged data).
    """
    with _warnings_are_damage():
        kind = vfx.kind_of(data)
        if kind is not None:
            return _decode_vfx(data, kind, max_pixels, colour)
        return _decode(data, max_pixels=max_pixels, draft_min_side=draft_min_side)


def check_picture(data: bytes, *, max_pixels: int) -> tuple[int, int]:
    """The (width, height) of a picture found whole: every pixel is read, as
    ``decode_image`` reads it, but an OpenEXR or DPX is not made display-referred (its
    colour conversion is most of its cost). Raises what ``decode_image`` raises."""
    kind = vfx.kind_of(data)
    if kind is None:
        decoded = decode_image(data, max_pixels=max_pixels)
        return decoded.width, decoded.height
    with _warnings_are_damage():
        return vfx.check(data, kind, max_pixels=max_pixels)


@contextlib.contextmanager
def _warnings_are_damage() -> Iterator[None]:
    """A warning while decoding is damage: one line of error, never a stray warning line.
    Pillow's decompression-bomb warning is ignored: our own pixel limit applies."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            yield
        except Warning as exc:
            raise CorruptMedia(f"damaged image data: {exc}") from None


# Text tags of VFX headers and movie containers that say what EXIF says in a still.
_TAG_AS_EXIF = {
    "software": 0x0131,
    "imagedescription": 0x010E,
    "comment": 0x010E,
    "comments": 0x010E,
    "description": 0x010E,
    "artist": 0x013B,
    "owner": 0x013B,
    "author": 0x013B,
    "copyright": 0x8298,
}


def tags_as_exif(tags: dict[str, str]) -> dict[int, Any]:
    """The EXIF tags (Software, ImageDescription, Artist, Copyright) that a file's text
    tags stand for, so that the EXIF reader reads a movie or an OpenEXR like a still."""
    found: dict[int, Any] = {}
    for key, value in tags.items():
        tag = _TAG_AS_EXIF.get(key.lower())
        if tag is not None and tag not in found:
            found[tag] = value
    return found


def _decode_vfx(data: bytes, kind: str, max_pixels: int, colour: ColourPolicy) -> DecodedImage:
    still = vfx.read(data, kind, max_pixels=max_pixels, policy=colour)
    return DecodedImage(
        pixels=still.pixels,
        format=still.format,
        width=still.width,
        height=still.height,
        mode=still.sample_type,
        bit_depth=still.bit_depth,
        frame_count=1,
        has_alpha=still.has_alpha,
        orientation=1,
        info=dict(still.header),
        exif=tags_as_exif(still.header),
        colour=still.colour,
        layer=still.layer,
        other_layers=still.others,
        frame_rate=still.frame_rate,
        timecode=still.timecode,
    )


def _decode(data: bytes, *, max_pixels: int, draft_min_side: int | None) -> DecodedImage:
    # Again on every call: a library imported later (WeasyPrint, for PDFs) turns Pillow's
    # process-wide switch on, and a truncated file would then decode half grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if not data:
        raise UnsupportedMedia("empty file (0 bytes)")
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        _register_heif()
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image has more than {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise UnsupportedMedia("not a recognised image file") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged image header: {exc}") from None

    fmt = image.format or "unknown"
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedMedia(
            f"{fmt} images are not supported; supported: {', '.join(sorted(SUPPORTED_FORMATS))}"
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"image has no pixels ({width}x{height})")
    within_limit(width, height, max_pixels)
    if fmt == "PNG":
        _verify_png_checksums(data)
    mode = image.mode
    try:
        frame_count = int(getattr(image, "n_frames", 1))
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged frame data: {exc}") from None
    try:
        exif_data = image.getexif()
        exif = {**dict(exif_data), **exif_data.get_ifd(0x8769)}  # IFD0 and the Exif IFD
    except _DECODE_ERRORS:
        exif = {}  # damaged EXIF loses the metadata, not the picture
    orientation = exif.get(0x0112, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1

    draft_scale = 1
    if draft_min_side and fmt in {"JPEG", "MPO"} and mode in {"RGB", "L", "CMYK"}:
        shorter = min(width, height)
        if shorter >= 2 * draft_min_side:
            factor = draft_min_side / shorter
            requested = (max(1, int(width * factor + 0.999)), max(1, int(height * factor + 0.999)))
            try:
                image.draft(mode, requested)
            except _DECODE_ERRORS as exc:
                raise CorruptMedia(f"damaged image data: {exc}") from None
            draft_scale = max(1, round(width / image.size[0]))

    try:
        image.load()
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image has more than {max_pixels:,} pixels") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged or truncated image data: {exc}") from None

    # PNG text chunks after the image data are only in ``info`` once the image is loaded.
    info = {key: value for key, value in image.info.items() if isinstance(key, str)}
    xmp = info.get("xmp") if isinstance(info.get("xmp"), bytes) else None
    if xmp is None and isinstance(info.get("XML:com.adobe.xmp"), str):
        xmp = info["XML:com.adobe.xmp"].encode("utf-8")
    has_alpha = image.mode in {"RGBA", "LA", "La", "RGBa", "PA"} or (
        image.mode == "P" and "transparency" in image.info
    )
    bit_depth = _bit_depth(image)
    try:
        pixels = _apply_orientation(_canonical_rgb(image), orientation)
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"cannot convert image data: {exc}") from None
    return DecodedImage(
        pixels=pixels,
        format="JPEG" if fmt == "MPO" else fmt,
        width=width,
        height=height,
        mode=mode,
        bit_depth=bit_depth,
        frame_count=frame_count,
        has_alpha=has_alpha,
        orientation=orientation,
        info=info,
        exif=exif,
        xmp=xmp,
        draft_scale=draft_scale,
    )


@functools.cache
def _register_heif() -> None:
    """Let Pillow open HEIF (HEIC) pictures: pillow-heif's plugin, loaded on first use."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _verify_png_checksums(data: bytes) -> None:
    """Check every chunk's CRC: Pillow decodes damaged image data without complaint, and a
    damaged file must not be registered as if it were the picture its author made."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.open(io.BytesIO(data)).verify()
    except Image.DecompressionBombError:
        return  # reported by the caller's own size check
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged PNG data: {exc}") from None


def _bit_depth(image: Image.Image) -> int:
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        return 16
    if image.mode == "F":
        return 32
    if image.mode == "1":
        return 1
    return 8


def _canonical_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of ``image``: alpha over white, high bit depths scaled, not clipped."""
    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        # Pillow's own I;16 -> L conversion clips at 255, turning most of a 16-bit image white.
        array = np.asarray(image, dtype=np.uint32)
        peak = int(array.max()) if array.size else 0
        shift = 8 if peak > 255 or mode != "I" else 0
        gray = np.clip(array >> shift, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float32))
        scale = 255.0 if float(array.max(initial=0.0)) <= 1.0 else 1.0
        gray = np.clip(array * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in {"LA", "La", "PA", "RGBa"}:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    if mode == "RGB":
        return image
    return image.convert("RGB")


_ORIENTATION_OPS = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    for op in _ORIENTATION_OPS.get(orientation, ()):
        image = image.transpose(op)
    return image


def regions(image: Image.Image) -> dict[str, Image.Image]:
    """Crops searched besides the whole picture: the four corners at 60 % of each side and
    the centre at 50 %. A reference pasted over a quarter of a scene lies inside one of
    them wherever it sits, and the five fit one batch."""
    width, height = image.size
    cw, ch = int(width * 0.6), int(height * 0.6)
    crops = {
        "corner-tl": (0, 0, cw, ch),
        "corner-tr": (width - cw, 0, width, ch),
        "corner-bl": (0, height - ch, cw, height),
        "corner-br": (width - cw, height - ch, width, height),
        "centre": (width // 4, height // 4, width - width // 4, height - height // 4),
    }
    found = {}
    for name, box in crops.items():
        if box[2] <= box[0] + 8 or box[3] <= box[1] + 8:
            continue
        crop = image.crop(box)
        if _has_content(crop):
            found[name] = crop
    return found


def _windows() -> dict[str, tuple[float, float, float, float]]:
    """Windows pooled from one pass's feature map (``region_method = windows``): squares of
    40 % of each side on a 4 x 4 grid and of 60 % on a 3 x 3 grid, named ``win<side>-<left>-
    <top>`` in percent."""
    found = {}
    for side, steps in ((40, (0, 20, 40, 60)), (60, (0, 20, 40))):
        for left in steps:
            for top in steps:
                found[f"win{side}-{left}-{top}"] = (
                    left / 100,
                    top / 100,
                    (left + side) / 100,
                    (top + side) / 100,
                )
    return found


WINDOWS = _windows()

# Where each region of ``regions`` and each window lies, as fractions of the picture (left,
# top, right, bottom): for outlining a matched region over the picture.
REGION_BOXES = {
    "whole": (0.0, 0.0, 1.0, 1.0),
    "corner-tl": (0.0, 0.0, 0.6, 0.6),
    "corner-tr": (0.4, 0.0, 1.0, 0.6),
    "corner-bl": (0.0, 0.4, 0.6, 1.0),
    "corner-br": (0.4, 0.4, 1.0, 1.0),
    "centre": (0.25, 0.25, 0.75, 0.75),
    **WINDOWS,
}


# A crop whose grey levels vary less than this (standard deviation, 0-255) is plain
# background: it carries no evidence of copying, and plain crops of unrelated images match
# plain references.
MIN_REGION_CONTRAST = 12.0


def _has_content(crop: Image.Image) -> bool:
    grey = np.asarray(crop.convert("L").resize((32, 32)), dtype=np.float32)
    return float(grey.std()) >= MIN_REGION_CONTRAST
