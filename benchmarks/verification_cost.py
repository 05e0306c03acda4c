"""What geometric verification costs per candidate, on pictures of 1024 px.

Pairs of real corpus images scaled to 1024 px on the longer side: a copy (the picture with a
known edit: a composite into another picture, a mirror, a crop) against its reference, and
an unrelated picture against a reference. Per pair, timed separately: the asset's features
(made once per check however many candidates it has), the reference's features (made once
per reference per run) and the match itself (the forward fit, and the mirrored one when the
forward one does not verify, with the mirrored features). Medians and 95th percentiles.

    python benchmarks/verification_cost.py [--pairs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance.detectors.geometric import GeometricVerifier  # noqa: E402
from provenance.errors import ProvenanceError  # noqa: E402
from provenance.media import decode_image  # noqa: E402

CORPUS = ROOT / "benchmarks" / ".corpus" / "images"
SIDE = 1024


def at_side(image: Image.Image, side: int = SIDE) -> Image.Image:
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)))


def edits(rng: random.Random, scene: Image.Image) -> dict[str, Any]:
    def composite(image: Image.Image) -> Image.Image:
        canvas = scene.resize(image.size)
        pasted = image.resize((image.width // 2, image.height // 2))
        canvas.paste(pasted, (rng.randint(0, image.width // 2), rng.randint(0, image.height // 2)))
        return canvas

    return {
        "composite": composite,
        "mirror": ImageOps.mirror,
        "crop": lambda im: at_side(im.crop((0, 0, im.width * 3 // 4, im.height * 3 // 4))),
    }


def measure(pairs: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    files = sorted(CORPUS.iterdir())
    rng.shuffle(files)
    pictures: list[Image.Image] = []
    for path in files:
        try:
            image = decode_image(path.read_bytes(), max_pixels=150_000_000).pixels
        except ProvenanceError:
            continue
        if min(image.size) >= 256:
            pictures.append(at_side(image))
        if len(pictures) >= 2 * pairs + 1:
            break
    verifier = GeometricVerifier()
    times: dict[str, dict[str, list[float]]] = {}
    verified: dict[str, int] = {}
    for n in range(pairs):
        reference, other = pictures[2 * n], pictures[2 * n + 1]
        cases = {name: edit(reference) for name, edit in edits(rng, other).items()}
        cases["unrelated"] = other
        for name, asset_picture in cases.items():
            spent = times.setdefault(name, {"asset": [], "reference": [], "match": []})
            start = time.perf_counter()
            asset = verifier.asset_features(asset_picture)
            spent["asset"].append(time.perf_counter() - start)
            start = time.perf_counter()
            features = verifier.features(reference)
            spent["reference"].append(time.perf_counter() - start)
            start = time.perf_counter()
            result = verifier.verify(asset, features, "bench", n)
            spent["match"].append(time.perf_counter() - start)
            verified[name] = verified.get(name, 0) + result.verified
    summary: dict[str, Any] = {}
    for name, spent in times.items():
        per_candidate = [r + m for r, m in zip(spent["reference"], spent["match"], strict=True)]
        summary[name] = {
            "verified": f"{verified[name]} of {pairs}",
            **{
                part: {
                    "median_ms": round(statistics.median(values) * 1000, 1),
                    "p95_ms": round(float(np.percentile(values, 95)) * 1000, 1),
                }
                for part, values in (*spent.items(), ("reference+match", per_candidate))
            },
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "verification_cost.json"
    )
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print("no corpus; run benchmarks/corpus.py", file=sys.stderr)
        return 1
    summary = measure(args.pairs, args.seed)
    document = {
        "schema": "provenance.benchmark.verification-cost/1",
        "date": dt.date.today().isoformat(),
        "command": f"python benchmarks/verification_cost.py --pairs {args.pairs}",
        "machine": describe(),
        "side_px": SIDE,
        **summary,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
