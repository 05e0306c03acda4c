"""FAISS indexes of reference vectors, saved with a manifest that names their detector.

On disk, for index ``NAME`` in a folder::

    NAME.json                 the manifest: format label, detector spec, count, index type,
                              checksum of the vectors and ids, checksum of the ids alone
                              (compared with the reference set's items: a stale index is
                              found), and the index file's name and sha256
    NAME.<sha256[:16]>.faiss  the FAISS index, named by its content

Saving writes the new index file under its own name, then atomically replaces the manifest,
then removes index files the manifest no longer names. A crash at any point leaves a
manifest that names a complete file, so the previous index stays usable until the new one is
committed. Loading checks the format, the detector spec (an index made under another spec is
refused: it must be rebuilt) and the file's checksum.

Index types, chosen by size (benchmarks/index_search.py measures them):

- ``flat-ip``: exact inner product for unit-length embeddings (cosine), below
  ``EXACT_LIMIT`` vectors;
- ``ivf{lists}-pq{m}x4fs-refine-fp16``, from ``EXACT_LIMIT`` on: an inverted file (about
  4·sqrt(n) lists, at most ``MAX_LISTS``) of 4-bit product-quantizer codes searched with
  FAISS's fast-scan kernels over ``probe_count`` lists (a quarter, at most about
  ``SCAN_CODES`` codes), whose ``REFINE_FACTOR``·k best are
  re-scored exactly against float16 copies of the vectors. The float16 copies are the
  bulk of the file and are memory-mapped when it is loaded, so a set of ten million
  vectors is searched without holding them in memory;
- ``ivf{lists}-flat-ip``: the IVF of earlier versions (still loaded and searched);
- ``binary-flat``: exact Hamming distance for hashes.

The manifest records the type; ``refs rebuild`` builds the type the set's size calls for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from provenance.atomic import write_atomically
from provenance.detectors.base import DetectorSpec
from provenance.errors import IndexCorrupt, IndexMissing, IndexSpecMismatch, InvalidInput

INDEX_FORMAT = "provenance.index/1"
# Exact search below this many vectors, IVF-PQ above. Measured here (SSCD vectors of real
# images topped up with synthetic ones, 2 threads, benchmarks/index_search.py): exact
# search costs 1.1 ms per query at 10k vectors, 3.4 ms at 30k (p99 5.1) and 17 ms at 100k.
EXACT_LIMIT = 40_000
# IVF-PQ: lists probed (a quarter of them, at most about SCAN_CODES codes: see
# probe_count), codes of PQ_CODES 4-bit numbers, and the candidates re-scored exactly per
# neighbour asked for. Chosen by trying these against exact search at 1M vectors (IVF
# 4096 with 64 to 1,536 lists probed, 64 or 128 codes, 100 to 2,000 candidates): recall
# over the review line and recall@10 at the latency a check can afford; README, Index
# search, has what the engine's choice gives. A check may probe more (search_nprobe).
PROBED_SHARE = 4
PQ_CODES = 128
REFINE_FACTOR = 100
MAX_LISTS = 8192
SCAN_CODES = 600_000
# Rows converted and added at a time when building an IVF-PQ index.
ADD_ROWS = 100_000


@dataclass
class VectorIndex:
    """A searchable index and what it was built from."""

    spec: DetectorSpec
    index: Any
    index_type: str
    count: int
    vectors_sha256: str
    # sha256 of the item ids indexed (``ids_checksum``): compared with the set's items.
    ids_sha256: str | None = None

    @property
    def nprobe(self) -> int | None:
        """Inverted lists probed per query (IVF indexes), None for exact indexes."""
        ivf = _ivf_of(self.index)
        return int(ivf.nprobe) if ivf is not None else None

    def set_nprobe(self, nprobe: int) -> None:
        """Probe ``nprobe`` lists per query from now on (IVF indexes; exact ones ignore it)."""
        ivf = _ivf_of(self.index)
        if ivf is not None:
            if nprobe < 1:
                raise InvalidInput(f"nprobe must be at least 1, got {nprobe}")
            ivf.nprobe = min(nprobe, int(ivf.nlist))

    def search(self, queries: NDArray[Any], k: int) -> tuple[NDArray[Any], NDArray[np.int64]]:
        """The ``k`` nearest items per query row: (scores, ids), best first; id -1 pads.

        Cosine indexes score by inner product (higher is closer); Hamming indexes by the
        number of differing bits (lower is closer).
        """
        queries = _checked_vectors(self.spec, queries)
        k = max(1, min(k, self.count)) if self.count else 1
        if self.nprobe is not None:
            scores, ids = self.index.search(queries, k)
            return scores, ids.astype(np.int64)
        # Exact search of a few queries is a millisecond's work: FAISS's OpenMP threads
        # waking beside ONNX Runtime's spinning pool cost more than they give (a one-query
        # search took 11-48 ms right after a model run, 0.02-0.13 ms alone).
        import faiss

        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)
        return scores, ids.astype(np.int64)


def build_index(
    spec: DetectorSpec, vectors: NDArray[Any], ids: NDArray[Any], *, nprobe: int | None = None
) -> VectorIndex:
    """Index ``vectors`` (one row per item) under the caller's ``ids`` (int64, unique).

    From ``EXACT_LIMIT`` vectors on, ``vectors`` may be any array read by row slices (a
    float16 memory-mapped file of ten million rows, say): it is read ADD_ROWS rows at a
    time, never converted whole."""
    import faiss

    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (len(vectors),):
        raise InvalidInput(f"{len(vectors)} vectors but {len(ids)} ids")
    if len(np.unique(ids)) != len(ids):
        raise InvalidInput("index ids must be unique")
    ids_sha256 = ids_checksum(ids)
    index: Any
    if spec.metric != "hamming" and len(vectors) >= EXACT_LIMIT:
        index, index_type, checksum = _ivf_pq_refined(spec, vectors, ids)
    else:
        vectors = _checked_vectors(spec, vectors)
        checksum = vectors_checksum(vectors, ids)
        if spec.metric == "hamming":
            index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(spec.dim))
            index_type = "binary-flat"
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(spec.dim))
            index_type = "flat-ip"
        if len(vectors):
            index.add_with_ids(vectors, ids)
    built = VectorIndex(spec, index, index_type, len(vectors), checksum, ids_sha256)
    if nprobe is not None:
        built.set_nprobe(nprobe)
    return built


def _ivf_pq_refined(
    spec: DetectorSpec, vectors: Any, ids: NDArray[np.int64]
) -> tuple[Any, str, str]:
    """IVF of 4-bit PQ codes (fast scan) whose best candidates are re-scored against
    float16 copies of the vectors, searched under the caller's ``ids``; its type label and
    the vectors' checksum (as ``vectors_checksum`` gives it), all read in row slices."""
    import faiss

    dim, count = spec.dim, len(vectors)
    nlist = ivf_list_count(count)
    codes = PQ_CODES if dim % PQ_CODES == 0 else dim // 4
    base = faiss.index_factory(dim, f"IVF{nlist},PQ{codes}x4fs", faiss.METRIC_INNER_PRODUCT)
    refine = faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    refined = faiss.IndexRefine(base, refine)
    # FAISS needs 30 to 256 training points per list; more only costs time.
    rows = np.sort(np.random.default_rng(0).permutation(count)[: nlist * 64])
    refined.train(_checked_vectors(spec, vectors[rows]))
    refined.k_factor = REFINE_FACTOR
    faiss.extract_index_ivf(base).nprobe = probe_count(nlist, count)
    index = faiss.IndexIDMap2(refined)
    digest = hashlib.sha256(ids.tobytes())
    for start in range(0, count, ADD_ROWS):
        chunk = _checked_vectors(spec, vectors[start : start + ADD_ROWS])
        digest.update(chunk.tobytes())
        index.add_with_ids(chunk, ids[start : start + ADD_ROWS])
    return index, f"ivf{nlist}-pq{codes}x4fs-refine-fp16", digest.hexdigest()


