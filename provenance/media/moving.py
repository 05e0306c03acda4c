"""Moving pictures: movies read with PyAV (FFmpeg inside) and frame sequences read frame by
frame like stills. Frames are streamed, never held together: a 10-minute ProRes movie or a
4K sequence costs one frame's memory at a time.

A check looks at sampled frames (``sample_movie``, ``sample_sequence``): the first frame,
every ``step``-th frame after it, and, in a movie, the first frame of each shot (a cut:
the mean difference of two consecutive frames' 32 x 18 greys over ``CUT_DIFFERENCE``),
at most ``limit`` frames in all (the step grows to keep within it)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from provenance.errors import CorruptMedia, UnsupportedMedia
from provenance.media.limits import within_limit

# Mean absolute difference (0-255) of consecutive frames' small greys that marks a cut.
CUT_DIFFERENCE = 30.0

# ITU-T H.273 code points as FFmpeg reports them, for the media facts.
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "p3-d65"}
_TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 8: "linear",
              13: "srgb", 14: "bt2020-10", 15: "bt2020-12", 16: "pq", 18: "hlg"}  # fmt: skip
_MATRICES = {0: "rgb", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}


# A frame sequence is stored as a manifest naming each frame's stored file, written
# compactly (``sequence_manifest``), so that its first bytes say what it is.
SEQUENCE_SCHEMA = "provenance.sequence/1"
_MANIFEST_START = b'{"schema":"' + SEQUENCE_SCHEMA.encode() + b'"'
# The first bytes of Matroska (MKV, WebM); ISO base media (MP4, MOV) say "ftyp" at 4.
_MATROSKA = b"\x1a\x45\xdf\xa3"
# ISO base media brands of still pictures (HEIF, AVIF): decoded as images, not movies.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def sequence_manifest(pattern: str, entries: list[dict[str, Any]]) -> bytes:
    """A sequence's manifest (``provenance.sequence/1``): its pattern and, per frame, its
    number, file name and sha256."""
    document = {"schema": SEQUENCE_SCHEMA, "pattern": pattern, "frames": entries}
    return json.dumps(document, separators=(",", ":")).encode()


def manifest_frames(data: bytes) -> dict[int, str]:
    """The stored file (sha256) of each frame of a sequence's manifest, by frame number,
    in order."""
    return {int(e["frame"]): str(e["sha256"]) for e in json.loads(data)["frames"]}


def stored_kind(head: bytes) -> str:
    """ "sequence", "movie" or "still", from a stored file's first bytes."""
    from provenance.media import HEIF_BRANDS

    if head.startswith(_MANIFEST_START):
        return "sequence"
    if head.startswith(_MATROSKA) or (
        head[4:8] == b"ftyp" and head[8:12] not in HEIF_BRANDS | _AVIF_BRANDS
    ):
        return "movie"
    return "still"


def _av() -> Any:
    import av

    return av


@dataclass(frozen=True)
class MovieFacts:
    """What a movie file says about itself, and the tags it carries."""

    facts: dict[str, Any]
    tags: dict[str, str]


