"""SSCD vectors of the whole benchmark corpus, and of edited copies of some of its images.

The index benchmark mixes these real vectors into its reference sets and sends the edited
copies as queries, as a check would. Computed once (about five minutes here) and cached
beside the corpus in ``benchmarks/.corpus/sscd-vectors.npz``; never committed.

    python benchmarks/corpus_vectors.py [--queries 400] [--limit N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.quality import families, rgb  # noqa: E402
from provenance.detectors.sscd import SSCDDetector  # noqa: E402
from provenance.errors import ProvenanceError  # noqa: E402

CORPUS = ROOT / "benchmarks" / ".corpus"
CACHE = CORPUS / "sscd-vectors.npz"
BATCH = 64


def cache_path(limit: int | None) -> Path:
    return CACHE if limit is None else CACHE.with_name(f"sscd-vectors-{limit}.npz")


def corpus_vectors(queries: int = 400, limit: int | None = None) -> dict[str, NDArray[np.generic]]:
    """``vectors`` (one row per decodable corpus image, or of the first ``limit`` files),
    ``names``, ``query_vectors`` (edited copies) and ``query_sources`` (the row each copy
    was made from); cached."""
    cache = cache_path(limit)
    if cache.is_file():
        with np.load(cache) as cached:
            loaded = {key: cached[key] for key in cached.files}
        if len(loaded["query_vectors"]) >= queries:
            return loaded
    files = sorted((CORPUS / "images").iterdir())[:limit]
    if not files:
        raise SystemExit("no corpus; run benchmarks/corpus.py")
    sscd = SSCDDetector()
    names: list[str] = []
    chunks: list[NDArray[np.float32]] = []
    pending: list[tuple[str, object]] = []
    start = time.perf_counter()

    def flush() -> None:
        chunks.append(sscd.embed([image for _, image in pending]))  # type: ignore[misc]
        names.extend(name for name, _ in pending)
        pending.clear()

    for count, path in enumerate(files, 1):
        try:
            pending.append((path.name, rgb(path)))
        except ProvenanceError:
            continue
        if len(pending) == BATCH:
            flush()
        if count % 1000 == 0:
            print(f"  {count}/{len(files)} images, {time.perf_counter() - start:.0f} s", flush=True)
    if pending:
        flush()
    vectors = np.concatenate(chunks)
    rng = random.Random(7)
    edits = families(files)
    sources = rng.sample(range(len(names)), queries)
    edited = []
    for row in sources:
        family = rng.choice(sorted(edits))
        edit = rng.choice(edits[family])
        edited.append(edit(rgb(CORPUS / "images" / names[row]), rng).convert("RGB"))
    result: dict[str, NDArray[np.generic]] = {
        "vectors": vectors,
        "names": np.array(names),
        "query_vectors": sscd.embed(edited),
        "query_sources": np.array(sources, dtype=np.int64),
    }
    np.savez(cache, **result)  # type: ignore[arg-type]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--limit", type=int, help="only the first N corpus files (quick runs)")
    args = parser.parse_args()
    data = corpus_vectors(args.queries, args.limit)
    print(f"{len(data['vectors'])} corpus vectors, {len(data['query_vectors'])} query vectors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
