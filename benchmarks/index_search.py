"""Reference search at scale: the engine's index against exact search, 10k to 1M vectors.

Reference vectors are the SSCD vectors of the real benchmark corpus (about 12k images,
benchmarks/corpus_vectors.py) plus synthetic vectors to reach each size. Synthetic vectors
are drawn from a Gaussian with the real vectors' mean and covariance, then normalised: they
spread like real embeddings of distinct images (same principal directions and variances)
without being copies of one another. Queries are SSCD vectors of edited copies of corpus
images (AugLy edits and composites), one at a time, as `provenance check` sends them; their
originals are always among the references.

Per size: the index the engine builds (provenance.index.faiss_index.build_index) — its
build time, size on disk, resident memory added, per-query latency p50/p99, and against
exact search: recall@10, recall of the neighbours scoring at or above the SSCD review
threshold (the matches a verdict can depend on), and how often the copy's original is in
the top 10. With ``--compare``: IVF at several nprobe and HNSW at several efSearch, to
choose the engine's index.

    python benchmarks/index_search.py [--sizes 10000 100000 1000000] [--compare]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus_vectors import corpus_vectors  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from provenance.config import SETTINGS_BY_NAME  # noqa: E402
from provenance.detectors.base import DetectorSpec, l2_normalise  # noqa: E402
from provenance.index.faiss_index import build_index, ivf_list_count  # noqa: E402

DIM = 512
K = 10
LATENCY_QUERIES_EXACT = 60  # exact search at 1M costs ~0.2 s a query
SPEC = DetectorSpec(
    name="sscd",
    model="benchmark",
    weights_sha256="0" * 64,
    dim=DIM,
    metric="cosine",
    preprocess="benchmark",
)


def synthetic_like(real: NDArray[np.float32], count: int, seed: int) -> NDArray[np.float32]:
    """``count`` unit vectors from a Gaussian fitted to ``real`` (mean and covariance)."""
    mean = real.mean(axis=0)
    _, singular, basis = np.linalg.svd(real - mean, full_matrices=False)
    scale = (singular / np.sqrt(len(real) - 1)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        rows = min(100_000, count - start)
        noise = rng.standard_normal((rows, len(singular)), dtype=np.float32) * scale
        out[start : start + rows] = noise @ basis.astype(np.float32) + mean
    return l2_normalise(out)


def real_rows(size: int, data: dict[str, Any]) -> NDArray[np.int64]:
    """Which real vectors a reference set of ``size`` (at most the real count) holds: every
    query's original plus a random sample, in corpus order."""
    sources = np.unique(data["query_sources"])
    others = np.setdiff1d(np.arange(len(data["vectors"])), sources)
    keep = np.random.default_rng(size).permutation(others)[: size - len(sources)]
    return np.sort(np.concatenate([sources, keep])).astype(np.int64)


def references(size: int, data: dict[str, Any]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``size`` reference vectors (real ones first, then synthetic ones) and the row of each
    query's original among them."""
    real = data["vectors"].astype(np.float32)
    sources = data["query_sources"].astype(np.int64)
    if size > len(real):
        return np.vstack([real, synthetic_like(real, size - len(real), seed=size)]), sources
    rows = real_rows(size, data)
    return np.ascontiguousarray(real[rows]), np.searchsorted(rows, sources)


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def latencies_ms(index: Any, queries: NDArray[np.float32]) -> tuple[float, float]:
    """Median and 99th percentile of one-query searches, in milliseconds."""
    index.search(queries[:1], K)
    times = []
    for row in queries:
        start = time.perf_counter()
        index.search(row[None, :], K)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3), round(float(np.percentile(times, 99)), 3)


def accuracy(
    found: NDArray[np.int64],
    exact_ids: NDArray[np.int64],
    exact_scores: NDArray[np.float32],
    originals: NDArray[np.int64],
    floor: float,
) -> dict[str, float]:
    """recall@10, recall of exact neighbours scoring >= ``floor``, originals in the top 10."""
    overlap = [len(set(a) & set(b)) / K for a, b in zip(exact_ids, found, strict=True)]
    wanted = found_wanted = 0
    for ids, scores, got in zip(exact_ids, exact_scores, found, strict=True):
        strong = {int(i) for i, s in zip(ids, scores, strict=True) if s >= floor}
        wanted += len(strong)
        found_wanted += len(strong & {int(i) for i in got})
    return {
        "recall_at_10": round(float(np.mean(overlap)), 4),
        "recall_above_review": round(found_wanted / max(1, wanted), 4),
        "originals_in_top10": round(
            float(np.mean([o in row for o, row in zip(originals, found, strict=True)])), 4
        ),
    }


