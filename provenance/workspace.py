"""The use cases: create and open a workspace, register assets, read them, verify the log.

The CLI and the web layer call these and nothing below them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import io
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from provenance import audit, checking, clearance, reference_sets, reviews, row_audit, users
from provenance.atomic import write_atomically
from provenance.config import (
    WORKSPACE_FILE,
    Settings,
    load_settings,
    read_workspace_file,
    workspace_file_text,
)
from provenance.db import repository, schema
from provenance.db.session import (
    create_database_engine,
    read_session,
    resolve_database_url,
    write_transaction,
)
from provenance.db.tables import Asset, FingerprintRow, GenerationRecord, utcnow
from provenance.detectors import load_detector, parse_detector_names
from provenance.detectors.base import Detector
from provenance.detectors.hashes import parse_hash_names
from provenance.domain import (
    Fingerprint,
    GenerationInfo,
    IntendedUse,
    MetadataReading,
    Source,
)
from provenance.errors import (
    AccessDenied,
    DetectorUnavailable,
    InvalidInput,
    MetadataError,
    NotFound,
    ProvenanceError,
    StoreError,
    WorkspaceError,
    WorkspaceExists,
    WorkspaceNotFound,
)
from provenance.export import evidence
from provenance.export import record as record_export
from provenance.export.asset_json import asset_json
from provenance.locks import reference_set_lock
from provenance.media import decode_image
from provenance.metadata.sidecar import read_sidecar
from provenance.registration import (
    FingerprintedFile,
    FingerprintLimits,
    RegisterReport,
    RegisterRequest,
    RegisterResult,
    collect_files,
    die_with_parent,
    display_name,
    fingerprint_file,
    read_file,
)
from provenance.store import ContentStore

logger = logging.getLogger(__name__)

WORKSPACE_ENV = "PROVENANCE_WORKSPACE"
# A user's token (`provenance users token NAME`): writes are attributed to that user.
TOKEN_ENV = "PROVENANCE_TOKEN"
# Starting worker processes costs about 0.4 s and each saves about 1.5 ms per file on two
# cores (benchmarks/register_throughput.py): below this many files, one process is faster.
AUTO_WORKERS_MIN_FILES = 256
# `store gc` leaves files younger than this alone: they may belong to a write in progress.
GC_MIN_AGE_SECONDS = 3600


# What the fingerprinting stage hands to the recording stage for one file.
Staged = RegisterResult | FingerprintedFile | BaseException
# Called after each file with its result, how many files are done and how many there are.
ProgressCallback = Callable[[RegisterResult, int, int], None]


class Workspace:
    """An opened workspace: settings, database, content store."""

    def __init__(self, root: Path, settings: Settings, engine: Engine) -> None:
        self.root = root
        self.settings = settings
        self.engine = engine
        self.store = ContentStore(root / "store")
        self._detectors: dict[str, Detector | ProvenanceError] | None = None
        # Set by open() from PROVENANCE_TOKEN; None: the local user of this machine.
        self.token: str | None = None
        self.fingerprint_limits = FingerprintLimits(
            max_file_bytes=int(settings["max_file_mb"]) * 1024 * 1024,
            max_pixels=int(settings["max_image_pixels"]),
            hash_names=tuple(parse_hash_names(settings["hashes"])),
        )

    # -- creating and opening -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        environ: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
    ) -> Workspace:
        """Create a workspace in ``directory`` (made if missing) and migrate its database
        (``database_url``, written into provenance.toml, else the setting's value)."""
        directory = directory.resolve()
        settings_file = directory / WORKSPACE_FILE
        if settings_file.exists():
            raise WorkspaceExists(f"a workspace already exists in {directory}")
        written = {"database_url": database_url} if database_url else {}
        # Refuse bad settings before anything is written.
        settings = load_settings(written, environ)
        resolve_database_url(settings["database_url"], directory)
        parse_hash_names(settings["hashes"])
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for folder in ("store", "indexes", "reference_sets"):
                (directory / folder).mkdir(exist_ok=True)
        except OSError as exc:
            raise WorkspaceNotFound(
                f"cannot create a workspace in {directory}: {exc.strerror}"
            ) from None
        engine = _engine(directory, settings)
        try:
            existing = schema.current_revision(engine)
        except DBAPIError as exc:
            engine.dispose()
            raise WorkspaceError(f"cannot use the database: {_first_line(exc)}") from None
        if existing is not None:
            engine.dispose()
            raise WorkspaceExists(
                "the configured database already holds a provenance schema; "
                "point database_url elsewhere or open that workspace"
            )
        schema.upgrade(engine)
        workspace = cls(directory, settings, engine)
        with write_transaction(engine) as session:
            audit.start_chain(session)
            audit.append_event(
                session,
                actor=workspace.actor(None),
                action="workspace.created",
                subject="workspace",
                payload={"schema_revision": schema.SCHEMA_HEAD},
            )
        settings_file.write_text(workspace_file_text(written), encoding="utf-8")
        return workspace

    @classmethod
    def open(
        cls, directory: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Workspace:
        """Open the workspace at ``directory``, else ``$PROVENANCE_WORKSPACE``, else the
        current folder or the nearest parent holding ``provenance.toml``."""
        env = os.environ if environ is None else environ
        root = find_workspace(directory, env)
        settings = load_settings(read_workspace_file(root / WORKSPACE_FILE), env)
        engine = _engine(root, settings)
        try:
            schema.ensure_current(engine, auto_upgrade=settings["auto_upgrade"])
        except ProvenanceError:
            engine.dispose()
            raise
        except DBAPIError as exc:
            engine.dispose()
            raise WorkspaceError(f"cannot use the workspace database: {_first_line(exc)}") from None
        workspace = cls(root, settings, engine)
        workspace.token = env.get(TOKEN_ENV) or None
        return workspace

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def actor(
        self, by: str | None, *, role: str | tuple[str, ...] | None = None, doing: str = ""
    ) -> str:
        """Who a write is attributed to. With a token (PROVENANCE_TOKEN): its user, who
        must hold ``role`` (or one of them) when given (``doing`` names the write in the
        refusal), and ``by`` may only name that user. Without one, the local user of this
        machine: --by, the ``user`` setting, or the login name."""
        if self.token is not None:
            user = users.authenticate(self, self.token)
            name = str(user["name"])
            roles = (role,) if isinstance(role, str) else role
            if roles is not None and user["role"] not in roles:
                raise AccessDenied(
                    f"{doing} needs the {' or '.join(roles)} role; {name!r} is {user['role']}"
                )
            if by and by != name:
                raise AccessDenied(f"--by {by!r} is not the token's user {name!r}")
            return name
        if by:
            return by
        if self.settings["user"]:
            return str(self.settings["user"])
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    # -- registering ----------------------------------------------------------------------

    def register(
        self,
        paths: Iterable[str | Path],
        request: RegisterRequest,
        progress: ProgressCallback | None = None,
        jobs: int | None = None,
    ) -> RegisterReport:
        """Register files and folders (walked recursively). A failing file is reported and
        never stops the others or leaves anything behind.

        ``jobs``: processes that decode and fingerprint files while this one writes the
        records (default: the ``jobs`` setting; 0: automatic, see ``_worker_count``).
        """
        shared = self._shared_readings(request)
        report = RegisterReport()
        files, skipped = collect_files(paths, exclude=self.root)
        report.skipped.extend(skipped)
        workers = self._worker_count(len(files), jobs)
        for done, (path, outcome) in enumerate(self._fingerprinted(files, workers), start=1):
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                result = (
                    outcome
                    if isinstance(outcome, RegisterResult)
                    else self._record(outcome, request, shared)
                )
            except ProvenanceError as exc:
                result = RegisterResult(str(path), "failed", error=str(exc))
            except Exception as exc:  # a bug must not abort a batch of a thousand files
                # The traceback is for developers (-vv); the report keeps one line.
                logger.debug("unexpected error registering %s", path, exc_info=exc)
                result = RegisterResult(str(path), "failed", error=_one_line(exc))
            report.results.append(result)
            if progress is not None:
                progress(result, done, len(files))
        if self.settings["check_on_register"]:
            self._check_new(report, request)
        return report

    def _check_new(self, report: RegisterReport, request: RegisterRequest) -> None:
        """Check the assets registered now and every asset still waiting for a check (an
        earlier run killed in its check phase, or registered before the first reference
        set): a registered asset is never left unchecked. A failing check is reported, not
        fatal."""
        in_batch = {
            r.asset["id"]: r for r in report.results if r.asset is not None and r.check is None
        }
        outcome = self.check_pending(by=request.by)
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

    def check_pending(self, *, by: str | None = None) -> checking.PendingOutcome:
        """Check every asset that has no check yet; a check that fails is named with its
        error and the others go on. Nothing waits while there is no reference set."""
        outcome = checking.PendingOutcome()
        if not self.has_reference_sets():
            return outcome
        with read_session(self.engine) as session:
            ids = repository.unchecked_asset_ids(session)
        if not ids:
            return outcome
        actor = self.actor(by)
        available, _ = self.split_detectors()
        context = checking.prepare(self, available, actor=actor)
        for asset_id in ids:
            try:
                outcome.checks[asset_id] = checking.check_asset(
                    self, asset_id, actor=actor, context=context
                )
            except ProvenanceError as exc:
                outcome.failed[asset_id] = str(exc)
            except Exception as exc:  # the asset is recorded; say the check failed, go on
                logger.debug("check of asset %s failed", asset_id, exc_info=exc)
                outcome.failed[asset_id] = _one_line(exc)
        return outcome

    def _worker_count(self, files: int, jobs: int | None) -> int:
        """Fingerprinting processes for a batch: ``jobs`` (or the setting) when positive;
        when 0, one per core, but only for batches large enough to repay the start-up."""
        wanted = self.settings["jobs"] if jobs is None else jobs
        if wanted > 0:
            return max(1, min(wanted, files))
        if files < AUTO_WORKERS_MIN_FILES:
            return 1
        return max(1, min(os.cpu_count() or 1, files // (AUTO_WORKERS_MIN_FILES // 2)))

    def _shared_readings(self, request: RegisterRequest) -> list[MetadataReading]:
        readings = []
        if request.metadata_file is not None:
            readings.append(read_sidecar(request.metadata_file, Source.METADATA_FILE))
        if request.fields or request.settings:
            readings.append(
                MetadataReading(Source.FLAG, dict(request.fields), dict(request.settings))
            )
        return readings

    def _fingerprinted(self, files: list[Path], workers: int) -> Iterator[tuple[Path, Staged]]:
        """Each file, in order, with its outcome: already registered, fingerprinted and
        stored, or the error that stopped it. With several workers, a bounded window of
        files is fingerprinted ahead in other processes while records are written here."""
        pool = None
        if workers > 1:
            # Not fork: the children must not inherit this process's database connections.
            methods = multiprocessing.get_all_start_methods()
            method = "forkserver" if "forkserver" in methods else "spawn"
            pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context(method),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        try:
            window: deque[tuple[Path, Staged | Future[FingerprintedFile]]] = deque()
            queue = iter(files)

            def refill() -> None:
                while len(window) < 2 * workers:
                    path = next(queue, None)
                    if path is None:
                        return
                    try:
                        window.append((path, self._stage(path, pool)))
                    except Exception as exc:
                        window.append((path, exc))

            refill()
            while window:
                path, staged = window.popleft()
                if isinstance(staged, Future):
                    try:
                        staged = staged.result()
                    except Exception as exc:
                        staged = exc
                yield path, staged
                refill()
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _stage(
        self, path: Path, pool: ProcessPoolExecutor | None
    ) -> RegisterResult | FingerprintedFile | Future[FingerprintedFile]:
        """Read the file and look its bytes up; fingerprint it here or hand it to ``pool``."""
        limits = self.fingerprint_limits
        data = read_file(path, limits.max_file_bytes)
        sha256 = hashlib.sha256(data).hexdigest()
        # A bare connection: most files are new, and this lookup runs once per file.
        with self.engine.connect() as connection:
            known = repository.asset_id_by_sha256(connection, sha256) is not None
        if known:
            with read_session(self.engine) as session:
                document = asset_json(repository.find_asset(session, sha256))
            return RegisterResult(str(path), "known", document)
        if pool is None:
            return fingerprint_file(path, sha256, limits, self.store.root, data)
        # The worker reads the file again rather than receiving its bytes through a pipe.
        return pool.submit(fingerprint_file, path, sha256, limits, self.store.root, None)

    def _record(
        self, prepared: FingerprintedFile, request: RegisterRequest, shared: list[MetadataReading]
    ) -> RegisterResult:
        """Write the records of a fingerprinted, stored file; undo the store write on failure."""
        generation = GenerationInfo.merge([*prepared.readings, *shared])
        try:
            document, status = self._insert(
                prepared.path,
                prepared.size,
                prepared.sha256,
                prepared.media,
                generation,
                prepared.fingerprints,
                request,
            )
        except BaseException:
            if prepared.created_blob:
                try:
                    # Under the write lock, so that no other registration of the same bytes
                    # can commit between the check and the removal (see _insert).
                    with write_transaction(self.engine) as session:
                        if repository.asset_id_by_sha256(session, prepared.sha256) is None:
                            self.store.remove(prepared.sha256)
                except ProvenanceError:
                    # The lock that just failed us is still taken: the copy stays an orphan
                    # until `provenance store gc` removes it.
                    logger.info("left orphan copy %s for store gc", prepared.sha256[:12])
            raise
        return RegisterResult(str(prepared.path), status, document)

    def _insert(
        self,
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
        actor = self.actor(request.by)
        use = request.use or IntendedUse.UNDECLARED
        production_name = request.production or self.settings["production"] or None
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
            "store_path": self.store.relative_path(sha256),
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
            with write_transaction(self.engine) as session:
                # Another process may have registered the same bytes since we looked.
                if repository.asset_id_by_sha256(session, sha256) is not None:
                    return asset_json(repository.find_asset(session, sha256)), "known"
                if not self.store.contains(sha256):
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
            with read_session(self.engine) as session:
                if repository.asset_id_by_sha256(session, sha256) is None:
                    raise
                return asset_json(repository.find_asset(session, sha256)), "known"

    # -- detectors and checks -------------------------------------------------------------

    def detectors(self) -> dict[str, Detector | ProvenanceError]:
        """Each configured detector, or the error saying why it cannot run here."""
        if self._detectors is None:
            loaded: dict[str, Detector | ProvenanceError] = {}
            for name in parse_detector_names(self.settings["detectors"]):
                try:
                    loaded[name] = load_detector(name, self.settings, self.root)
                except DetectorUnavailable as exc:
                    loaded[name] = exc
            self._detectors = loaded
        return self._detectors

    def split_detectors(self) -> tuple[dict[str, Detector], dict[str, ProvenanceError]]:
        available: dict[str, Detector] = {}
        unavailable: dict[str, ProvenanceError] = {}
        for name, detector in self.detectors().items():
            if isinstance(detector, ProvenanceError):
                unavailable[name] = detector
            else:
                available[name] = detector
        return available, unavailable

    def has_reference_sets(self) -> bool:
        with read_session(self.engine) as session:
            return repository.active_reference_set_count(session) > 0

    def check(self, refs: Iterable[str], *, by: str | None = None) -> list[dict[str, Any]]:
        """Check the named assets against every active reference set; one new check each."""
        with read_session(self.engine) as session:
            ids = [repository.find_asset(session, ref).id for ref in refs]
        if not self.has_reference_sets():
            raise NotFound("there are no reference sets to check against; add one with refs add")
        actor = self.actor(by)
        available, _ = self.split_detectors()
        context = checking.prepare(self, available, actor=actor)
        return [
            checking.check_asset(self, asset_id, actor=actor, context=context) for asset_id in ids
        ]

    # -- reference sets -------------------------------------------------------------------

    def add_reference_set(
        self,
        name: str,
        sources: Iterable[Path],
        *,
        rights: str,
        holder: str | None = None,
        description: str = "",
        attribution: str | None = None,
        by: str | None = None,
        progress: reference_sets.IngestProgress | None = None,
    ) -> reference_sets.IngestReport:
        """Create set ``name`` from the images at ``sources`` and build its indexes."""
        sources = [Path(s) for s in sources]
        for source in sources:
            if not source.exists():
                raise InvalidInput(f"{source}: no such file or folder")
        reference_sets.check_name(name)
        with reference_set_lock(self.root, name):
            reference_sets.create_set(
                self,
                name,
                rights=rights,
                holder=holder,
                description=description,
                source=", ".join(str(s) for s in sources),
                actor=self._refs_actor(by),
            )
            return reference_sets.add_items(
                self,
                name,
                sources,
                attribution=attribution,
                actor=self._refs_actor(by),
                progress=progress,
            )

    def add_reference_items(
        self,
        name: str,
        sources: Iterable[Path],
        *,
        attribution: str | None = None,
        by: str | None = None,
        progress: reference_sets.IngestProgress | None = None,
    ) -> reference_sets.IngestReport:
        """Add images to an existing set (files already in it are skipped)."""
        reference_sets.check_name(name)
        with reference_set_lock(self.root, name):
            return reference_sets.add_items(
                self,
                name,
                [Path(s) for s in sources],
                attribution=attribution,
                actor=self._refs_actor(by),
                progress=progress,
            )

    def rebuild_reference_set(self, name: str, *, by: str | None = None) -> dict[str, Any]:
        """Rebuild a set's indexes under the detectors' current specs."""
        reference_sets.check_name(name)
        with reference_set_lock(self.root, name):
            return reference_sets.rebuild_indexes(self, name, actor=self._refs_actor(by))

    def remove_reference_set(self, name: str, *, by: str | None = None) -> None:
        reference_sets.check_name(name)
        with reference_set_lock(self.root, name):
            reference_sets.remove_set(self, name, actor=self._refs_actor(by))

    def add_user(self, name: str, role: str, *, by: str | None = None) -> dict[str, Any]:
        return users.add_user(self, name, role, actor=self._admin(by))

    def issue_token(self, name: str, *, by: str | None = None) -> str:
        return users.issue_token(self, name, actor=self._admin(by))

    def disable_user(self, name: str, *, by: str | None = None) -> None:
        users.disable_user(self, name, actor=self._admin(by))

    def _refs_actor(self, by: str | None) -> str:
        """The actor of a reference-set write: with a token, an admin's."""
        return self.actor(by, role="admin", doing="managing reference sets")

    def _admin(self, by: str | None) -> str:
        """The actor of a user-management write. Once an active admin holds a token, only
        an admin's token may manage users; before that (setting up), the local user may,
        so that the first admin can be added and given a token."""
        if self.token is not None:
            return self.actor(by, role="admin", doing="managing users")
        if users.admin_token_exists(self):
            raise AccessDenied(
                f"managing users needs an admin's token: set {TOKEN_ENV} "
                "(`provenance users token NAME` issues one)"
            )
        return self.actor(by)

    # -- reviewing ------------------------------------------------------------------------

    def current_user(self) -> dict[str, Any]:
        """The user acting: the token's (PROVENANCE_TOKEN) or, without one, the local user
        (the ``user`` setting or the login name), who must be an active user here."""
        if self.token is not None:
            return users.authenticate(self, self.token)
        return users.local_user(self, self.actor(None))

    def review(
        self,
        ref: str,
        decision: str,
        rationale: str,
        *,
        supersedes: int | None = None,
        user: dict[str, Any] | None = None,
        previous: int | None = None,
        explicit_previous: bool = False,
        seen_check: int | None = None,
    ) -> dict[str, Any]:
        """Record a decision on the asset's newest check (see ``provenance.reviews``).

        From the CLI: ``supersedes`` names the standing decision being replaced. From the
        web layer: ``user`` is the signed-in user and ``previous`` the newest decision the
        page showed (``explicit_previous``), so a decision made meanwhile is a conflict.
        ``seen_check``: the check the decider was shown (a newer one is a conflict).
        """
        reviews.check_decision(decision)
        reviews.check_rationale(rationale)
        acting = user if user is not None else self.current_user()
        with read_session(self.engine) as session:
            asset_id = repository.find_asset(session, ref).id
        if supersedes is not None:
            previous, explicit_previous = supersedes, True
        return reviews.decide(
            self,
            asset_id,
            decision,
            rationale,
            user=acting,
            previous=previous,
            explicit_previous=explicit_previous,
            seen_check=seen_check,
        )

    # -- tools, consents, approvals, declarations, status -------------------------------

    def _records_actor(
        self,
        by: str | None,
        roles: tuple[str, ...],
        doing: str,
        user: dict[str, Any] | None = None,
    ) -> str:
        """The actor of a record legal relies on (tool vetting, consent, approval,
        withdrawal): ``user`` when the web layer signed them in, else the token's user
        holding one of ``roles`` or, without a token, the local user, who must then be an
        active user holding one of them (as for review decisions), not merely a login name."""
        if user is None and self.token is not None:
            return self.actor(by, role=roles, doing=doing)
        if user is None:
            user = users.local_user(self, self.actor(by))
        if user["role"] not in roles:
            raise AccessDenied(
                f"{doing} needs the {' or '.join(roles)} role; {user['name']!r} is {user['role']}"
            )
        return str(user["name"])

    def vet_tool(self, name: str, *, by: str | None = None, **profile: Any) -> dict[str, Any]:
        actor = self._records_actor(by, ("admin", "legal"), "vetting a tool")
        return clearance.vet_tool(self, name, actor=actor, **profile)

    def list_tools(self) -> list[dict[str, Any]]:
        return clearance.list_tools(self)

    def show_tool(self, name: str) -> dict[str, Any]:
        return clearance.show_tool(self, name)

    def add_consent(self, *, by: str | None = None, **consent: Any) -> dict[str, Any]:
        actor = self._records_actor(by, ("legal",), "recording a consent")
        return clearance.add_consent(self, actor=actor, **consent)

    def list_consents(
        self,
        *,
        talent: str | None = None,
        production: str | None = None,
        today: dt.date | None = None,
    ) -> list[dict[str, Any]]:
        return clearance.list_consents(
            self, talent=talent, production=production, today=today or _today()
        )

    def approve(
        self,
        ref: str,
        *,
        by: str | None = None,
        user: dict[str, Any] | None = None,
        today: dt.date | None = None,
        **approval: Any,
    ) -> dict[str, Any]:
        """Record the studio's written approval of an asset (legal). ``user``: the user the
        web layer signed in."""
        actor = self._records_actor(by, ("legal",), "recording a written approval", user)
        return clearance.add_approval(self, ref, actor=actor, today=today or _today(), **approval)

    def withdraw(self, kind: str, record_id: int, reason: str, *, by: str | None = None) -> None:
        actor = self._records_actor(by, ("legal",), f"withdrawing a {kind}")
        clearance.withdraw(self, kind, record_id, reason, actor=actor)

    def declare(self, ref: str, *, by: str | None = None, **declared: Any) -> dict[str, Any]:
        """Declare facts about an asset; with a token, an artist only about their own."""
        actor = self.actor(by)
        if self.token is not None and users.authenticate(self, self.token)["role"] == "artist":
            with read_session(self.engine) as session:
                asset = repository.find_asset(session, ref)
                if asset.registered_by != actor:
                    raise AccessDenied(
                        f"artists declare facts only about the assets they registered; "
                        f"asset {asset.id} was registered by {asset.registered_by!r}"
                    )
        return clearance.declare(self, ref, actor=actor, **declared)

    def revise(
        self, ref: str, *, revised_by: str, how: str, by: str | None = None
    ) -> dict[str, Any]:
        """Record the human work done on an asset: who revised it, and how."""
        return clearance.revise(self, ref, revised_by=revised_by, how=how, actor=self.actor(by))

    def status(self, ref: str, *, today: dt.date | None = None) -> dict[str, Any]:
        """The asset's requirements, met and missing, and findings (provenance.status/1)."""
        with read_session(self.engine) as session:
            asset = repository.find_asset(session, ref)
            return clearance.status(session, asset, today or _today())

    def expired(self, *, today: dt.date | None = None) -> list[dict[str, Any]]:
        with read_session(self.engine) as session:
            return clearance.expired_assets(session, today or _today())

    # -- exports ------------------------------------------------------------------------

    def asset_record(self, ref: str, *, today: dt.date | None = None) -> dict[str, Any]:
        """The asset's provenance record (provenance.record/1)."""
        with read_session(self.engine) as session:
            asset = repository.find_asset(session, ref)
            return record_export.asset_record(session, asset, today or _today())

    def disclosure(self, production: str, *, today: dt.date | None = None) -> dict[str, Any]:
        """The production's disclosure summary (provenance.disclosure/1)."""
        with read_session(self.engine) as session:
            return record_export.production_disclosure(session, production, today or _today())

    def export_asset(
        self, ref: str, out: Path, *, today: dt.date | None = None, pdf: bool = True
    ) -> list[Path]:
        """Write asset-ID.json, its evidence pack asset-ID.html and (``pdf``) asset-ID.pdf."""
        record = self.asset_record(ref, today=today)
        html = evidence.asset_pack_html(self, record)
        stem = f"asset-{record['asset']['id']}"
        files = {f"{stem}.json": record_export.dumps(record).encode("utf-8"),
                 f"{stem}.html": html.encode("utf-8")}  # fmt: skip
        if pdf:
            files[f"{stem}.pdf"] = evidence.to_pdf(html)
        return _write_files(out, files)

    def export_production(
        self, production: str, out: Path, *, today: dt.date | None = None, pdf: bool = True
    ) -> list[Path]:
        """Write the disclosure summary (disclosure.json, .html, .pdf) and every asset's
        record and evidence pack under assets/."""
        summary = self.disclosure(production, today=today)
        html = evidence.disclosure_html(summary)
        files = {"disclosure.json": record_export.dumps(summary).encode("utf-8"),
                 "disclosure.html": html.encode("utf-8")}  # fmt: skip
        if pdf:
            files["disclosure.pdf"] = evidence.to_pdf(html)
        ids = [entry["asset_id"] for c in summary["categories"] for entry in c["assets"]]
        with read_session(self.engine) as session:
            chain = audit.verify_chain(session)  # once for the whole export
            for asset_id in ids:
                asset = repository.find_asset(session, str(asset_id))
                record = record_export.asset_record(session, asset, today or _today(), chain)
                stem = f"assets/asset-{asset_id}"
                files[f"{stem}.json"] = record_export.dumps(record).encode("utf-8")
                files[f"{stem}.html"] = evidence.asset_pack_html(self, record).encode("utf-8")
        return _write_files(out, files)

    def queue(self, where: reviews.QueueFilter | None = None) -> dict[str, Any]:
        return reviews.queue(self, where or reviews.QueueFilter())

    def list_users(self) -> list[dict[str, Any]]:
        return users.list_users(self)

    def list_reference_sets(self) -> list[dict[str, Any]]:
        with read_session(self.engine) as session:
            return [
                reference_sets.set_json(s, with_items=False)
                for s in repository.active_reference_sets(session)
            ]

    def show_reference_set(self, name: str) -> dict[str, Any]:
        with read_session(self.engine) as session:
            return reference_sets.set_json(
                reference_sets.active_set(session, name), with_items=True
            )

    # -- reading --------------------------------------------------------------------------

    def show(self, ref: str) -> dict[str, Any]:
        """The full record of the asset named by an id or a sha256 prefix."""
        with read_session(self.engine) as session:
            return asset_json(repository.find_asset(session, ref))

    def list_assets(
        self,
        *,
        production: str | None = None,
        tool: str | None = None,
        use: str | None = None,
        since: str | None = None,
        registered_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Assets matching every given filter, oldest first, without raw metadata."""
        filters = _asset_filters(production, tool, use, since, registered_by)
        with read_session(self.engine) as session:
            assets = repository.list_assets(session, limit=limit, offset=offset, **filters)
            return [asset_json(asset, include_raw=False) for asset in assets]

    def count_assets(
        self,
        *,
        production: str | None = None,
        tool: str | None = None,
        use: str | None = None,
        since: str | None = None,
        registered_by: str | None = None,
    ) -> int:
        """How many assets ``list_assets`` gives with these filters (no limit)."""
        filters = _asset_filters(production, tool, use, since, registered_by)
        with read_session(self.engine) as session:
            return repository.count_assets(session, **filters)

    def asset_checks(self, ref: str) -> list[dict[str, Any]]:
        """Every check of the asset, oldest first, with its matches in full."""
        with read_session(self.engine) as session:
            asset = repository.find_asset(session, ref)
            return [checking.stored_check_json(session, check) for check in asset.checks]

    def asset_history(self, ref: str) -> list[dict[str, Any]]:
        """The audit events about the asset, oldest first."""
        with read_session(self.engine) as session:
            asset = repository.find_asset(session, ref)
            return [
                audit.event_json(event)
                for event in repository.events_about(session, f"asset:{asset.id}")
            ]

    def stored_image(self, sha256: str, *, artist: str | None = None) -> bytes:
        """The stored bytes of a registered asset or a reference item, by content hash;
        NotFound for any other name (nothing outside the store is ever read). With
        ``artist``, only that artist's own assets and reference items are found."""
        self._check_image(sha256, artist)
        return self.store.read(sha256)

    def _check_image(self, sha256: str, artist: str | None) -> None:
        if not repository.SHA256.match(sha256):
            raise NotFound("no stored image with that name")
        with read_session(self.engine) as session:
            if not repository.is_known_image(session, sha256, registered_by=artist):
                raise NotFound("no stored image with that name")

    def thumbnail(self, sha256: str, size: int, *, artist: str | None = None) -> Path:
        """A JPEG of the stored image fitting ``size`` pixels, made once and kept under
        ``thumbnails/`` (re-made only if deleted). ``artist``: as for ``stored_image``."""
        self._check_image(sha256, artist)
        target = self.root / "thumbnails" / str(size) / sha256[:2] / f"{sha256}.jpg"
        if target.is_file():
            return target
        pixels = decode_image(
            self.stored_image(sha256), max_pixels=self.fingerprint_limits.max_pixels
        ).pixels
        picture = pixels.convert("RGB")
        picture.thumbnail((size, size))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=85)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, buffer.getvalue())
        return target

    def verify_audit(self) -> audit.ChainReport:
        """Verify the audit chain, then every row that matters to legal against the newest
        audit event vouching for it (an altered, added or deleted row is named), then the
        checks, decisions, consents, approvals and withdrawals against their own digests
        (which events written before row coverage hold)."""
        with read_session(self.engine) as session:
            report = audit.verify_chain(session)
            if not report.ok:
                return report
            problems = row_audit.verify_rows(session)
            if problems:
                event_id, message = problems[0]
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                return audit.ChainReport(False, report.events, event_id, message + more)
            for verify in (
                checking.verify_checks,
                reviews.verify_decisions,
                clearance.verify_records,
            ):
                try:
                    problem = verify(session)
                except (ValueError, TypeError, KeyError, AttributeError, DBAPIError) as exc:
                    # A row no code could have written; named, never a traceback.
                    problem = None, f"a record cannot be read: {_one_line(exc)}"
                if problem is not None:
                    event_id, message = problem
                    return audit.ChainReport(False, report.events, event_id, message)
            return report

    def collect_garbage(self, *, min_age_seconds: float = GC_MIN_AGE_SECONDS) -> dict[str, Any]:
        """Remove stored copies no record names (left by registrations that failed after
        storing, when the database was too busy to undo them) and temporary files of
        killed writes, each older than ``min_age_seconds`` (younger ones may belong to a
        write in progress). Returns ``provenance.store-gc/1``."""
        if min_age_seconds < 0:
            raise InvalidInput("--min-age must not be negative")
        cutoff = time.time() - min_age_seconds
        with read_session(self.engine) as session:
            referenced = repository.referenced_blobs(session)
        removed: list[str] = []
        kept_young = 0
        for sha256, modified in list(self.store.blobs()):
            if sha256 in referenced:
                continue
            if modified > cutoff:
                kept_young += 1
                continue
            self.store.remove(sha256)
            removed.append(sha256)
        temporaries = 0
        for path in self.root.rglob(".incoming-*"):
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_mtime <= cutoff:
                    path.unlink()
                    temporaries += 1
        report = {
            "schema": "provenance.store-gc/1",
            "removed_blobs": len(removed),
            "removed_temporaries": temporaries,
            "kept_young": kept_young,
            "referenced": len(referenced),
        }
        if removed or temporaries:
            audit.record_event(
                self.engine,
                actor=self.actor(None),
                action="store.collected",
                subject="store",
                payload={**report, "blobs": sorted(removed)[:1000]},
            )
        return report

    def row_counts(self) -> dict[str, int]:
        with read_session(self.engine) as session:
            return repository.row_counts(session)

    def database_status(self) -> dict[str, Any]:
        return {
            "url": self.engine.url.render_as_string(hide_password=True),
            "revision": schema.current_revision(self.engine),
            "code_revision": schema.SCHEMA_HEAD,
        }


def upgrade_database(directory: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """Upgrade the workspace's schema to this code's; return the revision reached."""
    env = os.environ if environ is None else environ
    root = find_workspace(directory, env)
    settings = load_settings(read_workspace_file(root / WORKSPACE_FILE), env)
    engine = _engine(root, settings)
    try:
        schema.ensure_current(engine, auto_upgrade=True)
        return schema.SCHEMA_HEAD
    finally:
        engine.dispose()


def find_workspace(directory: Path | None, environ: Mapping[str, str]) -> Path:
    """Locate a workspace folder by the documented rule (flag, env, cwd and parents)."""
    if directory is not None:
        root = directory.resolve()
        if not (root / WORKSPACE_FILE).is_file():
            raise WorkspaceNotFound(
                f"no workspace at {root} (no {WORKSPACE_FILE}); run `provenance init`"
            )
        return root
    if environ.get(WORKSPACE_ENV):
        root = Path(environ[WORKSPACE_ENV]).resolve()
        if not (root / WORKSPACE_FILE).is_file():
            raise WorkspaceNotFound(
                f"{WORKSPACE_ENV}={root} is not a workspace (no {WORKSPACE_FILE})"
            )
        return root
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / WORKSPACE_FILE).is_file():
            return candidate
    raise WorkspaceNotFound(
        "no workspace here or in any parent folder; run `provenance init`, pass --workspace "
        f"or set {WORKSPACE_ENV}"
    )


def parse_since(text: str) -> dt.datetime:
    """A date (``2026-11-01``) or an ISO 8601 time; naive values are taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _asset_filters(
    production: str | None,
    tool: str | None,
    use: str | None,
    since: str | None,
    registered_by: str | None,
) -> dict[str, Any]:
    """The asset-list filters as the repository takes them (use and date parsed)."""
    use_value = None
    if use is not None:
        use_value = (
            IntendedUse.UNDECLARED.value
            if use.strip().lower() == IntendedUse.UNDECLARED.value
            else IntendedUse.parse(use).value
        )
    return {
        "production": production,
        "tool": tool,
        "use": use_value,
        "since": parse_since(since) if since else None,
        "registered_by": registered_by,
    }


def _engine(root: Path, settings: Settings) -> Engine:
    url = resolve_database_url(settings["database_url"], root)
    return create_database_engine(url, busy_timeout_seconds=settings["busy_timeout_seconds"])


def _one_line(exc: Exception) -> str:
    """An unexpected error as one line: the database's own words, not the SQL and its
    parameters (which would repeat the prompt)."""
    detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = (str(detail).strip().splitlines() or [""])[0]
    return f"unexpected error ({type(detail).__name__}): {first}"


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _first_line(exc: DBAPIError) -> str:
    """The database driver's own message, first line only (libpq adds hints below it)."""
    detail = exc.orig if exc.orig is not None else exc
    return (str(detail).strip().splitlines() or [""])[0]


def _refuse_nul(field: str, value: Any) -> None:
    """Text columns cannot hold NUL on PostgreSQL; refuse it on every backend alike."""
    if isinstance(value, str) and "\x00" in value:
        raise MetadataError(f"the {field} contains a NUL character, which records cannot hold")


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _write_files(out: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write every file (atomically, each replacing any older export); all are rendered
    before the first is written, so a failure leaves no partial export."""
    written = []
    try:
        for name, data in files.items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data)
            target.chmod(0o644)  # for whoever the export is handed to
            written.append(target)
    except OSError as exc:
        raise StoreError(f"cannot write the export to {out}: {exc.strerror}") from None
    return written
