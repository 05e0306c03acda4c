"""Exact and perceptual hashes of an asset.

Perceptual hashes are imagehash's own functions, called on the canonical pixels that
``provenance.media`` decoded once. The greyscale conversion is shared between the hashes
that need it, so each hash costs only its resize and transform. Every value is labelled
with a spec naming the algorithm, its parameters and the imagehash version, so values made
with other parameters are never compared with each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version

import imagehash
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from provenance.config import parse_name_list
from provenance.detectors.base import DetectorSpec
from provenance.domain import Fingerprint

_IMAGEHASH_VERSION = version("imagehash")


@dataclass(frozen=True)
class HashAlgorithm:
    """A perceptual hash with fixed parameters."""

    name: str
    params: tuple[tuple[str, object], ...]
    needs_gray: bool
    compute: Callable[[Image.Image], imagehash.ImageHash]

    @property
    def spec(self) -> str:
        params = ",".join(f"{key}={value}" for key, value in self.params)
        return f"{self.name}({params});imagehash={_IMAGEHASH_VERSION}"


# whash's default working size depends on the input's resolution, so the same picture at
# two sizes would be hashed on two different grids; a fixed 64 px grid keeps resized copies
# comparable and makes the value independent of how the file was decoded.
HASH_ALGORITHMS: dict[str, HashAlgorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        HashAlgorithm(
            "phash",
            (("hash_size", 8), ("highfreq_factor", 4)),
            True,
            lambda gray: imagehash.phash(gray, hash_size=8, highfreq_factor=4),
        ),
        HashAlgorithm(
            "dhash",
            (("hash_size", 8),),
            True,
            lambda gray: imagehash.dhash(gray, hash_size=8),
        ),
        HashAlgorithm(
            "whash",
            (("hash_size", 8), ("image_scale", 64), ("mode", "haar")),
            True,
            lambda gray: imagehash.whash(gray, hash_size=8, image_scale=64, mode="haar"),
        ),
        HashAlgorithm(
            "colorhash",
            (("binbits", 3),),
            False,
            lambda rgb: imagehash.colorhash(rgb, binbits=3),
        ),
    )
}


def parse_hash_names(text: str) -> list[str]:
    """Parse the ``hashes`` setting; refuse unknown names with the list of known ones."""
    return parse_name_list("hashes", text, HASH_ALGORITHMS)


def sha256_fingerprint(digest: str) -> Fingerprint:
    """The exact-match fingerprint of a file, from the hex sha256 of its bytes."""
    return Fingerprint("sha256", "sha256", digest, 256)


def perceptual_hashes(
    pixels: Image.Image, names: Iterable[str], colour: str | None = None
) -> list[Fingerprint]:
    """Compute the named perceptual hashes of canonical RGB ``pixels``. ``colour``: the
    colour transform that made the pixels display-referred (``media.colour.spec``), made
    part of each hash's spec."""
    gray: Image.Image | None = None
    fingerprints = []
    for name in names:
        algorithm = HASH_ALGORITHMS[name]
        if algorithm.needs_gray:
            if gray is None:
                gray = pixels.convert("L")
            value = algorithm.compute(gray)
        else:
            value = algorithm.compute(pixels)
        spec = algorithm.spec if colour is None else f"{algorithm.spec};colour={colour}"
        fingerprints.append(Fingerprint(name, spec, str(value), int(value.hash.size)))
    return fingerprints


class PHashDetector:
    """pHash as a detector: 64-bit codes packed into 8 uint8 bytes, Hamming distance.

    The bytes are the registered fingerprint's hex value, so an asset's stored pHash and
    this detector's vector for the same pixels are the same thing.
    """

    algorithm = HASH_ALGORITHMS["phash"]

    @property
    def spec(self) -> DetectorSpec:
        return DetectorSpec(
            name="phash",
            model=self.algorithm.spec,
            weights_sha256="-",
            dim=64,
            metric="hamming",
            preprocess="greyscale, 32x32 Lanczos, DCT (imagehash)",
        )

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.uint8]:
        codes = [
            np.packbits(self.algorithm.compute(image.convert("L")).hash.flatten())
            for image in images
        ]
        if not codes:
            return np.zeros((0, 8), dtype=np.uint8)
        return np.stack(codes).astype(np.uint8)
