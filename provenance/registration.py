"""Registering files: the whole path from the files a user names to checked records.

    register -> collect_files -> _fingerprinted (in worker processes when the batch is
    large: _stage reads and looks up each file, fingerprint_file decodes, reads metadata,
    hashes and stores it) -> _record / _insert (one transaction per file, in this
    process) -> checking.check_pending (the new assets, and any still waiting)

``fingerprint_file`` takes and returns plain values so that it runs the same inline or in a
worker process. A failing file is reported and never stops the others or leaves anything
behind.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy.exc import IntegrityError

from provenance import checking, jsontext
from provenance import cluster as clusters
from provenance.cluster import Cluster
from provenance.db import audit, repository
from provenance.db.session import one_line, read_session, write_transaction
from provenance.db.tables import Asset, FingerprintRow, GenerationRecord, utcnow
from provenance.detectors.hashes import perceptual_hashes, sha256_fingerprint
from provenance.domain import (
    GENERATION_FIELDS,
    Fingerprint,
    FingerprintLimits,
    GenerationInfo,
    IntendedUse,
    MetadataReading,
    Source,
)
from provenance.errors import (
    CorruptMedia,
    InvalidInput,
    MediaError,
    MetadataError,
    ProvenanceError,
    StoreError,
)
from provenance.export.asset_json import asset_json
from provenance.files import (
    MOVIE_SUFFIXES,
    FrameSequence,
    Skipped,
    collect_files,
    display_name,
    hash_file,
    read_file,
)
from provenance.media import DecodedImage, check_picture, decode_image, tags_as_exif
from provenance.media.colour import spec as colour_spec
from provenance.media.moving import movie_facts, sample_movie, sequence_manifest
from provenance.metadata import read_embedded
from provenance.metadata.credentials import reading as credentials_reading
from provenance.metadata.sidecar import parse_seed, read_beside, read_sidecar
from provenance.processes import worker_count, worker_pool
from provenance.signing.credentials import read_credentials
from provenance.store import ContentStore
from provenance.workspace import Workspace

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 100_000
# Starting worker processes costs about 0.4 s and each saves about 1.5 ms per file on two
# cores (benchmarks/register_throughput.py): below this many files, one process is faster.
AUTO_WORKERS_MIN_FILES = 256


@dataclass
class RegisterRequest:
    """What the person registering says about the files (flags), all optional."""

    fields: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    use: IntendedUse | None = None
    production: str | None = None
    by: str | None = None
    metadata_file: Path | None = None
    # A file found in a folder and not read fails the whole run, before anything is
    # registered, instead of being listed as skipped.
    strict: bool = False

    @classmethod
    def from_flags(
        cls,
        *,
        fields: Mapping[str, Any] | None = None,
        settings: Iterable[str] = (),
        use: str | None = None,
        production: str | None = None,
        by: str | None = None,
        metadata_file: str | Path | None = None,
        strict: bool = False,
    ) -> RegisterRequest:
        """Validate command-line values; raise InvalidInput before any file is touched."""
        clean: dict[str, Any] = {}
        for name, value in (fields or {}).items():
            if name not in GENERATION_FIELDS:
                raise InvalidInput(f"unknown generation field {name!r}")
            if value is None:
                continue
            clean[name] = (
                parse_seed(value, "--seed")
                if name == "seed"
                else check_text(str(value), f"--{name.replace('_', '-')}")
            )
        parsed_settings: dict[str, Any] = {}
        for item in settings:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise InvalidInput(f"--setting {item!r} is not KEY=VALUE")
            check_text(key, "--setting key")
            try:
                parsed_settings[key] = jsontext.loads(raw)
            except jsontext.TooDeep as exc:
                raise InvalidInput(f"--setting {key}: {exc}") from None
            except ValueError:
                parsed_settings[key] = check_text(raw, f"--setting {key}")
        return cls(
            fields=clean,
            settings=parsed_settings,
            use=IntendedUse.parse(use) if use is not None else None,
            production=check_text(production, "--production").strip() if production else None,
            by=check_text(by, "--by").strip() if by else None,
            metadata_file=Path(metadata_file) if metadata_file is not None else None,
            strict=strict,
        )


def check_text(value: str, label: str) -> str:
    """Refuse text no record should hold: NUL characters (PostgreSQL rejects them) and
    values too long to be a prompt or a name."""
    if "\x00" in value:
        raise InvalidInput(f"{label} contains a NUL character")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInput(f"{label} is {len(value):,} characters, over {MAX_TEXT_CHARS:,}")
    return value


@dataclass
class RegisterResult:
    """The outcome for one file: ``new``, ``known`` (same bytes already registered) or
    ``failed`` (with the reason)."""

    path: str
    status: str
    asset: dict[str, Any] | None = None
    error: str | None = None
    check: checking.CheckResult | None = None
    # What was passed over while reading the file (a <stem>.json that is not a sidecar).
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "asset": self.asset,
            "error": self.error,
            "check": self.check.to_json() if self.check is not None else None,
            "notes": list(self.notes),
        }


@dataclass
class RegisterReport:
    """Every file's outcome, plus files skipped while walking folders."""

    results: list[RegisterResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Assets registered earlier and still unchecked (a run killed in its check phase),
    # checked by this run; and those whose check failed, with the error.
    earlier_checked: int = 0
    earlier_failed: list[tuple[int, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    def verdicts(self) -> dict[str, int]:
        """How many of this run's files were checked to each verdict, strongest first."""
        counted = dict.fromkeys(("high", "review", "clear"), 0)
        for result in self.results:
            if result.check is not None:
                counted[result.check.verdict] += 1
        return counted

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.register/2",
            "summary": {
                "new": self.count("new"),
                "known": self.count("known"),
                "failed": self.count("failed"),
                "skipped": len(self.skipped),
                "earlier_checked": self.earlier_checked,
                "verdicts": self.verdicts(),
            },
            "results": [result.to_json() for result in self.results],
            "skipped": [s.to_json() for s in self.skipped],
            "earlier_check_failures": [
                {"asset_id": asset_id, "error": error} for asset_id, error in self.earlier_failed
            ],
        }


@dataclass
class FingerprintedFile:
    """A file decoded, fingerprinted and copied into the store, ready to be recorded."""

    path: Path
    sha256: str
    size: int
    media: dict[str, Any]
    readings: list[MetadataReading]
    fingerprints: list[Fingerprint]
    created_blob: bool
    # A sequence's frames and manifest this registration stored (removed if it fails).
    created_blobs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class WorkerError(Exception):
    """An unexpected error in a fingerprinting worker, carried back as text."""


def fingerprint_file(
    path: Path, sha256: str, limits: FingerprintLimits, store_root: Path, data: bytes | None
) -> FingerprintedFile:
    """Decode, read metadata, hash and store one file (runs in a worker process or inline).

    ``data`` is the file's bytes when the caller already holds them; otherwise the file is
    read again and must still have the bytes ``sha256`` names.
    """
    try:
        if data is None:
            data = read_file(path, limits.max_file_bytes)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise MediaError("file changed while it was being registered")
        decoded = decode_image(data, max_pixels=limits.max_pixels, colour=limits.colour)
        readings, notes = _readings(decoded, path, data, limits)
        fingerprints = [
            sha256_fingerprint(sha256),
            *perceptual_hashes(decoded.pixels, limits.hash_names, colour_spec(decoded.colour)),
        ]
        created = ContentStore(store_root).put(data, sha256)
    except ProvenanceError:
        raise
    except Exception as exc:
        # Whatever it is, it must cross the process boundary intact.
        raise WorkerError(f"{type(exc).__name__}: {exc}") from None
    return FingerprintedFile(
        path, sha256, len(data), decoded.media_json(), readings, fingerprints, created, notes=notes
    )


def fingerprint_movie(
    path: Path, sha256: str, size: int, limits: FingerprintLimits, store_root: Path
) -> FingerprintedFile:
    """Probe a movie, decode every frame (a damaged file fails here, before anything is
    stored), read its container tags, hash its first frame and store a streamed copy.
    The file's sha256 stands for its frames."""
    try:
        probed = movie_facts(path, max_pixels=limits.max_pixels)
        counted = [0]

        def count(number: int) -> None:
            counted[0] = number + 1

        poster: Image.Image | None = None
        for _, picture in sample_movie(
            path,
            step=1 << 30,
            limit=1,
            expected_frames=probed.facts["frames"],
            on_frame=count,
        ):
            poster = picture
        if poster is None:  # sample_movie raises first; kept for the type checker
            raise CorruptMedia("damaged or truncated movie: no frame could be decoded")
        decoded = counted[0]
        media = {**probed.facts, "frames": decoded, "poster_frame": 0}
        tags = {k: v for k, v in probed.tags.items() if isinstance(v, str)}
        still = DecodedImage(
            pixels=poster,
            format=str(media["format"]),
            width=poster.width,
            height=poster.height,
            mode="RGB",
            bit_depth=8,
            frame_count=int(decoded or 1),
            has_alpha=False,
            orientation=1,
            info=tags,
            exif=tags_as_exif(tags),
        )
        readings, notes = _readings(still, path, None, limits)
        fingerprints = [
            sha256_fingerprint(sha256),
            *_frame_hashes(perceptual_hashes(poster, limits.hash_names), 0),
        ]
        created = ContentStore(store_root).put_file(path, sha256)
    except ProvenanceError:
        raise
    except Exception as exc:
        raise WorkerError(f"{type(exc).__name__}: {exc}") from None
    return FingerprintedFile(
        path, sha256, size, media, readings, fingerprints, created, notes=notes
    )


def fingerprint_sequence(
    sequence: FrameSequence, limits: FingerprintLimits, store_root: Path, frame_rate: float
) -> FingerprintedFile:
    """Decode, hash and store every frame of a sequence, one at a time, then store its
    manifest (``provenance.sequence/1``: each frame's number, name and sha256), whose
    sha256 is the asset's. A missing or damaged frame fails the whole sequence and removes
    the frames this call stored."""
    if sequence.missing:
        raise MediaError(
            f"sequence {sequence.pattern} is missing {len(sequence.missing)} frame(s): "
            f"{_frame_list(sequence.missing)}"
        )
    store = ContentStore(store_root)
    created: list[str] = []
    try:
        entries = []
        first: DecodedImage | None = None
        total = 0
        for number, frame_path in sequence.frames:
            data = read_file(frame_path, limits.max_file_bytes)
            try:
                # The first frame is decoded for its hashes and facts; the others are read
                # whole, pixel by pixel, to know they are not damaged.
                if first is None:
                    first = decode_image(data, max_pixels=limits.max_pixels, colour=limits.colour)
                    size = (first.width, first.height)
                else:
                    size = check_picture(data, max_pixels=limits.max_pixels)
            except MediaError as exc:
                raise type(exc)(f"frame {number} ({frame_path.name}): {exc}") from None
            if size != (first.width, first.height):
                raise MediaError(
                    f"frame {number} is {size[0]}x{size[1]}, the first frame "
                    f"{first.width}x{first.height}"
                )
            digest = hashlib.sha256(data).hexdigest()
            if store.put(data, digest):
                created.append(digest)
            entries.append({"frame": number, "name": frame_path.name, "sha256": digest})
            total += len(data)
        assert first is not None  # a sequence has two frames or more
        manifest = sequence_manifest(Path(sequence.pattern).name, entries)
        sha256 = hashlib.sha256(manifest).hexdigest()
        if store.put(manifest, sha256):
            created.append(sha256)
        frames = [int(str(e["frame"])) for e in entries]
        media = {
            **first.media_json(),
            "kind": "sequence",
            "frames": len(frames),
            "first_frame": frames[0],
            "last_frame": frames[-1],
            # The first frame's own rate and timecode (OpenEXR framesPerSecond, timeCode),
            # else the sequence_frame_rate setting's rate.
            "frame_rate": first.frame_rate or f"{frame_rate:g}",
            "timecode": first.timecode,
            "frame_sha256": {str(e["frame"]): e["sha256"] for e in entries},
        }
        readings = [_sanitised(r) for r in read_embedded(first)]
        fingerprints = [
            sha256_fingerprint(sha256),
            *_frame_hashes(
                perceptual_hashes(first.pixels, limits.hash_names, colour_spec(first.colour)),
                frames[0],
            ),
        ]
    except BaseException as exc:
        for digest in created:
            store.remove(digest)
        if isinstance(exc, ProvenanceError | KeyboardInterrupt):
            raise
        raise WorkerError(f"{type(exc).__name__}: {exc}") from None
    return FingerprintedFile(
        Path(sequence.pattern),
        sha256,
        total,
        media,
        readings,
        fingerprints,
        bool(created),
        tuple(created),
    )


def _frame_hashes(fingerprints: list[Fingerprint], frame: int) -> list[Fingerprint]:
    """Perceptual hashes of one frame of a movie or sequence, the frame named in the spec."""
    return [Fingerprint(f.kind, f"{f.spec};frame={frame}", f.value, f.bits) for f in fingerprints]


def _frame_list(frames: Iterable[int], shown: int = 8) -> str:
    listed = list(frames)
    text = ", ".join(str(f) for f in listed[:shown])
    return text + (f" and {len(listed) - shown} more" if len(listed) > shown else "")


def _readings(
    decoded: DecodedImage, path: Path, data: bytes | None, limits: FingerprintLimits
) -> tuple[list[MetadataReading], tuple[str, ...]]:
    """What the file says about how it was made, then its sidecar's, then its Content
    Credentials' (read from ``data``, or from the file at ``path`` when None); and a note
    when a same-named JSON file was passed over."""
    readings = [_sanitised(r) for r in read_embedded(decoded)]
    sidecar, note = read_beside(path)
    if sidecar is not None:
        readings.append(sidecar)
    summary = read_credentials(path.name, data, path, limits.trust_anchors)
    signed = credentials_reading(summary)
    if signed is not None:
        readings.append(_sanitised(signed))
    return readings, (note,) if note else ()


def _sanitised(reading: MetadataReading) -> MetadataReading:
    """Embedded text is what a tool wrote, not what a person typed: drop NUL characters
    (which PostgreSQL cannot store) instead of refusing the file."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "")
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return MetadataReading(
        reading.source, clean(reading.fields), clean(reading.settings), clean(reading.raw)
    )


# What the fingerprinting stage hands to the recording stage for one file.
Staged = RegisterResult | FingerprintedFile | BaseException
# Called after each file with its result, how many files are done and how many there are.
ProgressCallback = Callable[[RegisterResult, int, int], None]


def register(
    workspace: Workspace,
    paths: Iterable[str | Path],
    request: RegisterRequest,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
) -> RegisterReport:
    """Register files and folders (walked recursively). A failing file is reported and
    never stops the others or leaves anything behind.

    ``jobs``: processes that decode and fingerprint files while this one writes the
    records (default: the ``jobs`` setting; 0: automatic, see ``processes.worker_count``).
    ``scheduler`` (``tcp://HOST:PORT``) or ``workers`` (a local cluster of N processes): a
    Dask cluster's workers fingerprint the files and find the checks' matches instead;
    they must reach the files, the workspace folder and its database at the same paths as
    this process (a shared file system). This process writes every record, in order.
    """
    paths = list(paths)
    with clusters.maybe_connect(scheduler, workers) as cluster:
        if cluster is not None:
            # Workers read the files themselves, from another working directory.
            paths = [Path(path).resolve() for path in paths]
            clusters.require_paths(
                cluster,
                [str(path) for path in paths] + [str(workspace.root.resolve())],
                "registering on a cluster needs the files and the workspace at the same paths "
                "on every worker",
            )
        return _register(workspace, paths, request, progress, jobs, cluster)


def _register(
    workspace: Workspace,
    paths: Iterable[str | Path],
    request: RegisterRequest,
    progress: ProgressCallback | None,
    jobs: int | None,
    cluster: Cluster | None,
) -> RegisterReport:
    # Who registers is settled once, before any file is touched (a workspace with users
    # refuses an unnamed write here), and every file's record names them.
    request = replace(request, by=workspace.actor(request.by))
    shared = _shared_readings(request)
    report = RegisterReport()
    files, skipped = collect_files(paths, exclude=workspace.root)
    if skipped and request.strict:
        named = "; ".join(f"{s.path} ({s.reason})" for s in skipped[:5])
        more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise InvalidInput(
            f"--strict: {len(skipped)} file(s) found would not be read, so nothing was "
            f"registered: {named}{more}"
        )
    report.skipped.extend(skipped)
    workers = worker_count(
        workspace.settings["jobs"] if jobs is None else jobs, len(files), AUTO_WORKERS_MIN_FILES
    )
    fingerprinted = _fingerprinted(workspace, files, workers, cluster)
    for done, (path, outcome) in enumerate(fingerprinted, start=1):
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            result = (
                outcome
                if isinstance(outcome, RegisterResult)
                else _record(workspace, outcome, request, shared)
            )
        except ProvenanceError as exc:
            result = RegisterResult(str(path), "failed", error=str(exc))
        except Exception as exc:  # a bug must not abort a batch of a thousand files
            # The traceback is for developers (-vv); the report keeps one line.
            logger.debug("unexpected error registering %s", path, exc_info=exc)
            result = RegisterResult(str(path), "failed", error=one_line(exc))
        report.results.append(result)
        if progress is not None:
            progress(result, done, len(files))
    if workspace.settings["check_on_register"]:
        _check_new(workspace, report, request, jobs, cluster)
    return report


def _check_new(
    workspace: Workspace,
    report: RegisterReport,
    request: RegisterRequest,
    jobs: int | None,
    cluster: Cluster | None,
) -> None:
    """Check the assets registered now and every asset still waiting for a check (an
    earlier run killed in its check phase, or registered before the first reference
    set): a registered asset is never left unchecked. A failing check is reported, not
    fatal."""
    in_batch = {r.asset["id"]: r for r in report.results if r.asset is not None and r.check is None}
    outcome = checking.check_pending(workspace, by=request.by, jobs=jobs, cluster=cluster)
    for asset_id, check in outcome.checks.items():
        if asset_id in in_batch:
            in_batch[asset_id].check = check
        else:
            report.earlier_checked += 1
    for asset_id, error in outcome.failed.items():
        message = f"registered, but the check failed: {error}"
        if asset_id in in_batch:
            in_batch[asset_id].error = message
        else:
            report.earlier_failed.append((asset_id, error))


def _shared_readings(request: RegisterRequest) -> list[MetadataReading]:
    readings = []
    if request.metadata_file is not None:
        readings.append(read_sidecar(request.metadata_file, Source.METADATA_FILE))
    if request.fields or request.settings:
        readings.append(MetadataReading(Source.FLAG, dict(request.fields), dict(request.settings)))
    return readings


def _fingerprinted(
    workspace: Workspace,
    files: list[Path | FrameSequence],
    workers: int,
    cluster: Cluster | None = None,
) -> Iterator[tuple[Path | FrameSequence, Staged]]:
    """Each file, in order, with its outcome: already registered, fingerprinted and
    stored, or the error that stopped it. With several workers (or a cluster's), a
    bounded window of files is fingerprinted ahead in other processes while records are
    written here."""
    pool: ProcessPoolExecutor | Cluster | None = cluster
    if cluster is not None:
        workers = max(1, cluster.workers)
    elif workers > 1:
        pool = worker_pool(workers)
    try:
        window: deque[tuple[Path | FrameSequence, Staged | Any]] = deque()
        queue = iter(files)

        def refill() -> None:
            while len(window) < 2 * workers:
                path = next(queue, None)
                if path is None:
                    return
                try:
                    window.append((path, _stage(workspace, path, pool)))
                except Exception as exc:
                    window.append((path, exc))

        refill()
        while window:
            path, staged = window.popleft()
            if not isinstance(staged, RegisterResult | FingerprintedFile | BaseException):
                try:  # a future: of a worker process, or of a cluster's (Dask retries a
                    staged = staged.result()  # dead worker's tasks on the others)
                except Exception as exc:
                    staged = exc
            yield path, staged
            refill()
    finally:
        if isinstance(pool, ProcessPoolExecutor):
            pool.shutdown(cancel_futures=True)


def _stage(
    workspace: Workspace, path: Path | FrameSequence, pool: ProcessPoolExecutor | Cluster | None
) -> RegisterResult | FingerprintedFile | Future[FingerprintedFile] | Any:
    """Read the file and look its bytes up; fingerprint it here or hand it to ``pool`` (a
    process pool or a Dask cluster: a future either way)."""
    limits = workspace.fingerprint_limits
    if isinstance(path, FrameSequence):
        # A sequence's identity is its manifest, known only once every frame is read.
        rate = float(workspace.settings["sequence_frame_rate"])
        if pool is None:
            return fingerprint_sequence(path, limits, workspace.store.root, rate)
        return pool.submit(fingerprint_sequence, path, limits, workspace.store.root, rate)
    if path.suffix.lower() in MOVIE_SUFFIXES:
        sha256, size = hash_file(path, limits.max_movie_bytes)
        if (known := _known(workspace, path, sha256)) is not None:
            return known
        if pool is None:
            return fingerprint_movie(path, sha256, size, limits, workspace.store.root)
        return pool.submit(fingerprint_movie, path, sha256, size, limits, workspace.store.root)
    data = read_file(path, limits.max_file_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    if (known := _known(workspace, path, sha256)) is not None:
        return known
    if pool is None:
        return fingerprint_file(path, sha256, limits, workspace.store.root, data)
    # The worker reads the file again rather than receiving its bytes through a pipe.
    return pool.submit(fingerprint_file, path, sha256, limits, workspace.store.root, None)


def _known(workspace: Workspace, path: Path, sha256: str) -> RegisterResult | None:
    """The result for a file whose bytes are registered already; None for new bytes."""
    # A bare connection: most files are new, and this lookup runs once per file.
    with workspace.engine.connect() as connection:
        if repository.asset_id_by_sha256(connection, sha256) is None:
            return None
    with read_session(workspace.engine) as session:
        document = asset_json(repository.find_asset(session, sha256))
    return RegisterResult(str(path), "known", document)


def _record(
    workspace: Workspace,
    prepared: FingerprintedFile,
    request: RegisterRequest,
    shared: list[MetadataReading],
) -> RegisterResult:
    """Write the records of a fingerprinted, stored file; undo the store write on failure."""
    generation = GenerationInfo.merge([*prepared.readings, *shared])
    try:
        document, status = _insert(
            workspace,
            prepared.path,
            prepared.size,
            prepared.sha256,
            prepared.media,
            generation,
            prepared.fingerprints,
            request,
        )
    except BaseException:
        if prepared.created_blobs:  # a sequence: its frames are its own
            try:
                with write_transaction(workspace.engine) as session:
                    if repository.asset_id_by_sha256(session, prepared.sha256) is None:
                        for digest in prepared.created_blobs:
                            workspace.store.remove(digest)
            except ProvenanceError:
                logger.info("left orphan frames of %s for store gc", prepared.sha256[:12])
        elif prepared.created_blob:
            try:
                # Under the write lock, so that no other registration of the same bytes
                # can commit between the check and the removal (see _insert).
                with write_transaction(workspace.engine) as session:
                    if repository.asset_id_by_sha256(session, prepared.sha256) is None:
                        workspace.store.remove(prepared.sha256)
            except ProvenanceError:
                # The lock that just failed us is still taken: the copy stays an orphan
                # until `provenance store gc` removes it.
                logger.info("left orphan copy %s for store gc", prepared.sha256[:12])
        raise
    return RegisterResult(str(prepared.path), status, document, notes=prepared.notes)


def _insert(
    workspace: Workspace,
    path: Path,
    size: int,
    sha256: str,
    media: dict[str, Any],
    generation: GenerationInfo,
    fingerprints: list[Fingerprint],
    request: RegisterRequest,
) -> tuple[dict[str, Any], str]:
    """Write the asset, its generation record, fingerprints and audit event in one
    transaction; return the asset's JSON record and ``new`` or ``known``."""
    actor = workspace.actor(request.by)
    use = request.use or IntendedUse.UNDECLARED
    production_name = request.production or workspace.settings["production"] or None
    seed = generation.value("seed")
    generation_values = {
        "tool_version": _text_or_none(generation.value("tool_version")),
        "model": _text_or_none(generation.value("model")),
        "model_version": _text_or_none(generation.value("model_version")),
        "model_hash": _text_or_none(generation.value("model_hash")),
        "prompt": _text_or_none(generation.value("prompt")),
        "negative_prompt": _text_or_none(generation.value("negative_prompt")),
        "seed": None if seed is None else str(seed),
        "settings": {key: v.value for key, v in generation.settings.items()},
        "sources": {
            "fields": {k: v.source.value for k, v in generation.fields.items()},
            "settings": {k: v.source.value for k, v in generation.settings.items()},
        },
        "raw_metadata": generation.raw,
        "created_at": utcnow(),
    }
    asset_values = {
        "sha256": sha256,
        "size_bytes": size,
        "original_name": display_name(path.name),
        "store_path": workspace.store.relative_path(sha256),
        "media": media,
        "intended_use": use.value,
        "registered_by": actor,
        "registered_at": utcnow(),
    }
    fingerprint_values = [
        {
            "kind": f.kind,
            "spec": f.spec,
            "value": f.value,
            "bits": f.bits,
            "created_at": utcnow(),
        }
        for f in fingerprints
    ]
    tool_name = generation.value("tool")
    for name in ("tool_version", "model", "model_version", "model_hash", "prompt",
                 "negative_prompt", "seed"):  # fmt: skip
        _refuse_nul(name, generation_values[name])
    _refuse_nul("tool", tool_name)
    try:
        with write_transaction(workspace.engine) as session:
            # Another process may have registered the same bytes since we looked.
            if repository.asset_id_by_sha256(session, sha256) is not None:
                return asset_json(repository.find_asset(session, sha256)), "known"
            if not workspace.store.contains(sha256):
                # A failed registration of the same bytes removed the copy we share.
                raise StoreError(
                    "the stored copy vanished while registering (a concurrent registration "
                    "of the same file failed); register the file again"
                )
            production = (
                repository.get_or_create_production(session, production_name)
                if production_name
                else None
            )
            tool = None
            if tool_name:
                tool, tool_created = repository.get_or_create_tool(session, str(tool_name))
                if tool_created:
                    audit.append_event(
                        session,
                        actor=actor,
                        action="tool.created",
                        subject=f"tool:{tool.name}",
                        payload={"name": tool.name, "data_handling": "unknown"},
                    )
            asset_id = repository.insert_registration(
                session,
                asset=dict(asset_values, production_id=production.id if production else None),
                generation=dict(generation_values, tool_id=tool.id if tool else None),
                fingerprints=fingerprint_values,
            )
            audit.append_event(
                session,
                actor=actor,
                action="asset.registered",
                subject=f"asset:{asset_id}",
                payload={
                    "sha256": sha256,
                    "original_name": display_name(path.name),
                    "intended_use": use.value,
                    "production": production_name,
                    "tool": tool.name if tool else None,
                    "fingerprints": {f.kind: f.value for f in fingerprints},
                },
            )
            # Render from the values written, detached from the session: no read-back.
            rendered = Asset(
                id=asset_id,
                production=production,
                fingerprints=[FingerprintRow(**f) for f in fingerprint_values],
                generation_records=[GenerationRecord(tool=tool, **generation_values)],
                **asset_values,
            )
            document = asset_json(rendered)
            session.expunge_all()
            return document, "new"
    except IntegrityError:
        # Lost a race on the sha256 unique key (possible on PostgreSQL).
        with read_session(workspace.engine) as session:
            if repository.asset_id_by_sha256(session, sha256) is None:
                raise
            return asset_json(repository.find_asset(session, sha256)), "known"


def _refuse_nul(field: str, value: Any) -> None:
    """Text columns cannot hold NUL on PostgreSQL; refuse it on every backend alike."""
    if isinstance(value, str) and "\x00" in value:
        raise MetadataError(f"the {field} contains a NUL character, which records cannot hold")


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
