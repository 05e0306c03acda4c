"""Does JPEG draft decoding (DCT-domain downscaling) change the perceptual hashes?

Decodes every JPEG of the corpus twice, in full and with Pillow's draft mode at several
target sizes, and counts the files whose pHash, dHash or wHash differ. Registration stores
hashes from full decodes unless this shows draft decoding leaves them unchanged.

    python benchmarks/draft_decoding.py [--images DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.detectors.hashes import perceptual_hashes  # noqa: E402
from provenance.media import decode_image  # noqa: E402

NAMES = ["phash", "dhash", "whash"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT / "benchmarks" / ".corpus" / "images")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "draft_decoding.json"
    )
    args = parser.parse_args()
    jpegs = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    full = {}
    full_seconds = 0.0
    for path in jpegs:
        data = path.read_bytes()
        start = time.perf_counter()
        decoded = decode_image(data, max_pixels=10**9)
        full_seconds += time.perf_counter() - start
        full[path] = ({f.kind: f.value for f in perceptual_hashes(decoded.pixels, NAMES)}, data)
    rows = []
    for min_side in (64, 128, 256, 512):
        drafted = changed = 0
        worst = dict.fromkeys(NAMES, 0)
        seconds = 0.0
        for reference, data in full.values():
            start = time.perf_counter()
            decoded = decode_image(data, max_pixels=10**9, draft_min_side=min_side)
            seconds += time.perf_counter() - start
            if decoded.draft_scale == 1:
                continue
            drafted += 1
            values = {f.kind: f.value for f in perceptual_hashes(decoded.pixels, NAMES)}
            distances = {
                name: bin(int(values[name], 16) ^ int(reference[name], 16)).count("1")
                for name in NAMES
            }
            changed += any(distances.values())
            worst = {name: max(worst[name], distances[name]) for name in NAMES}
        rows.append(
            {
                "draft_min_side": min_side,
                "jpegs_drafted": drafted,
                "hashes_changed": changed,
                "worst_bits": worst,
                "decode_seconds_all_jpegs": round(seconds, 3),
            }
        )
    document = {
        "schema": "provenance.benchmark.draft-decoding/1",
        "command": "python benchmarks/draft_decoding.py",
        "jpegs": len(jpegs),
        "full_decode_seconds_all_jpegs": round(full_seconds, 3),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{len(jpegs)} JPEGs; full decode of all: {full_seconds:.2f} s")
    for row in rows:
        print(
            f"draft to >= {row['draft_min_side']:>3} px: {row['jpegs_drafted']:>3} drafted, "
            f"{row['hashes_changed']:>3} with a changed hash, worst bits {row['worst_bits']}, "
            f"decode {row['decode_seconds_all_jpegs']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