def measure_size(size: int, data: dict[str, Any], compare: bool, floor: float) -> dict[str, Any]:
    import faiss

    vectors, originals = references(size, data)
    queries = data["query_vectors"].astype(np.float32)
    ids = np.arange(size, dtype=np.int64)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    exact_scores, exact_ids = flat.search(queries, K)
    p50, p99 = latencies_ms(flat, queries[:LATENCY_QUERIES_EXACT])
    row: dict[str, Any] = {
        "vectors": size,
        "real_vectors": min(size, len(data["vectors"])),
        "exact": {
            "ms_p50": p50,
            "ms_p99": p99,
            "originals_in_top10": round(
                float(np.mean([o in r for o, r in zip(originals, exact_ids, strict=True)])), 4
            ),
        },
    }
    del flat
    gc.collect()

    before = resident_bytes()
    start = time.perf_counter()
    engine = build_index(SPEC, vectors, ids)
    build_s = time.perf_counter() - start
    added = resident_bytes() - before
    _, found = engine.search(queries, K)
    p50, p99 = latencies_ms(engine.index, queries)
    disk = int(faiss.serialize_index(engine.index).size)
    row["engine"] = {
        "index_type": engine.index_type,
        "build_s": round(build_s, 2),
        "disk_mb": round(disk / 2**20, 1),
        "resident_mb_added": round(added / 2**20, 1),
        "mb_per_million": round(disk / 2**20 * 1_000_000 / size, 1),
        "ms_p50": p50,
        "ms_p99": p99,
        **accuracy(found, exact_ids, exact_scores, originals, floor),
    }
    del engine
    gc.collect()
    if compare:
        row["compare"] = compare_indexes(
            vectors, queries, exact_ids, exact_scores, originals, floor
        )
    print(json.dumps(row), flush=True)
    return row


def compare_indexes(
    vectors: NDArray[np.float32],
    queries: NDArray[np.float32],
    exact_ids: NDArray[np.int64],
    exact_scores: NDArray[np.float32],
    originals: NDArray[np.int64],
    floor: float,
) -> list[dict[str, Any]]:
    """IVF (the engine's list count) over nprobe, HNSW (M 32) over efSearch."""
    import faiss

    rows = []
    nlist = ivf_list_count(len(vectors))
    start = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors[np.random.default_rng(0).permutation(len(vectors))[: nlist * 64]])
    ivf.add(vectors)
    build_s = round(time.perf_counter() - start, 1)

    def sweep(
        index: Any, owner: Any, knob: str, values: tuple[int, ...], label: str, build: float
    ) -> None:
        """Search with ``owner.knob`` set to each value in turn."""
        for value in values:
            setattr(owner, knob, value)
            _, found = index.search(queries, K)
            p50, p99 = latencies_ms(index, queries)
            rows.append(
                {"index": label.format(value), "build_s": build, "ms_p50": p50,
                 "ms_p99": p99, **accuracy(found, exact_ids, exact_scores, originals, floor)}
            )  # fmt: skip

    sweep(ivf, ivf, "nprobe", (32, 64, 128, 256), f"ivf{nlist},nprobe={{}}", build_s)
    del ivf
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(vectors)
    build_s = round(time.perf_counter() - start, 1)
    sweep(hnsw, hnsw.hnsw, "efSearch", (64, 128, 256, 512), "hnsw32,efSearch={}", build_s)
    del hnsw
    gc.collect()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000]
    )
    parser.add_argument("--compare", action="store_true", help="also sweep IVF and HNSW")
    parser.add_argument(
        "--real-limit", type=int, help="real vectors from the first N corpus files only (quick)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "index_search.json"
    )
    args = parser.parse_args()
    import faiss

    data = corpus_vectors(limit=args.real_limit)
    floor = float(SETTINGS_BY_NAME["sscd_review"].default)
    rows = [measure_size(size, data, args.compare, floor) for size in args.sizes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "schema": "provenance.benchmark.index-search/2",
                "date": dt.date.today().isoformat(),
                "command": "python benchmarks/index_search.py --sizes "
                + " ".join(str(s) for s in args.sizes)
                + (" --compare" if args.compare else "")
                + (f" --real-limit {args.real_limit}" if args.real_limit else ""),
                "queries": len(data["query_vectors"]),
                "review_floor": floor,
                "threads": faiss.omp_get_max_threads(),
                "machine": describe(),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"{'vectors':>9} {'index':<28}{'build s':>8}{'MB':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'R@10':>7}{'R>=rev':>7}")  # fmt: skip
    for row in rows:
        e = row["engine"]
        print(
            f"{row['vectors']:>9} {e['index_type']:<28}{e['build_s']:>8}{e['disk_mb']:>8}"
            f"{e['ms_p50']:>8}{e['ms_p99']:>8}{e['recall_at_10']:>7}{e['recall_above_review']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
