"""Reference-set ingestion on a Dask cluster: one and two local workers side by side.

The same folder of real images (the first ``--limit`` files of the benchmark corpus) is
added as a new reference set to a fresh workspace, through the product's own code
(``reference_sets.create``: read, store, decode, pHash, SSCD, record, index), with the
contenders alternating each round:

- in one process (no cluster), the models on every core;
- ``--workers 1``: a local Dask cluster of one worker process (models on every core);
- ``--workers 2``: two worker processes, one core each.

Each round includes starting and stopping the cluster. Medians over rounds are reported;
the ratio two workers / one worker is of medians measured in the same run. On a machine
with two cores, two workers cannot beat one by much: the figure shows what the cluster's
overhead costs here, and that throughput scales with workers only as cores are added.

    python benchmarks/cluster_ingest.py [--limit 300] [--rounds 3] [--out FILE]
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance import Workspace, reference_sets  # noqa: E402

CORPUS = ROOT / "benchmarks" / ".corpus" / "images"
CONTENDERS = {"one process": None, "1 worker": 1, "2 workers": 2}


def prepare_folder(limit: int, target: Path) -> int:
    files = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in {".jpg", ".png"})
    target.mkdir(parents=True)
    for number, path in enumerate(files[:limit]):
        shutil.copyfile(path, target / f"{number:05d}{path.suffix.lower()}")
    return min(limit, len(files))


def ingest(folder: Path, scratch: Path, workers: int | None) -> tuple[float, int]:
    """Seconds to add ``folder`` as a new set, and the items added."""
    directory = scratch / f"ws-{time.monotonic_ns()}"
    Workspace.create(directory, environ={}).close()
    with Workspace.open(directory, environ={}) as workspace:
        start = time.perf_counter()
        report = reference_sets.create(
            workspace, "library", [folder], rights="third-party", by="bench", workers=workers
        )
        seconds = time.perf_counter() - start
    shutil.rmtree(directory)
    return seconds, report.added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "cluster_ingest.json"
    )
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        count = prepare_folder(args.limit, scratch / "library")
        if count == 0:
            raise SystemExit("no corpus images: run python benchmarks/corpus.py first")
        added: dict[str, int] = {}
        for round_number in range(args.rounds):
            for name, workers in CONTENDERS.items():
                seconds, added[name] = ingest(scratch / "library", scratch, workers)
                times[name].append(seconds)
                print(f"round {round_number + 1}: {name}: {seconds:.1f} s", flush=True)
    rows: dict[str, Any] = {
        name: {
            "median_seconds": round(statistics.median(values), 2),
            "images_per_second": round(count / statistics.median(values), 1),
            "added": added[name],
            "seconds": [round(v, 2) for v in values],
        }
        for name, values in times.items()
    }
    ratio = statistics.median(times["1 worker"]) / statistics.median(times["2 workers"])
    document = {
        "schema": "provenance.benchmark.cluster-ingest/1",
        "date": dt.date.today().isoformat(),
        "command": f"python benchmarks/cluster_ingest.py --limit {args.limit} "
        f"--rounds {args.rounds}",
        "images": count,
        "machine": describe(),
        "contenders": rows,
        "two_workers_over_one": round(ratio, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    for name, row in rows.items():
        print(f"{name:>12}: {row['images_per_second']} images/s (median {row['median_seconds']} s)")
    print(f"two workers / one worker: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
