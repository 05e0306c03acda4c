"""Reference search at scale: the engine's index against exact search, 10k to 10M vectors.

Reference vectors are the SSCD vectors of the real benchmark corpus (about 12k images,
benchmarks/corpus_vectors.py) plus synthetic vectors to reach each size, of one of two kinds
(``--topup``):

- ``gaussian`` (the pessimistic case): drawn from a Gaussian with the real vectors' mean and
  covariance, then normalised; they spread like embeddings of distinct images (same
  principal directions and variances), none a copy of another, with no clusters;
- ``clustered``: families of 10 to 100 near-duplicates (cosine 0.8 to 0.95 to their centre,
  like the frames of one shot of a series) around centres drawn from that Gaussian.

Queries are SSCD vectors of edited copies of corpus images (AugLy edits and composites), one
at a time, as `provenance check` sends them; their originals are always among the
references.

Per size: the index the engine builds (provenance.index.faiss_index.build_index), saved and
loaded again through load_index in a fresh process, as a check loads it: its build time,
size on disk, the process's resident memory after loading it and after the queries, and the
per-query latency p50/p99. Against exact search: recall@10, recall of the neighbours scoring
at or above the SSCD review line (the matches a verdict can depend on), and how often the
copy's original is in the top 10; each both strictly (the exact neighbour's id must be
returned) and with ties (ANN-Benchmarks' convention: a returned neighbour whose exact cosine
is within 0.001 of the exact k-th counts; float16 re-scoring and near-duplicate references
swap such neighbours). With ``--huge N`` (10M), the references are written to a float16
file and indexed from it, as no machine here holds 10M float32 vectors twice.

    python benchmarks/index_search.py [--sizes 10000 100000 1000000] [--topup gaussian]
        [--huge 10000000] [--compare]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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
from provenance.index.faiss_index import (  # noqa: E402
    build_index,
    ivf_list_count,
    load_index,
    save_index,
)

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


def clustered_like(real: NDArray[np.float32], count: int, seed: int) -> NDArray[np.float32]:
    """``count`` unit vectors in families of 10 to 100 near-duplicates: each family's centre
    from the Gaussian fitted to ``real``, its members at cosine 0.8 to 0.95 from it."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < count:
        sizes.append(int(rng.integers(10, 101)))
    sizes[-1] -= sum(sizes) - count
    centres = synthetic_like(real, len(sizes), seed=seed + 1)
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    row = 0
    for centre, size in zip(centres, sizes, strict=True):
        # cos(member, centre) = 1 / sqrt(1 + dim * sigma^2) for isotropic noise of sigma.
        cosine = rng.uniform(0.8, 0.95)
        sigma = np.sqrt((1 / cosine**2 - 1) / real.shape[1])
        noise = rng.standard_normal((size, real.shape[1]), dtype=np.float32) * sigma
        out[row : row + size] = centre + noise
        row += size
    return l2_normalise(out)


TOPUPS = {"gaussian": synthetic_like, "clustered": clustered_like}


def real_rows(size: int, data: dict[str, Any]) -> NDArray[np.int64]:
    """Which real vectors a reference set of ``size`` (at most the real count) holds: every
    query's original plus a random sample, in corpus order."""
    sources = np.unique(data["query_sources"])
    others = np.setdiff1d(np.arange(len(data["vectors"])), sources)
    keep = np.random.default_rng(size).permutation(others)[: size - len(sources)]
    return np.sort(np.concatenate([sources, keep])).astype(np.int64)


