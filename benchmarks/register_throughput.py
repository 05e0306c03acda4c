"""Registration throughput against imagededup's pHash encoding, side by side.

On the same folder of real images, in one run, alternating the contenders each round:

- ``provenance register``: the CLI's code path (``Workspace.register``) into a fresh
  workspace: read, sha256, decode, metadata, pHash + dHash, content store, database, audit;
  in one process (``--jobs 1``) and with one fingerprinting process per core.
- ``provenance fingerprint only``: decode + pHash + dHash, no store or database, to show
  what the record keeping costs.
- ``imagededup PHash().encode_images``: pHash only, single process (``num_enc_workers=0``)
  and with its default one worker per core.

Medians over rounds are reported; ratios are of medians measured in the same run.

    python benchmarks/register_throughput.py [--images DIR] [--limit N] [--rounds R]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing import cpu_count
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance import (  # noqa: E402
    RegisterRequest,
    Workspace,
    registration,
)
from provenance.detectors.hashes import perceptual_hashes  # noqa: E402
from provenance.domain import IntendedUse  # noqa: E402
from provenance.media import decode_image  # noqa: E402


def prepare_folder(source: Path, limit: int, target: Path) -> list[Path]:
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    files = files[:limit]
    target.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, target / path.name)
    return sorted(target.iterdir())


def run_provenance(folder: Path, scratch: Path, jobs: int) -> float:
    workspace_dir = scratch / f"ws-{time.monotonic_ns()}"
    Workspace.create(workspace_dir).close()
    with Workspace.open(workspace_dir, environ={}) as workspace:
        start = time.perf_counter()
        report = registration.register(
            workspace, [folder], RegisterRequest(use=IntendedUse.IDEATION), jobs=jobs
        )
        elapsed = time.perf_counter() - start
    shutil.rmtree(workspace_dir)
    failed = report.count("failed")
    if failed:
        print(f"  note: {failed} files failed to register", file=sys.stderr)
    return elapsed


def run_fingerprint_only(files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        decoded = decode_image(path.read_bytes(), max_pixels=150_000_000)
        perceptual_hashes(decoded.pixels, ["phash", "dhash"])
    return time.perf_counter() - start


def run_imagededup(folder: Path, workers: int) -> float:
    from imagededup.methods import PHash

    hasher = PHash(verbose=False)
    start = time.perf_counter()
    encodings = hasher.encode_images(image_dir=str(folder), num_enc_workers=workers)
    elapsed = time.perf_counter() - start
    if not encodings:
        raise RuntimeError("imagededup encoded nothing")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT / "benchmarks" / ".corpus" / "images")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "register_throughput.json"
    )
    args = parser.parse_args()
    if not args.images.is_dir():
        print(f"no images at {args.images}; run benchmarks/corpus.py first", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        files = prepare_folder(args.images, args.limit, scratch / "images")
        megapixels = 0.0
        for path in files:
            decoded = decode_image(path.read_bytes(), max_pixels=150_000_000)
            megapixels += decoded.width * decoded.height / 1e6
        contenders = {
            "provenance register, 1 process": lambda: run_provenance(
                scratch / "images", scratch, 1
            ),
            f"provenance register, {cpu_count()} workers": lambda: run_provenance(
                scratch / "images", scratch, cpu_count()
            ),
            "provenance fingerprint only": lambda: run_fingerprint_only(files),
            "imagededup PHash, 1 process": lambda: run_imagededup(scratch / "images", 0),
            f"imagededup PHash, {cpu_count()} workers": lambda: run_imagededup(
                scratch / "images", cpu_count()
            ),
        }
        for run in contenders.values():  # warm caches and imports once
            run()
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            for name, run in contenders.items():
                times[name].append(run())
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    n = len(files)
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians["imagededup PHash, 1 process"]
    results = {
        name: {
            "median_seconds": round(medians[name], 4),
            "files_per_second": round(n / medians[name], 1),
            "time_vs_imagededup_1_process": round(medians[name] / baseline, 3),
            "all_seconds": [round(t, 4) for t in times[name]],
        }
        for name in contenders
    }
    document = {
        "schema": "provenance.benchmark.register-throughput/1",
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/register_throughput.py "
        f"--limit {args.limit} --rounds {args.rounds}",
        "files": n,
        "megapixels_total": round(megapixels, 1),
        "machine": describe(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{n} files, {megapixels:.0f} MP; medians of {args.rounds} rounds")
    print(f"{'contender':<36} {'files/s':>8} {'time vs imagededup (1 process)':>32}")
    for name, row in results.items():
        print(f"{name:<36} {row['files_per_second']:>8} {row['time_vs_imagededup_1_process']:>32}")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