def probe_count(nlist: int, count: int) -> int:
    """Lists an IVF-PQ index of ``count`` vectors probes by default: a quarter of them, but
    no more than hold about SCAN_CODES codes (the time a query takes grows with the codes
    it scans)."""
    per_list = max(1.0, count / nlist)
    return max(1, min(nlist // PROBED_SHARE, math.ceil(SCAN_CODES / per_list)))


def ivf_list_count(count: int) -> int:
    """Inverted lists for ``count`` vectors: about 4·sqrt(n), a power of two (FAISS's
    guideline of 4·sqrt(n) to 16·sqrt(n)), at most MAX_LISTS (training more lists costs
    more than a bigger share of each probed)."""
    return min(MAX_LISTS, int(2 ** round(math.log2(max(16.0, 4 * math.sqrt(count))))))


def _ivf_of(index: Any) -> Any:
    """The inverted-file index inside ``index`` (also through an ID map and a refine
    stage); None for exact indexes."""
    import faiss

    if not isinstance(index, faiss.Index):
        return None  # a binary index
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def ids_checksum(ids: Iterable[int]) -> str:
    """The sha256 of a set of item ids (order does not matter)."""
    ordered = np.sort(np.fromiter(ids, dtype=np.int64))
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def vectors_checksum(vectors: NDArray[Any], ids: NDArray[Any]) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(vectors).tobytes())
    return digest.hexdigest()


def save_index(index: VectorIndex, folder: Path, name: str) -> Path:
    """Write ``index`` as ``folder/name.json`` plus its content-named file; return the
    manifest's path. Raises OSError."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    # Written by FAISS to a temporary name, hashed, then renamed to its content name: a
    # large index is never serialised into memory.
    incoming = folder / f".incoming-{name}-{os.getpid()}.faiss"
    try:
        if index.spec.metric == "hamming":
            faiss.write_index_binary(index.index, str(incoming))
        else:
            faiss.write_index(index.index, str(incoming))
        with open(incoming, "rb") as handle:
            os.fsync(handle.fileno())
        file_sha256 = _file_sha256(incoming)
        file_name = f"{name}.{file_sha256[:16]}.faiss"
        os.replace(incoming, folder / file_name)
    finally:
        incoming.unlink(missing_ok=True)
    manifest = {
        "format": INDEX_FORMAT,
        "detector": index.spec.to_json(),
        "count": index.count,
        "index_type": index.index_type,
        "vectors_sha256": index.vectors_sha256,
        "ids_sha256": index.ids_sha256,
        "file": file_name,
        "file_sha256": file_sha256,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    manifest_path = folder / f"{name}.json"
    write_atomically(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    for stale in folder.glob(f"{name}.*.faiss"):
        if stale.name != file_name:
            stale.unlink(missing_ok=True)
    return manifest_path


def read_manifest(folder: Path, name: str) -> dict[str, Any]:
    path = folder / f"{name}.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexMissing(f"no index {name!r} in {folder}; build it first") from None
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index manifest {path.name} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        label = manifest.get("format") if isinstance(manifest, dict) else None
        raise IndexCorrupt(f"{path.name} has format {label!r}, not {INDEX_FORMAT!r}; rebuild it")
    return manifest


def load_index(
    folder: Path, name: str, spec: DetectorSpec, *, nprobe: int | None = None
) -> VectorIndex:
    """Load index ``name``; refuse it when ``spec`` (the detector as it is now) differs from
    the spec it was built with, or when its file does not match the manifest. ``nprobe``
    overrides the lists an IVF index probes (the search_nprobe setting)."""
    import faiss

    manifest = read_manifest(folder, name)
    try:
        built_with = DetectorSpec.from_json(manifest["detector"])
    except (KeyError, TypeError, ValueError):
        raise IndexCorrupt(f"{name}.json has no valid detector spec; rebuild it") from None
    if built_with != spec:
        changed = [
            field
            for field, value in spec.to_json().items()
            if built_with.to_json().get(field) != value
        ]
        raise IndexSpecMismatch(
            f"index {name!r} was built by a different {spec.name} detector "
            f"({', '.join(changed)} changed); rebuild the index"
        )
    path = folder / str(manifest.get("file", ""))
    mapped = "refine" in str(manifest.get("index_type", ""))
    try:
        if mapped:
            # Hashed in chunks, then read with its float16 copies memory-mapped: a large
            # index is never held in memory whole.
            digest = _file_sha256(path)
        else:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
    except OSError:
        raise IndexCorrupt(f"index file {path.name} is missing; rebuild the index") from None
    if digest != manifest.get("file_sha256"):
        raise IndexCorrupt(f"index file {path.name} does not match its manifest; rebuild it")
    index: Any
    try:
        if mapped:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            _read_at_random(path)
        elif spec.metric == "hamming":
            index = faiss.deserialize_index_binary(np.frombuffer(data, dtype=np.uint8))
        else:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexCorrupt(f"index file {path.name} cannot be read ({exc}); rebuild it") from None
    if index.ntotal != manifest.get("count"):
        raise IndexCorrupt(
            f"index {name!r} holds {index.ntotal} vectors, manifest says "
            f"{manifest.get('count')}; rebuild it"
        )
    ids_sha256 = manifest.get("ids_sha256")
    loaded = VectorIndex(
        spec,
        index,
        str(manifest["index_type"]),
        int(index.ntotal),
        str(manifest["vectors_sha256"]),
        str(ids_sha256) if ids_sha256 else None,
    )
    if nprobe is not None:
        loaded.set_nprobe(nprobe)
    return loaded


def _read_at_random(path: Path) -> None:
    """Tell the kernel that this process reads its mappings of ``path`` at random
    (``MADV_RANDOM``): re-scoring touches a thousand scattered float16 rows a query, and
    read-ahead (megabytes per fault on some disks) would read far more than those rows
    whenever they are not in the page cache. The mapped pages are the kernel's to keep or
    drop; they count as the process's file-backed memory, not as memory it holds. Linux
    only; elsewhere nothing is done."""
    import ctypes
    import ctypes.util

    madvise_random = 1
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        target = str(path.resolve())
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].strip() == target:
                    start, end = (int(value, 16) for value in fields[0].split("-"))
                    libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start),
                                 madvise_random)  # fmt: skip
    except OSError:
        return


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _checked_vectors(spec: DetectorSpec, vectors: NDArray[Any]) -> NDArray[Any]:
    """Vectors in the dtype and shape the spec implies, C-contiguous."""
    given = np.asarray(vectors)
    width, dtype = spec.vector_layout()
    kind_ok = given.dtype == np.uint8 if spec.metric == "hamming" else given.dtype.kind == "f"
    array = np.ascontiguousarray(given, dtype=dtype) if kind_ok else given
    if not kind_ok or array.ndim != 2 or array.shape[1] != width:
        raise InvalidInput(
            f"{spec.name} vectors must have {width} columns of {np.dtype(dtype).name}, "
            f"got {given.dtype.name} of shape {given.shape}"
        )
    return array