def references(
    size: int, data: dict[str, Any], topup: str = "gaussian"
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``size`` reference vectors (real ones first, then synthetic ones) and the row of each
    query's original among them."""
    real = data["vectors"].astype(np.float32)
    sources = data["query_sources"].astype(np.int64)
    if size > len(real):
        extra = TOPUPS[topup](real, size - len(real), seed=size)
        return np.vstack([real, extra]), sources
    rows = real_rows(size, data)
    return np.ascontiguousarray(real[rows]), np.searchsorted(rows, sources)


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def status_bytes(field: str) -> int:
    """A size from /proc/self/status: VmHWM (peak resident), RssAnon (memory the process
    holds), RssFile (file pages mapped in, the page cache's to keep or drop)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


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
    """recall@10, recall of exact neighbours scoring >= ``floor``, originals in the top 10
    (strict: by id)."""
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


def accuracy_with_ties(
    found_cosines: NDArray[np.float32],
    exact_scores: NDArray[np.float32],
    floor: float,
    tie: float,
    label: str,
) -> dict[str, float]:
    """recall@10 and recall over ``floor`` counting a returned neighbour whose exact cosine
    (``found_cosines``, per query and rank; -inf for padding) is within ``tie`` of the
    exact k-th as found; keys ``recall_at_10_{label}`` and ``recall_above_review_{label}``."""
    hits = wanted = found_wanted = 0
    for got, exact in zip(found_cosines, exact_scores, strict=True):
        kth = exact[K - 1] - tie
        hits += int(np.sum(got >= kth))
        strong = int(np.sum(exact >= floor))
        wanted += strong
        found_wanted += min(strong, int(np.sum((got >= floor - tie) & (got >= kth))))
    return {
        f"recall_at_10_{label}": round(hits / (K * len(exact_scores)), 4),
        f"recall_above_review_{label}": round(found_wanted / max(1, wanted), 4),
    }


# ANN-Benchmarks' convention: a neighbour within 0.001 of the exact k-th counts.
TIE = 1e-3
# Equal cosines, up to float32 rounding: the reference sets hold identical vectors (the
# same picture twice, or a frame held for several frames), and among those no index can
# return the ids exact search happened to list.
IDENTICAL = 1e-6


def serve(folder: str, queries: NDArray[np.float32]) -> dict[str, Any]:
    """In a fresh process: load the index as a check does, search one query at a time;
    latency, what was found, and the resident memory it took (anonymous and file-mapped
    apart: the float16 copies are a memory-mapped file)."""
    before = resident_bytes()
    index = load_index(Path(folder), "sscd", SPEC)
    loaded = resident_bytes()
    p50, p99 = latencies_ms(index, queries)
    _, found = index.search(queries, K)
    return {
        "ms_p50": p50,
        "ms_p99": p99,
        "found": found,
        "resident_mb_loaded": round((loaded - before) / 2**20, 1),
        "resident_mb_after_queries": round((resident_bytes() - before) / 2**20, 1),
        "peak_resident_mb": round(status_bytes("VmHWM") / 2**20, 1),
        "anonymous_mb_after_queries": round(status_bytes("RssAnon") / 2**20, 1),
        "file_mapped_mb_after_queries": round(status_bytes("RssFile") / 2**20, 1),
        "threads": __import__("faiss").omp_get_max_threads(),
    }


def served(folder: Path, queries: NDArray[np.float32]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(serve, str(folder), queries).result()


def exact_top(vectors: Any, queries: NDArray[np.float32]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Exact top K (scores, rows) of every query, reading ``vectors`` a million rows at a
    time (a float16 file of ten million is never converted whole)."""
    import faiss

    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), K), -1, dtype=np.int64)
    for start in range(0, len(vectors), 1_000_000):
        flat = faiss.IndexFlatIP(queries.shape[1])
        flat.add(np.ascontiguousarray(vectors[start : start + 1_000_000], dtype=np.float32))
        scores, rows = flat.search(queries, K)
        merged_scores = np.hstack([best_scores, scores])
        merged_rows = np.hstack([best_rows, rows + start])
        order = np.argsort(-merged_scores, axis=1)[:, :K]
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best_rows = np.take_along_axis(merged_rows, order, axis=1)
    return best_scores, best_rows


