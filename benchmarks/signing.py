"""What Content Credentials, signatures and anchors cost, each against the work it rides on,
measured side by side in one run (medians of ``--repeats``):

- registration's C2PA read of a 1080p PNG without a manifest (a byte scan) and with a
  vendor's manifest (parse and validate), against decoding the same file;
- `export asset` of one asset with the studio's key (PAdES PDF, two .p7s, an anchor)
  against the same export in a twin workspace without a key;
- `export asset --c2pa` (the copy signed with Content Credentials) against `export asset`;
- `provenance verify` of the signed PDF, and `audit verify --anchors` over ``--anchors``
  anchors against `audit verify` without them.

    python benchmarks/signing.py [--repeats 5] [--anchors 200]

Results: benchmarks/results/signing.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from benchmarks.machine import describe  # noqa: E402
from benchmarks.review_scale import median_seconds  # noqa: E402
from provenance import admin, exports, registration, signatures  # noqa: E402
from provenance.media import decode_image  # noqa: E402
from provenance.registration import RegisterRequest  # noqa: E402
from provenance.signing import credentials, keys  # noqa: E402
from provenance.workspace import Workspace  # noqa: E402

SAMPLE = ROOT / "samples" / "images" / "astronaut.jpg"


def workspace_with(folder: Path, picture: Path, *, signed: bool) -> Path:
    with Workspace.create(folder) as workspace:
        if signed:
            signatures.init_keys(workspace, organisation="Benchmark Studio")
    with Workspace.open(folder) as workspace:
        request = RegisterRequest.from_flags(use="background", by="bench")
        registration.register(workspace, [picture], request)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--anchors", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/signing.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        tmp = Path(temporary)
        plain = tmp / "plate.png"
        with Image.open(SAMPLE) as picture:
            picture.convert("RGB").resize((1920, 1080)).save(plain)
        vendor = keys.make_development_keys(tmp / "vendor", "Bench Vendor")
        vendor_key = keys.load_key(vendor.certificate, vendor.key, "")
        signed = tmp / "vendor.png"
        credentials.write_generated(
            plain, signed, key=vendor_key, generator=("Bench", "1"), model="Bench model"
        )
        trust = vendor.ca_certificate.read_text()
        plain_bytes, signed_bytes = plain.read_bytes(), signed.read_bytes()
        results: dict[str, Any] = {"machine": describe(), "repeats": args.repeats}
        results["read_1080p_png"] = {
            "decode_seconds": median_seconds(
                lambda: decode_image(plain_bytes, max_pixels=10**9), args.repeats
            ),
            "c2pa_read_unsigned_seconds": median_seconds(
                lambda: credentials.read_credentials("plate.png", plain_bytes, None, trust),
                args.repeats,
            ),
            "c2pa_read_signed_seconds": median_seconds(
                lambda: credentials.read_credentials("vendor.png", signed_bytes, None, trust),
                args.repeats,
            ),
        }
        keyed = workspace_with(tmp / "keyed", signed, signed=True)
        bare = workspace_with(tmp / "bare", signed, signed=False)
        times: dict[str, list[float]] = {"unsigned": [], "signed": [], "signed_c2pa": []}
        kinds = [("unsigned", bare, False), ("signed", keyed, False), ("signed_c2pa", keyed, True)]
        for round_ in range(args.repeats):
            # Interleaved, each kind first in turn, so that drift and warm-up hit all alike.
            for name, folder, c2pa in kinds[round_ % 3 :] + kinds[: round_ % 3]:
                out = tmp / f"out-{name}-{round_}"
                with Workspace.open(folder) as workspace:
                    start = time.perf_counter()
                    exports.export_asset(workspace, "1", out, c2pa=c2pa)
                    times[name].append(time.perf_counter() - start)
        export = {f"{name}_seconds": statistics.median(v) for name, v in times.items()}
        export["signed_over_unsigned"] = export["signed_seconds"] / export["unsigned_seconds"]
        export["c2pa_over_signed"] = export["signed_c2pa_seconds"] / export["signed_seconds"]
        results["export_asset"] = export
        with Workspace.open(keyed) as workspace:
            trusted = workspace.trust_certificates()
            pdf = tmp / "out-signed-0" / "asset-1.pdf"
            results["verify_pdf_seconds"] = median_seconds(
                lambda: signatures.verify_file(pdf, trusted), args.repeats
            )
            anchors_file = signatures.anchors_path(workspace)
            for _ in range(args.anchors - len(anchors_file.read_text().splitlines())):
                signatures.anchor_audit(workspace, "benchmark")
            plain_verify = median_seconds(lambda: admin.verify_audit(workspace), args.repeats)
            with_anchors = median_seconds(
                lambda: admin.verify_audit(workspace, anchors_file), args.repeats
            )
        results["audit_verify"] = {
            "anchors": args.anchors,
            "without_anchors_seconds": plain_verify,
            "with_anchors_seconds": with_anchors,
            "per_anchor_ms": (with_anchors - plain_verify) / args.anchors * 1000,
        }
        shutil.rmtree(tmp / "keyed", ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
