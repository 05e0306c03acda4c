"""Decoding real images in every supported format into one canonical form."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from provenance.detectors.hashes import perceptual_hashes
from provenance.errors import CorruptMedia, ImageTooLarge, UnsupportedMedia
from provenance.media import decode_image
from tests import filemakers as fm

LIMIT = 150_000_000


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def phash(image: Image.Image) -> imagehash.ImageHash:
    return imagehash.phash(image)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP", "WEBP"])
def test_lossless_formats_decode_to_identical_pixels(fmt: str) -> None:
    original = fm.sample("chelsea.png")
    options = {"lossless": True} if fmt == "WEBP" else {}
    decoded = decode_image(encode(original, fmt, **options), max_pixels=LIMIT)
    assert decoded.format == fmt
    assert (decoded.width, decoded.height) == original.size
    assert decoded.pixels.mode == "RGB"
    assert np.array_equal(np.asarray(decoded.pixels), np.asarray(original))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_keep_the_picture(fmt: str) -> None:
    original = fm.sample("chelsea.png")
    decoded = decode_image(encode(original, fmt, quality=85), max_pixels=LIMIT)
    assert decoded.format == fmt
    assert phash(decoded.pixels) - phash(original) <= 4


def test_gif_first_frame_of_an_animation() -> None:
    first = fm.sample("chelsea.png").quantize(colors=256, dither=Image.Dither.NONE)
    second = fm.sample("coffee.jpg").resize(first.size).quantize(colors=256)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    decoded = decode_image(data, max_pixels=LIMIT)
    assert decoded.frame_count == 2
    assert np.array_equal(np.asarray(decoded.pixels), np.asarray(first.convert("RGB")))


def test_multipage_tiff_first_page() -> None:
    first, second = fm.sample("camera.png"), fm.sample("coffee.jpg").resize((512, 512))
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    decoded = decode_image(data, max_pixels=LIMIT)
    assert decoded.frame_count == 2
    assert np.array_equal(np.asarray(decoded.pixels), np.asarray(first))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_scaled_not_clipped(fmt: str) -> None:
    eight_bit = np.asarray(Image.open(fm.SAMPLES / "camera.png"))
    sixteen = Image.fromarray(eight_bit.astype(np.uint16) * 257)
    assert sixteen.mode == "I;16"
    decoded = decode_image(encode(sixteen, fmt), max_pixels=LIMIT)
    assert decoded.bit_depth == 16
    assert np.array_equal(np.asarray(decoded.pixels.convert("L")), eight_bit)
    # The same picture in 8 and 16 bits gets the same fingerprints.
    names = ["phash", "dhash", "whash", "colorhash"]
    assert perceptual_hashes(decoded.pixels, names) == perceptual_hashes(
        Image.fromarray(eight_bit).convert("RGB"), names
    )


def test_palette_with_transparency_is_composited_over_white() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    image.paste(1, (10, 10, 30, 30))
    decoded = decode_image(encode(image, "PNG", transparency=0), max_pixels=LIMIT)
    assert decoded.has_alpha
    pixels = np.asarray(decoded.pixels)
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[20, 20]) == (200, 10, 10)


def test_rgba_transparent_area_is_white() -> None:
    rgba = fm.sample("coffee.jpg").convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    alpha.paste(0, (0, 0, 100, 100))
    rgba.putalpha(alpha)
    decoded = decode_image(encode(rgba, "PNG"), max_pixels=LIMIT)
    pixels = np.asarray(decoded.pixels)
    assert decoded.has_alpha
    assert (pixels[:100, :100] == 255).all()
    assert np.array_equal(pixels[200:, 200:], np.asarray(fm.sample("coffee.jpg"))[200:, 200:])


def test_cmyk_jpeg_becomes_rgb() -> None:
    original = fm.sample("coffee.jpg")
    decoded = decode_image(encode(original.convert("CMYK"), "JPEG", quality=95), max_pixels=LIMIT)
    assert decoded.mode == "CMYK"
    assert decoded.pixels.mode == "RGB"
    assert phash(decoded.pixels) - phash(original) <= 4


@pytest.mark.parametrize(
    ("orientation", "stored_transform"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_90),
        (8, Image.Transpose.ROTATE_270),
        (2, Image.Transpose.FLIP_LEFT_RIGHT),
    ],
)
def test_exif_orientation_is_applied(orientation: int, stored_transform: Image.Transpose) -> None:
    upright = fm.sample("chelsea.png")
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(upright.transpose(stored_transform), "PNG", exif=exif.tobytes())
    decoded = decode_image(data, max_pixels=LIMIT)
    assert decoded.orientation == orientation
    assert np.array_equal(np.asarray(decoded.pixels), np.asarray(upright))


def test_empty_data_is_refused() -> None:
    with pytest.raises(UnsupportedMedia, match="empty file"):
        decode_image(b"", max_pixels=LIMIT)


def test_text_is_not_an_image() -> None:
    with pytest.raises(UnsupportedMedia, match="not a recognised image"):
        decode_image(b"shot010 notes: final comp approved\n" * 10, max_pixels=LIMIT)


def test_unsupported_format_is_named() -> None:
    with pytest.raises(UnsupportedMedia, match="PPM images are not supported"):
        decode_image(encode(fm.sample("coffee.jpg"), "PPM"), max_pixels=LIMIT)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "TIFF"])
def test_truncated_file_is_corrupt(fmt: str) -> None:
    data = encode(fm.sample("coffee.jpg"), fmt)
    with pytest.raises((CorruptMedia, UnsupportedMedia)):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_damaged_png_data_is_corrupt() -> None:
    data = bytearray(encode(fm.sample("coffee.jpg"), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xa5" * 64
    with pytest.raises(CorruptMedia):
        decode_image(bytes(data), max_pixels=LIMIT)


def test_pixel_limit_guards_against_bombs() -> None:
    with pytest.raises(ImageTooLarge, match="over the limit of 100,000"):
        decode_image(encode(fm.sample("coffee.jpg"), "PNG"), max_pixels=100_000)


def test_draft_decoding_scales_large_jpegs_down() -> None:
    large = fm.sample("astronaut.jpg").resize((2048, 2048), Image.Resampling.BICUBIC)
    data = encode(large, "JPEG", quality=90)
    decoded = decode_image(data, max_pixels=LIMIT, draft_min_side=512)
    assert decoded.draft_scale == 4
    assert decoded.pixels.size == (512, 512)
    assert (decoded.width, decoded.height) == (2048, 2048)  # the file's own size is recorded
    full = decode_image(data, max_pixels=LIMIT)
    assert full.draft_scale == 1
    assert full.pixels.size == (2048, 2048)


def test_out_of_range_orientation_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 99
    original = fm.sample("chelsea.png")
    decoded = decode_image(encode(original, "PNG", exif=exif.tobytes()), max_pixels=LIMIT)
    assert decoded.orientation == 1
    assert np.array_equal(np.asarray(decoded.pixels), np.asarray(original))