def movie_facts(path: Path, *, max_pixels: int) -> MovieFacts:
    """Container, codec, size, frame rate, frame count, duration, timecode and colour of
    ``path``'s first video stream, without decoding a frame. One-line MediaErrors."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnsupportedMedia("the file has no video stream")
            stream = container.streams.video[0]
            context = stream.codec_context
            width, height = int(context.width or 0), int(context.height or 0)
            if width <= 0 or height <= 0:
                raise CorruptMedia(f"movie has no picture size ({width}x{height})")
            within_limit(width, height, max_pixels, "frames are")
            rate = stream.average_rate or stream.guessed_rate
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base is not None
                else (container.duration / 1_000_000 if container.duration else None)
            )
            frames = int(stream.frames or 0) or (
                round(duration * float(rate)) if duration and rate else None
            )
            tags = {str(k): str(v) for k, v in container.metadata.items()}
            timecode = next(
                (
                    str(s.metadata["timecode"])
                    for s in (stream, *container.streams)
                    if "timecode" in s.metadata
                ),
                tags.get("timecode"),
            )
            descriptor = context.format
            facts = {
                "kind": "movie",
                "format": container.format.name,
                "codec": context.codec.canonical_name,
                "profile": context.profile,
                "width": width,
                "height": height,
                "frame_rate": _rate(rate),
                "frames": frames,
                "duration_seconds": round(duration, 3) if duration else None,
                "timecode": timecode,
                "pixel_format": descriptor.name if descriptor is not None else None,
                "bit_depth": _bit_depth(descriptor),
                "has_alpha": bool(
                    descriptor is not None and any(c.is_alpha for c in descriptor.components)
                ),
                "colour": {
                    "primaries": _PRIMARIES.get(int(context.color_primaries), "unspecified"),
                    "transfer": _TRANSFERS.get(int(context.color_trc), "unspecified"),
                    "matrix": _MATRICES.get(int(context.colorspace), "unspecified"),
                    "range": {1: "limited", 2: "full"}.get(int(context.color_range), "unspecified"),
                },
                "audio": bool(container.streams.audio),
            }
    except av.error.FFmpegError as exc:
        raise _damaged(exc) from None
    return MovieFacts(facts, tags)


def _rate(rate: Any) -> str | None:
    """A frame rate as exact text: "24", "24000/1001"."""
    if not rate:
        return None
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def _bit_depth(descriptor: Any) -> int | None:
    if descriptor is None or not descriptor.components:
        return None
    return max(int(c.bits) for c in descriptor.components)


def _damaged(exc: Exception) -> CorruptMedia | UnsupportedMedia:
    text = " ".join(str(exc).split())[:200]
    if "Invalid data" in text or "moov atom" in text or "End of file" in text:
        return CorruptMedia(f"damaged or truncated movie: {text}")
    return UnsupportedMedia(f"not a movie this tool can read: {text}")


def sample_movie(
    path: Path,
    *,
    step: int,
    limit: int,
    expected_frames: int | None,
    on_frame: Callable[[int], None] | None = None,
    keep: set[int] | None = None,
    cuts: list[int] | None = None,
) -> Iterator[tuple[int, Image.Image]]:
    """Every frame of ``path`` decoded in order; the sampled ones (see the module; ``keep``:
    these frames instead) yielded as (frame number from 0, RGB picture); ``cuts``, when
    given, gets the number of each sampled frame that starts a shot. Raises
    CorruptMedia when decoding fails or the movie ends before ``expected_frames`` (a
    truncated file)."""
    av = _av()
    if expected_frames:
        step = max(step, math.ceil(expected_frames / limit))
    previous: np.ndarray[Any, Any] | None = None
    count = taken = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for number, frame in enumerate(container.decode(stream)):
                count = number + 1
                if on_frame is not None:
                    on_frame(number)
                small = frame.reformat(width=32, height=18, format="gray").to_ndarray()
                small = small.astype(np.float32)
                cut = previous is not None and float(np.abs(small - previous).mean()) > (
                    CUT_DIFFERENCE
                )
                previous = small
                chosen = number in keep if keep is not None else number % step == 0 or cut
                if chosen and taken < limit:
                    taken += 1
                    if cut and cuts is not None:
                        cuts.append(number)
                    yield number, _rgb(frame)
    except av.error.FFmpegError as exc:
        raise _damaged(exc) from None
    if count == 0:
        raise CorruptMedia("damaged or truncated movie: no frame could be decoded")
    if expected_frames and count < expected_frames - 1:
        raise CorruptMedia(
            f"damaged or truncated movie: it ends at frame {count} of {expected_frames}"
        )


def _rgb(frame: Any) -> Image.Image:
    """A decoded frame as RGB; a frame with alpha (ProRes 4444, VP9 with alpha) composited
    over white, as stills are."""
    if not any(c.is_alpha for c in frame.format.components):
        picture: Image.Image = frame.to_image().convert("RGB")
        return picture
    rgba = Image.fromarray(frame.to_ndarray(format="rgba"), "RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white


def sample_numbers(frames: list[int], step: int, limit: int) -> list[int]:
    """The frames of a sequence that a check looks at: the first, then every ``step``-th
    (by position), and the last; at most ``limit``."""
    if not frames:
        return []
    step = max(step, math.ceil(len(frames) / max(1, limit - 1)))
    chosen = frames[::step]
    if chosen[-1] != frames[-1]:
        chosen.append(frames[-1])
    return chosen[:limit]


def frame_ranges(
    sampled: list[int],
    hits: dict[int, Any],
    strongest: Callable[[list[Any]], Any],
    *,
    cuts: frozenset[int] = frozenset(),
    last_frame: int | None = None,
) -> list[tuple[int, int, Any]]:
    """Runs of consecutive sampled frames that all hit: (first, last, the strongest of the
    run's hits by ``strongest``). A run that ends where the next sampled frame starts a
    shot (one of ``cuts``), or at the last sample of a movie of ``last_frame`` frames,
    reaches to that shot's end: the frames between two samples of one shot are that shot."""
    runs: list[tuple[int, int, Any]] = []
    current: list[int] = []
    for number in [*sampled, None]:
        if number is not None and number in hits:
            current.append(number)
            continue
        if current:
            end = current[-1]
            if number is not None and number in cuts:
                end = number - 1
            elif number is None and last_frame is not None:
                end = last_frame
            runs.append((current[0], end, strongest([hits[n] for n in current])))
            current = []
    return runs