def measure_size(
    size: int,
    data: dict[str, Any],
    compare: bool,
    floor: float,
    topup: str,
    scratch: Path,
    vectors: Any = None,
    originals: NDArray[np.int64] | None = None,
) -> dict[str, Any]:
    import faiss

    if vectors is None:
        vectors, originals = references(size, data, topup)
    assert originals is not None
    queries = data["query_vectors"].astype(np.float32)
    ids = np.arange(size, dtype=np.int64)
    exact_scores, exact_ids = exact_top(vectors, queries)
    row: dict[str, Any] = {
        "vectors": size,
        "topup": topup,
        "real_vectors": min(size, len(data["vectors"])),
        "exact": {
            "originals_in_top10": round(
                float(np.mean([o in r for o, r in zip(originals, exact_ids, strict=True)])), 4
            ),
        },
    }
    if size <= 1_000_000:
        flat = faiss.IndexFlatIP(DIM)
        flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        row["exact"]["ms_p50"], row["exact"]["ms_p99"] = latencies_ms(
            flat, queries[:LATENCY_QUERIES_EXACT]
        )
        del flat
    gc.collect()
    start = time.perf_counter()
    engine = build_index(SPEC, vectors, ids)
    build_s = time.perf_counter() - start
    folder = scratch / f"index-{size}-{topup}"
    save_index(engine, folder, "sscd")
    index_type = engine.index_type
    del engine
    gc.collect()
    disk = sum(p.stat().st_size for p in folder.glob("*.faiss"))
    serving = served(folder, queries)
    found = serving.pop("found")
    found_cosines = np.array(
        [
            [float(np.dot(np.asarray(vectors[i], dtype=np.float32), q)) if i >= 0 else -np.inf
             for i in row_ids]
            for row_ids, q in zip(found, queries, strict=True)
        ],
        dtype=np.float32,
    )  # fmt: skip
    row["engine"] = {
        "index_type": index_type,
        "build_s": round(build_s, 2),
        "disk_mb": round(disk / 2**20, 1),
        "mb_per_million": round(disk / 2**20 * 1_000_000 / size, 1),
        **serving,
        **accuracy(found, exact_ids, exact_scores, originals, floor),
        **accuracy_with_ties(found_cosines, exact_scores, floor, TIE, "ties"),
        **accuracy_with_ties(found_cosines, exact_scores, floor, IDENTICAL, "identical"),
    }
    shutil.rmtree(folder)
    if compare:
        row["compare"] = compare_indexes(
            np.ascontiguousarray(vectors, dtype=np.float32), queries, exact_ids, exact_scores,
            originals, floor,
        )  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def measure_huge(size: int, data: dict[str, Any], floor: float, scratch: Path) -> dict[str, Any]:
    """``size`` references (real, then the Gaussian top-up) written to a float16 file in
    million-row slices, indexed from it."""
    real = data["vectors"].astype(np.float32)
    path = scratch / f"references-{size}.f16"
    vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(size, DIM))
    vectors[: len(real)] = real
    for start in range(len(real), size, 1_000_000):
        rows = min(1_000_000, size - start)
        vectors[start : start + rows] = synthetic_like(real, rows, seed=start)
    vectors.flush()
    originals = data["query_sources"].astype(np.int64)
    try:
        return measure_size(size, data, False, floor, "gaussian", scratch, vectors, originals)
    finally:
        del vectors
        path.unlink()


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
        "--sizes", type=int, nargs="*", default=[10_000, 30_000, 100_000, 300_000, 1_000_000]
    )
    parser.add_argument("--topup", choices=sorted(TOPUPS), nargs="+", default=["gaussian"])
    parser.add_argument("--huge", type=int, help="also this many references (Gaussian top-up)")
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
    rows: dict[str, list[dict[str, Any]]] = {}
    huge = None
    # Beside the corpus, on disk (ten million float16 vectors are 10 GB), never committed.
    with tempfile.TemporaryDirectory(prefix=".scratch-", dir=ROOT / "benchmarks") as scratch:
        for topup in args.topup:
            rows[topup] = [
                measure_size(size, data, args.compare, floor, topup, Path(scratch))
                for size in args.sizes
            ]
        if args.huge:
            huge = measure_huge(args.huge, data, floor, Path(scratch))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "schema": "provenance.benchmark.index-search/3",
                "date": dt.date.today().isoformat(),
                "command": "python benchmarks/index_search.py --sizes "
                + " ".join(str(s) for s in args.sizes)
                + " --topup "
                + " ".join(args.topup)
                + (f" --huge {args.huge}" if args.huge else "")
                + (" --compare" if args.compare else "")
                + (f" --real-limit {args.real_limit}" if args.real_limit else ""),
                "queries": len(data["query_vectors"]),
                "review_floor": floor,
                "tie": TIE,
                "identical": IDENTICAL,
                "threads": faiss.omp_get_max_threads(),
                "machine": describe(),
                # The first top-up's rows, as the calibration notebook reads them.
                "rows": rows.get(args.topup[0], []),
                "rows_by_topup": rows,
                "huge": huge,
            },
            indent=2,
            default=lambda value: value.tolist() if hasattr(value, "tolist") else str(value),
        )
        + "\n"
    )
    everything = [r for found in rows.values() for r in found] + ([huge] if huge else [])
    print(f"{'vectors':>9} {'top-up':<10}{'index':<32}{'build s':>8}{'MB':>8}{'RSS MB':>8}"
          f"{'p50':>7}{'p99':>7}{'R@10':>7}{'R>=rev':>7}{'R@10=':>7}{'R>=rev=':>8}"
          f"{'R@10~':>7}{'R>=rev~':>8}")  # fmt: skip
    for row in everything:
        e = row["engine"]
        print(
            f"{row['vectors']:>9} {row['topup']:<10}{e['index_type']:<32}{e['build_s']:>8}"
            f"{e['disk_mb']:>8}{e['resident_mb_after_queries']:>8}{e['ms_p50']:>7}"
            f"{e['ms_p99']:>7}{e['recall_at_10']:>7}{e['recall_above_review']:>7}"
            f"{e['recall_at_10_identical']:>7}{e['recall_above_review_identical']:>8}"
            f"{e['recall_at_10_ties']:>7}{e['recall_above_review_ties']:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
