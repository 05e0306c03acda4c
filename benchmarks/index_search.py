"""Exact versus IVF search on 512-d unit vectors: latency per query and recall@10.

Decides where the index switches from exact to IVF (``EXACT_LIMIT``) and the ``nprobe``
that keeps recall@10 at or over 0.99 against exact search. Vectors are synthetic and
clustered (real corpora are clustered too: re-check on real vectors when a corpus of that
size is at hand). Queries are noisy copies of indexed vectors, one at a time, as a check
sends them. Medians over the queries.

    python benchmarks/index_search.py [--sizes 20000 50000 100000 200000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from provenance.detectors.base import l2_normalise  # noqa: E402
from provenance.index.faiss_index import ivf_list_count  # noqa: E402

DIM = 512
QUERIES = 300


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(16, count // 200), DIM)).astype(np.float32)
    points = centres[rng.integers(0, len(centres), count)]
    points += 0.6 * rng.standard_normal((count, DIM)).astype(np.float32)
    return l2_normalise(points)


def per_query_ms(index: object, queries: np.ndarray) -> tuple[float, float]:
    """Median and 99th percentile milliseconds of one-query searches."""
    times = []
    for row in queries:
        start = time.perf_counter()
        index.search(row[None, :], 10)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 99))


def index_bytes(index: object) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000, 200_000])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "index_search.json"
    )
    args = parser.parse_args()
    import faiss

    rows = []
    for size in args.sizes:
        vectors = clustered(size, seed=size)
        rng = np.random.default_rng(1)
        picks = rng.integers(0, size, QUERIES)
        queries = l2_normalise(
            vectors[picks] + 0.3 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)
        )
        flat = faiss.IndexFlatIP(DIM)
        flat.add(vectors)
        _, exact = flat.search(queries, 10)
        p50, p99 = per_query_ms(flat, queries)
        row = {"vectors": size, "flat_ms": round(p50, 3), "flat_p99_ms": round(p99, 3), "ivf": []}
        start = time.perf_counter()
        nlist = ivf_list_count(size)
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors[np.random.default_rng(0).permutation(size)[: nlist * 64]])
        ivf.add(vectors)
        row["ivf_build_s"] = round(time.perf_counter() - start, 2)
        row["nlist"] = nlist
        row["ivf_mb"] = round(index_bytes(ivf) / 2**20, 1)
        row["flat_mb"] = round(index_bytes(flat) / 2**20, 1)
        for nprobe in (8, 16, 32, 64, 128):
            ivf.nprobe = nprobe
            _, found = ivf.search(queries, 10)
            recall = float(
                np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found, strict=True)])
            )
            p50, p99 = per_query_ms(ivf, queries)
            row["ivf"].append(
                {
                    "nprobe": nprobe,
                    "recall_at_10": round(recall, 4),
                    "ms": round(p50, 3),
                    "p99_ms": round(p99, 3),
                }
            )
        rows.append(row)
        print(
            f"{size:>8} vectors  flat {row['flat_ms']:6.2f} ms  "
            f"ivf{nlist} build {row['ivf_build_s']} s  "
            + "  ".join(
                f"nprobe {r['nprobe']}: recall {r['recall_at_10']:.3f} {r['ms']:.2f} ms"
                for r in row["ivf"]
            ),
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "schema": "provenance.benchmark.index-search/1",
                "command": "python benchmarks/index_search.py "
                + " ".join(f"--sizes {s}" for s in []),
                "threads": faiss.omp_get_max_threads(),
                "machine": describe(),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
