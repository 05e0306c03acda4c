"""Reference sets: material the production must not recreate, fingerprinted and indexed.

Adding images stores each file in the content store, records it as a reference item,
computes its vector under every available detector and keeps the vectors in the database;
then one FAISS index per detector is rebuilt from them under ``indexes/<set>/``. Each file
is committed on its own, so an interrupted run resumes where it stopped: files already
recorded with vectors for the current detector specs are skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from numpy.typing import NDArray
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance import cluster as clusters
from provenance.atomic import write_atomically
from provenance.cluster import Cluster
from provenance.db import audit, repository
from provenance.db.session import one_line, read_session, write_transaction
from provenance.db.tables import ReferenceItem, ReferenceSet, ReferenceVector, utcnow
from provenance.detectors import load_detector, parse_detector_names
from provenance.detectors.base import Detector
from provenance.domain import FingerprintLimits, ReferenceSetInfo, UserInfo
from provenance.errors import InvalidInput, NotFound, ProvenanceError, WorkspaceExists
from provenance.export.documents import set_info
from provenance.files import Skipped, collect_files, display_name, read_file
from provenance.index.faiss_index import build_index, save_index
from provenance.locks import reference_set_lock
from provenance.media import DecodedImage, decode_image
from provenance.workspace import Workspace

RIGHTS = ("third-party", "owned", "licensed", "talent")
MANIFEST_FORMAT = "provenance.reference-set/1"
# Files embedded together when a set is filled: the models run faster on batches (SSCD
# about 1.3x, CLIP in bf16 about 2.5x at 16 against 1 here).
EMBED_BATCH = 16
# ...or fewer, once the decoded pictures waiting hold this many pixels (8-bit RGB: 3 bytes
# each), so that a folder of 16K plates does not hold sixteen of them in memory at once.
EMBED_PIXELS = 100_000_000
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}\Z")

# Called after each file: its path, its outcome ("added", "known", "failed: ..."), done, total.
IngestProgress = Callable[[str, str, int, int], None]


@dataclass
class IngestReport:
    """What adding images to a reference set did."""

    name: str
    added: int = 0
    known: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.refs-ingest/1",
            "reference_set": self.name,
            "added": self.added,
            "already_present": self.known,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "skipped": [s.path for s in self.skipped],
            "skipped_why": [s.to_json() for s in self.skipped],
            "indexes": self.indexes,
            "unavailable_detectors": self.unavailable,
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"reference set name {name!r}: use lower-case letters, digits, '.', '_' or '-' "
            "(up to 100, starting with a letter or digit)"
        )
    return name


def check_rights(rights: str) -> str:
    if rights not in RIGHTS:
        raise InvalidInput(f"unknown rights status {rights!r}; choose one of: {', '.join(RIGHTS)}")
    return rights


def create_set(
    workspace: Workspace,
    name: str,
    *,
    rights: str,
    holder: str | None,
    description: str,
    source: str | None,
    actor: str,
) -> None:
    """Record a new, empty reference set and write its manifest."""
    check_name(name)
    check_rights(rights)
    exists = WorkspaceExists(f"reference set {name!r} already exists; use refs add-items")
    try:
        with write_transaction(workspace.engine) as session:
            existing = session.scalar(select(ReferenceSet).where(ReferenceSet.name == name))
            if existing is not None and existing.removed_at is None:
                raise exists
            if existing is not None:
                # A removed set's name is reused by a new set; the old rows keep their history
                # under a renamed set so that old checks still resolve.
                existing.name = f"{name}.removed-{existing.id}"
                session.flush()
            session.add(
                ReferenceSet(
                    name=name,
                    description=description,
                    rights_status=rights,
                    rights_holder=holder,
                    source=source,
                )
            )
            audit.append_event(
                session,
                actor=actor,
                action="refset.created",
                subject=f"refset:{name}",
                payload={"rights": rights, "holder": holder, "description": description},
            )
    except IntegrityError:
        # Two admins creating the same set at once (PostgreSQL): the unique name decides.
        raise exists from None
    write_manifest(workspace, name)


def active_set(session: Any, name: str) -> ReferenceSet:
    found = session.scalar(
        select(ReferenceSet).where(ReferenceSet.name == name, ReferenceSet.removed_at.is_(None))
    )
    if found is None:
        raise NotFound(f"no reference set named {name!r}")
    return found  # type: ignore[no-any-return]


def add_items(
    workspace: Workspace,
    name: str,
    sources: Iterable[Path],
    *,
    attribution: str | None,
    actor: str,
    progress: IngestProgress | None = None,
    cluster: Cluster | None = None,
) -> IngestReport:
    """Add the images found at ``sources`` to set ``name`` and rebuild its indexes;
    ``cluster``: decode and embed on its workers while this process records."""
    report = IngestReport(name)
    detectors = _available_detectors(workspace, report)
    with read_session(workspace.engine) as session:
        reference_set = active_set(session, name)
        set_id = reference_set.id
    found, skipped = collect_files(sources, exclude=workspace.root, moving=False)
    files = [f for f in found if isinstance(f, Path)]  # moving=False: no sequences
    report.skipped.extend(skipped)
    attributions = _attributions(sources)
    if cluster is None:
        outcomes = _added_here(
            workspace, set_id, files, detectors, attributions, attribution, actor
        )
    else:
        outcomes = _added_on(cluster, workspace, set_id, files, detectors, attributions,
                             attribution, actor)  # fmt: skip
    for done, (path, outcome) in enumerate(outcomes, start=1):
        if outcome == "added":
            report.added += 1
        elif outcome == "known":
            report.known += 1
        else:
            report.failed.append((str(path), outcome.removeprefix("failed: ")))
        if progress is not None:
            progress(str(path), outcome, done, len(files))
    audit.record_event(
        workspace.engine,
        actor=actor,
        action="refset.items_added",
        subject=f"refset:{name}",
        payload={"added": report.added, "failed": len(report.failed)},
    )
    report.indexes = rebuild_indexes(workspace, name, detectors, actor=actor)
    write_manifest(workspace, name)
    return report


def _added_here(
    workspace: Workspace,
    set_id: int,
    files: list[Path],
    detectors: list[Detector],
    attributions: dict[str, str],
    attribution: str | None,
    actor: str,
) -> Iterator[tuple[Path, str]]:
    """Each file with its outcome, fingerprinted in this process EMBED_BATCH at a time."""
    for start in range(0, len(files), EMBED_BATCH):
        chunk = files[start : start + EMBED_BATCH]
        outcomes = _add_chunk(
            workspace, set_id, chunk, detectors, attributions, attribution, actor=actor
        )
        yield from zip(chunk, outcomes, strict=True)


def _added_on(
    cluster: Cluster,
    workspace: Workspace,
    set_id: int,
    files: list[Path],
    detectors: list[Detector],
    attributions: dict[str, str],
    attribution: str | None,
    actor: str,
) -> Iterator[tuple[Path, str]]:
    """Each file with its outcome, in order: read here (its bytes are stored and recorded
    here), decoded and embedded on the cluster's workers EMBED_BATCH files to a task, a
    bounded window of tasks ahead; each file committed here on its own, as it comes back.
    A worker that dies has its tasks run again by another (Dask's retries); a file already
    committed is never committed twice, so a run interrupted and started again resumes."""
    labels = [d.spec.label() for d in detectors]
    settings = workspace.settings
    limits = workspace.fingerprint_limits
    committed: set[str] = set()
    window: deque[tuple[list[Path], list[_Pending | str], Any]] = deque()
    chunks = iter(range(0, len(files), EMBED_BATCH))

    def send() -> None:
        while len(window) < 2 * max(1, cluster.workers):
            start = next(chunks, None)
            if start is None:
                return
            paths = files[start : start + EMBED_BATCH]
            staged: list[_Pending | str] = []
            for path in paths:
                try:
                    read = _read(workspace, set_id, path, detectors)
                except ProvenanceError as exc:
                    staged.append(f"failed: {exc}")
                    continue
                if read is None or any(
                    isinstance(p, _Pending) and p.sha256 == read.sha256 for p in staged
                ):
                    staged.append("known")  # in the set already, or earlier in this task
                else:
                    staged.append(read)
            payload = [
                (p.data, [d.spec.label() for d in p.missing])
                for p in staged
                if isinstance(p, _Pending)
            ]
            future = (
                cluster.submit(
                    fingerprint_on_worker,
                    settings,
                    str(workspace.root),
                    limits,
                    labels,
                    cluster.model_threads,
                    payload,
                )
                if payload
                else None
            )
            window.append((paths, staged, future))

    send()
    while window:
        paths, staged, future = window.popleft()
        results: list[Any] = []
        if future is not None:
            try:
                results = list(future.result())
            except Exception as exc:  # the task failed on every worker it was given to
                results = [f"the cluster could not fingerprint it: {one_line(exc)}"] * sum(
                    isinstance(p, _Pending) for p in staged
                )
        answers = iter(results)
        for path, item in zip(paths, staged, strict=True):
            if isinstance(item, str):
                yield path, item
                continue
            answer = next(answers)
            if isinstance(answer, str):
                yield path, f"failed: {answer}"
                continue
            if item.sha256 in committed:  # the same bytes in two files of one run
                yield path, "known"
                continue
            item.media, item.vectors = answer
            try:
                outcome = _commit(workspace, set_id, item, attributions, attribution, actor=actor)
            except ProvenanceError as exc:
                outcome = f"failed: {exc}"
            committed.add(item.sha256)
            yield path, outcome
        send()


# One worker process's detectors, by the settings they were made with.
_worker_detectors: dict[str, list[Detector]] = {}


def fingerprint_on_worker(
    settings: Any,
    root: str,
    limits: FingerprintLimits,
    labels: list[str],
    model_threads: int | None,
    payload: list[tuple[bytes, list[str]]],
) -> list[tuple[dict[str, Any], dict[str, tuple[str, bytes]]] | str]:
    """Run on a cluster's worker: decode each file's bytes and embed it under the detector
    specs it lacks (``payload``: bytes and spec labels), with the same code as a run in one
    process. Per file, its media facts and vectors, or why it failed (as text: not every
    exception pickles). ``labels``: the caller's detectors; a worker whose detectors differ
    (another version, other weights) refuses."""
    key = json.dumps([root, dict(settings), model_threads], sort_keys=True, default=str)
    if key not in _worker_detectors:
        loaded = []
        for name in parse_detector_names(settings["detectors"]):
            try:
                loaded.append(load_detector(name, settings, Path(root), threads=model_threads))
            except ProvenanceError:
                continue  # named below if the caller needs it
        _worker_detectors[key] = loaded
    by_label = {d.spec.label(): d for d in _worker_detectors[key]}
    lacking = [label for label in labels if label not in by_label]
    if lacking:
        problem = f"worker's detectors differ from this workspace's ({', '.join(lacking)})"
        return [problem] * len(payload)
    answers: list[Any] = []
    items: list[_Pending] = []
    for data, wanted in payload:
        try:
            decoded = decode_image(data, max_pixels=limits.max_pixels, colour=limits.colour)
        except ProvenanceError as exc:
            answers.append(str(exc))
            continue
        missing = [by_label[label] for label in wanted]
        item = _Pending(Path(), b"", "", None, missing, decoded, decoded.media_json())
        items.append(item)
        answers.append(item)
    try:
        _embed(items, list(by_label.values()))
    except ProvenanceError as exc:
        return [a if isinstance(a, str) else str(exc) for a in answers]
    return [a if isinstance(a, str) else (a.media, a.vectors) for a in answers]


def _available_detectors(workspace: Workspace, report: IngestReport) -> list[Detector]:
    detectors = []
    for detector_name, detector in workspace.detectors().items():
        if isinstance(detector, ProvenanceError):
            report.unavailable[detector_name] = str(detector)
        else:
            detectors.append(detector)
    return detectors


def _attributions(sources: Iterable[Path]) -> dict[str, str]:
    """Per-file credits from an ``attributions.json`` ({"file name": "credit"}) in a
    source folder."""
    found: dict[str, str] = {}
    for source in sources:
        candidate = Path(source) / "attributions.json"
        if candidate.is_file():
            try:
                document = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"{candidate}: not readable JSON: {exc}") from None
            if not isinstance(document, dict) or not all(
                isinstance(v, str) for v in document.values()
            ):
                raise InvalidInput(f"{candidate}: must map file names to credit strings")
            found.update(document)
    return found


@dataclass
class _Pending:
    """A file read (and, here or on a cluster's worker, decoded), waiting for its
    vectors."""

    path: Path
    data: bytes
    sha256: str
    item_id: int | None
    missing: list[Detector]
    decoded: DecodedImage | None = None
    media: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def _add_chunk(
    workspace: Workspace,
    set_id: int,
    paths: list[Path],
    detectors: list[Detector],
    attributions: dict[str, str],
    attribution: str | None,
    *,
    actor: str,
) -> list[str]:
    """Add a few files, embedding them together (models run faster on batches); each
    file is still committed on its own, and decoded pictures are embedded as soon as they
    hold EMBED_PIXELS between them. One outcome per path: added, known or failed: …"""
    outcomes = [""] * len(paths)
    pending: list[tuple[int, _Pending]] = []

    def flush() -> None:
        try:
            _embed([item for _, item in pending], detectors)
        except ProvenanceError as exc:
            for position, _ in pending:
                outcomes[position] = f"failed: {exc}"
            pending.clear()
        for position, item in pending:
            try:
                outcomes[position] = _commit(
                    workspace, set_id, item, attributions, attribution, actor=actor
                )
            except ProvenanceError as exc:
                outcomes[position] = f"failed: {exc}"
        pending.clear()

    for position, path in enumerate(paths):
        try:
            prepared = _prepare(workspace, set_id, path, detectors)
        except ProvenanceError as exc:
            outcomes[position] = f"failed: {exc}"
            continue
        if prepared is None or any(p.sha256 == prepared.sha256 for _, p in pending):
            outcomes[position] = "known"  # already in the set, or earlier in this batch
            continue
        pending.append((position, prepared))
        if sum(_pixels(p) for _, p in pending) >= EMBED_PIXELS:
            flush()
    flush()
    return outcomes


def _pixels(item: _Pending) -> int:
    return item.decoded.pixels.width * item.decoded.pixels.height if item.decoded else 0


def _embed(items: list[_Pending], detectors: list[Detector]) -> None:
    """Each detector's vectors for the items that lack them, one batch per detector."""
    for detector in detectors:
        wanting = [item for item in items if detector in item.missing]
        if wanting:
            rows = detector.embed([item.decoded.pixels for item in wanting if item.decoded])
            for item, row in zip(wanting, rows, strict=True):
                item.vectors[detector.spec.label()] = (detector.spec.name, _row_bytes(row))


def _prepare(
    workspace: Workspace, set_id: int, path: Path, detectors: list[Detector]
) -> _Pending | None:
    """Read and decode ``path``; None when the set already has it with every vector."""
    pending = _read(workspace, set_id, path, detectors)
    if pending is not None:
        pending.decoded = decode_image(
            pending.data,
            max_pixels=workspace.fingerprint_limits.max_pixels,
            colour=workspace.fingerprint_limits.colour,
        )
        pending.media = pending.decoded.media_json()
    return pending


def _read(
    workspace: Workspace, set_id: int, path: Path, detectors: list[Detector]
) -> _Pending | None:
    """Read ``path``; None when the set already has it with every vector."""
    data = read_file(path, workspace.fingerprint_limits.max_file_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    with read_session(workspace.engine) as session:
        item = session.scalar(
            select(ReferenceItem).where(
                ReferenceItem.set_id == set_id, ReferenceItem.sha256 == sha256
            )
        )
        have = (
            set(
                session.scalars(
                    select(ReferenceVector.spec).where(ReferenceVector.item_id == item.id)
                )
            )
            if item is not None
            else set()
        )
    missing = [d for d in detectors if d.spec.label() not in have]
    if item is not None and not missing:
        return None
    return _Pending(path, data, sha256, item.id if item is not None else None, missing)


def _commit(
    workspace: Workspace,
    set_id: int,
    pending: _Pending,
    attributions: dict[str, str],
    attribution: str | None,
    *,
    actor: str,
) -> str:
    """Store the file and write its item, its vectors and its audit event in one
    transaction."""
    workspace.store.put(pending.data, pending.sha256)
    with write_transaction(workspace.engine) as session:
        item_id = pending.item_id
        if item_id is None:
            item = ReferenceItem(
                set_id=set_id,
                sha256=pending.sha256,
                source_path=display_name(str(pending.path)),
                attribution=attributions.get(pending.path.name, attribution),
                media=pending.media,
            )
            session.add(item)
            session.flush()
            item_id = item.id
        for label, (detector_name, vector) in pending.vectors.items():
            session.add(
                ReferenceVector(item_id=item_id, detector=detector_name, spec=label, vector=vector)
            )
        audit.append_event(
            session,
            actor=actor,
            action="refset.item_added" if pending.item_id is None else "refset.item_embedded",
            subject=f"refitem:{item_id}",
            payload={
                "set_id": set_id,
                "item_id": item_id,
                "sha256": pending.sha256,
                "specs": sorted(pending.vectors),
            },
        )
    return "added" if pending.item_id is None else "known"


def _row_bytes(row: Any) -> bytes:
    """One vector as stored in ``reference_vectors``."""
    return np.ascontiguousarray(row).tobytes()


def _vector_bytes(detector: Detector, pixels: Image.Image) -> bytes:
    """One picture's vector as stored in ``reference_vectors``."""
    return _row_bytes(detector.embed([pixels])[0])


def rebuild_indexes(
    workspace: Workspace, name: str, detectors: list[Detector] | None = None, *, actor: str
) -> dict[str, dict[str, Any]]:
    """Rebuild every detector's index of set ``name`` from the stored vectors, embedding
    any item that lacks a vector under a detector's current spec. The caller holds the
    set's lock (``locks.reference_set_lock``)."""
    if detectors is None:
        detectors = [d for d in workspace.detectors().values() if not isinstance(d, Exception)]
    with read_session(workspace.engine) as session:
        set_id = active_set(session, name).id
        ids = _item_ids(session, set_id)
        # Before any index is replaced: a malformed vector of the last detector must not
        # leave the first's rebuilt.
        for detector in detectors:
            _refuse_malformed_vectors(session, set_id, detector)
    folder = workspace.root / "indexes" / name
    # The set's lock is held (callers take it): a temporary here is a killed build's.
    for leftover in folder.glob(".incoming-*"):
        leftover.unlink(missing_ok=True)
    built: dict[str, dict[str, Any]] = {}
    for detector in detectors:
        with _gathered_vectors(workspace, set_id, ids, detector, folder, actor=actor) as matrix:
            index = build_index(detector.spec, matrix, ids)
        try:
            save_index(index, folder, detector.spec.name)
        except OSError as exc:
            raise ProvenanceError(f"cannot write the {detector.spec.name} index: {exc}") from None
        built[detector.spec.name] = {
            "count": index.count,
            "index_type": index.index_type,
            "vectors_sha256": index.vectors_sha256,
        }
    audit.record_event(
        workspace.engine,
        actor=actor,
        action="refset.indexed",
        subject=f"refset:{name}",
        payload=built,
    )
    return built


# Vectors read from the database per round trip when an index is rebuilt.
GATHER_ROWS = 10_000
# A rebuild gathers a set's vectors in memory up to this size, beyond it in a temporary
# file beside the indexes (ten million SSCD vectors are 20 GB): the index is built from
# row slices of it (``build_index``).
GATHER_IN_MEMORY_BYTES = 2**30


def _refuse_malformed_vectors(session: Session, set_id: int, detector: Detector) -> None:
    """Refuse, in one line, a set one of whose stored vectors under the detector's spec
    has not the length the spec implies (a record altered outside the product)."""
    width, dtype = detector.spec.vector_layout()
    row_bytes = width * np.dtype(dtype).itemsize
    label = detector.spec.label()
    length = func.length(ReferenceVector.vector)
    found = session.execute(
        select(ReferenceVector.item_id, length)
        .join(ReferenceItem)
        .where(ReferenceItem.set_id == set_id, ReferenceVector.spec == label, length != row_bytes)
        .limit(1)
    ).first()
    if found is not None:
        raise ProvenanceError(
            f"the stored {label} vector of reference item {found[0]} has {found[1]} bytes, "
            f"not {row_bytes}: the record was altered (audit verify names the rows); "
            "nothing was rebuilt"
        )


def _item_ids(session: Session, set_id: int) -> NDArray[np.int64]:
    """The ids of the set's items, ascending, as one array (not a row object each)."""
    statement = (
        select(ReferenceItem.id)
        .where(ReferenceItem.set_id == set_id)
        .order_by(ReferenceItem.id)
        .execution_options(yield_per=GATHER_ROWS)
    )
    return np.fromiter(session.scalars(statement), dtype=np.int64)


@contextlib.contextmanager
def _gathered_vectors(
    workspace: Workspace,
    set_id: int,
    ids: NDArray[np.int64],
    detector: Detector,
    folder: Path,
    *,
    actor: str,
) -> Iterator[NDArray[Any]]:
    """Every item's vector under the detector's spec, one row per id of ``ids``, streamed
    from the database into an array (a temporary file past GATHER_IN_MEMORY_BYTES); items
    without one are embedded now from their stored copy (after a detector's spec
    changed)."""
    label = detector.spec.label()
    width, dtype = detector.spec.vector_layout()
    row_bytes = width * np.dtype(dtype).itemsize
    with contextlib.ExitStack() as stack:
        if len(ids) * row_bytes > GATHER_IN_MEMORY_BYTES:
            folder.mkdir(parents=True, exist_ok=True)
            spill = stack.enter_context(
                tempfile.NamedTemporaryFile(dir=folder, prefix=".incoming-vectors-")
            )
            matrix: NDArray[Any] = np.memmap(spill, dtype=dtype, mode="w+", shape=(len(ids), width))
        else:
            matrix = np.empty((len(ids), width), dtype=dtype)
        filled = np.zeros(len(ids), dtype=bool)
        statement = (
            select(ReferenceVector.item_id, ReferenceVector.vector)
            .join(ReferenceItem)
            .where(ReferenceItem.set_id == set_id, ReferenceVector.spec == label)
            .execution_options(yield_per=GATHER_ROWS)
        )
        with read_session(workspace.engine) as session:
            for rows in session.execute(statement).partitions():
                at = np.searchsorted(ids, [row[0] for row in rows])
                matrix[at] = np.frombuffer(
                    b"".join(bytes(row[1]) for row in rows), dtype=dtype
                ).reshape(len(rows), width)
                filled[at] = True
        for position in np.flatnonzero(~filled):
            vector = _embed_stored(workspace, int(ids[position]), detector, label, actor=actor)
            matrix[position] = np.frombuffer(vector, dtype=dtype)
        yield matrix


def _embed_stored(
    workspace: Workspace, item_id: int, detector: Detector, label: str, *, actor: str
) -> bytes:
    """Embed reference item ``item_id`` from its stored copy and record the vector."""
    with read_session(workspace.engine) as session:
        sha256 = session.scalar(select(ReferenceItem.sha256).where(ReferenceItem.id == item_id))
    assert sha256 is not None  # an item of the set, read under the set's lock
    decoded = decode_image(
        workspace.store.read(sha256),
        max_pixels=workspace.fingerprint_limits.max_pixels,
        colour=workspace.fingerprint_limits.colour,
    )
    vector = _vector_bytes(detector, decoded.pixels)
    with write_transaction(workspace.engine) as session:
        session.add(
            ReferenceVector(item_id=item_id, detector=detector.spec.name, spec=label, vector=vector)
        )
        audit.append_event(
            session,
            actor=actor,
            action="refset.item_embedded",
            subject=f"refitem:{item_id}",
            payload={"item_id": item_id, "specs": [label]},
        )
    return vector


def remove_set(workspace: Workspace, name: str, *, actor: str) -> None:
    """Retire a set: its indexes and manifest go; its rows stay for the checks that used it."""
    with write_transaction(workspace.engine) as session:
        reference_set = active_set(session, name)
        reference_set.removed_at = utcnow()
        audit.append_event(
            session,
            actor=actor,
            action="refset.removed",
            subject=f"refset:{name}",
            payload={"items": len(reference_set.items)},
        )
    folder = workspace.root / "indexes" / name
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()
    (workspace.root / "reference_sets" / f"{name}.toml").unlink(missing_ok=True)


def write_manifest(workspace: Workspace, name: str) -> None:
    """Write ``reference_sets/<name>.toml``: the set, its rights, and every item."""
    with read_session(workspace.engine) as session:
        document = set_info(active_set(session, name), with_items=True).to_json()
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": document["name"],
        "description": document["description"],
        "rights_status": document["rights_status"],
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "items": [
            {k: v for k, v in item.items() if v is not None} for item in document["item_list"]
        ],
    }
    for key in ("rights_holder", "source"):
        if document[key]:
            manifest[key] = document[key]
    path = workspace.root / "reference_sets" / f"{name}.toml"
    try:
        write_atomically(path, tomli_w.dumps(manifest).encode("utf-8"))
    except OSError as exc:
        raise ProvenanceError(f"cannot write {path.name}: {exc.strerror}") from None


def create(
    workspace: Workspace,
    name: str,
    sources: Iterable[Path],
    *,
    rights: str,
    holder: str | None = None,
    description: str = "",
    attribution: str | None = None,
    by: str | None = None,
    progress: IngestProgress | None = None,
    user: UserInfo | None = None,
    source: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Create set ``name`` from the images at ``sources`` and build its indexes.
    ``user``: an admin the web pages signed in; ``source``: what the set's record names
    as its origin (default: the paths given). ``scheduler`` (``tcp://HOST:PORT``) or
    ``workers`` (a local cluster of that many processes): fingerprint on a Dask cluster."""
    sources = [Path(s) for s in sources]
    for path in sources:
        if not path.exists():
            raise InvalidInput(f"{path}: no such file or folder")
    check_name(name)
    actor = _actor(workspace, by, user)
    with (
        reference_set_lock(workspace.root, name),
        clusters.maybe_connect(scheduler, workers) as cluster,
    ):
        create_set(
            workspace,
            name,
            rights=rights,
            holder=holder,
            description=description,
            source=source or ", ".join(str(s) for s in sources),
            actor=actor,
        )
        return add_items(
            workspace,
            name,
            sources,
            attribution=attribution,
            actor=actor,
            progress=progress,
            cluster=cluster,
        )


def add(
    workspace: Workspace,
    name: str,
    sources: Iterable[Path],
    *,
    attribution: str | None = None,
    by: str | None = None,
    progress: IngestProgress | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Add images to an existing set (files already in it are skipped); ``scheduler`` or
    ``workers``: on a Dask cluster, as for ``create``."""
    check_name(name)
    actor = _actor(workspace, by)
    with (
        reference_set_lock(workspace.root, name),
        clusters.maybe_connect(scheduler, workers) as cluster,
    ):
        return add_items(
            workspace,
            name,
            [Path(s) for s in sources],
            attribution=attribution,
            actor=actor,
            progress=progress,
            cluster=cluster,
        )


def rebuild(workspace: Workspace, name: str, *, by: str | None = None) -> dict[str, Any]:
    """Rebuild a set's indexes under the detectors' current specs."""
    check_name(name)
    with reference_set_lock(workspace.root, name):
        return rebuild_indexes(workspace, name, actor=_actor(workspace, by))


def remove(workspace: Workspace, name: str, *, by: str | None = None) -> None:
    check_name(name)
    with reference_set_lock(workspace.root, name):
        remove_set(workspace, name, actor=_actor(workspace, by))


def _actor(workspace: Workspace, by: str | None, user: UserInfo | None = None) -> str:
    """The actor of a reference-set write: with a token (or signed in), an admin's."""
    if user is not None:
        return workspace.role_actor(None, ("admin",), "managing reference sets", user)
    return workspace.actor(by, role="admin", doing="managing reference sets")


def list_sets(workspace: Workspace) -> list[ReferenceSetInfo]:
    with read_session(workspace.engine) as session:
        return [set_info(s, with_items=False) for s in repository.active_reference_sets(session)]


def show(workspace: Workspace, name: str) -> ReferenceSetInfo:
    with read_session(workspace.engine) as session:
        return set_info(active_set(session, name), with_items=True)
