"""Looking after a workspace: verifying the audit log and every record it vouches for,
collecting stored copies no record names, and the database's state."""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from provenance import record_digests
from provenance.db import audit, repository, row_audit, schema
from provenance.db.session import one_line, read_session, write_transaction
from provenance.detectors.geometric import FeatureCache, GeometricVerifier, prune_features
from provenance.errors import InvalidInput, SignatureInvalid
from provenance.signing import anchors
from provenance.workspace import Workspace

# `store gc` leaves files younger than this alone: they may belong to a write in progress.
GC_MIN_AGE_SECONDS = 3600


@dataclass(frozen=True)
class GarbageReport:
    """What `store gc` removed and kept; as JSON, ``provenance.store-gc/1``."""

    removed_blobs: list[str]
    removed_temporaries: int
    kept_young: int
    referenced: int
    removed_features: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.store-gc/1",
            "removed_blobs": len(self.removed_blobs),
            "removed_temporaries": self.removed_temporaries,
            "kept_young": self.kept_young,
            "referenced": self.referenced,
            "removed_features": self.removed_features,
        }


@dataclass(frozen=True)
class DatabaseStatus:
    """Where the records are (the URL without its password) and the schema revisions of the
    database and of this code."""

    url: str
    revision: str | None
    code_revision: str


def verify_audit(
    workspace: Workspace, anchors_file: Path | None = None, *, incremental: bool = False
) -> audit.ChainReport:
    """Verify the audit chain, then every row that matters to legal against the newest
    audit event vouching for it (an altered, added or deleted row is named), then the
    checks, decisions, consents, approvals and withdrawals against their own digests
    (which events written before row coverage hold), then every asset's review status
    against its checks and decisions.

    ``incremental``: start from the newest checkpoint (where the last successful verify
    reached) and verify only the events written since, the rows they vouch for, the rows
    added since and the statuses of the assets they name; a checkpoint whose event no
    longer has its hash is a rewritten log. Without a checkpoint, everything is verified.
    A successful verify records a checkpoint at the head it verified."""
    with read_session(workspace.engine) as session:
        checkpoint = repository.newest_checkpoint(session) if incremental else None
        if checkpoint is None:
            report = _verify_everything(session, workspace, anchors_file)
        else:
            report = _verify_since(session, workspace, anchors_file, checkpoint)
        if not report.ok:
            return report
        head = audit.head(session)
        highest = row_audit.highest_ids(session)
    with write_transaction(workspace.engine) as session:
        kind = "incremental" if checkpoint is not None else "full"
        repository.add_checkpoint(session, head, highest, kind)
    return report


def _verify_everything(
    session: Session, workspace: Workspace, anchors_file: Path | None
) -> audit.ChainReport:
    report = _chain(session, workspace, anchors_file, None)
    if not report.ok:
        return report
    problems = row_audit.verify_rows(session)
    if problems:
        event_id, message = problems[0]
        return audit.ChainReport(False, report.events, event_id, message + _more(problems))
    for verify in (
        record_digests.verify_checks,
        record_digests.verify_decisions,
        record_digests.verify_clearance_records,
    ):
        try:
            problem = verify(session)
        except (ValueError, TypeError, KeyError, AttributeError, DBAPIError) as exc:
            # A row no code could have written; named, never a traceback.
            problem = None, f"a record cannot be read: {one_line(exc)}"
        if problem is not None:
            event_id, message = problem
            return audit.ChainReport(False, report.events, event_id, message)
    return _states_agree(session, report, None)


def _verify_since(
    session: Session,
    workspace: Workspace,
    anchors_file: Path | None,
    checkpoint: repository.Checkpoint,
) -> audit.ChainReport:
    """The events after ``checkpoint`` and what they vouch for (see ``verify_audit``)."""
    stored = audit.event_hashes(session, [checkpoint.event_id]).get(checkpoint.event_id)
    if stored != checkpoint.event_hash:
        state = "is missing" if stored is None else "differs from it"
        return audit.ChainReport(
            False,
            0,
            checkpoint.event_id,
            f"event {checkpoint.event_id}, verified at the checkpoint of "
            f"{checkpoint.made_at:%Y-%m-%d %H:%M} UTC, {state}: the log was rewritten "
            "or cut since",
        )
    report = _chain(session, workspace, anchors_file, checkpoint)
    if not report.ok:
        return report
    problems = row_audit.verify_rows_since(session, checkpoint.event_id, checkpoint.rows)
    if problems:
        event_id, message = problems[0]
        return audit.ChainReport(False, report.events, event_id, message + _more(problems))
    named = repository.assets_named_since(
        session, checkpoint.event_id, checkpoint.rows.get("assets", 0)
    )
    report = _states_agree(session, report, named)
    if not report.ok:
        return report
    return audit.ChainReport(
        True,
        report.events,
        None,
        f"{report.message.replace(' events verified', ' new events verified', 1)} since "
        f"the checkpoint at event {checkpoint.event_id} "
        f"({checkpoint.made_at:%Y-%m-%d %H:%M} UTC; events up to it are not read again)",
    )


def _chain(
    session: Session,
    workspace: Workspace,
    anchors_file: Path | None,
    checkpoint: repository.Checkpoint | None,
) -> audit.ChainReport:
    """The chain (after ``checkpoint``, else whole), then the anchors when a file is given:
    a cut or rewritten log is named as such, not by the rows it orphaned."""
    after = None if checkpoint is None else (checkpoint.event_id, checkpoint.event_hash)
    report = audit.verify_chain(session, after=after)
    if report.ok and anchors_file is not None:
        report = _against_anchors(session, report, anchors_file, workspace.trust_certificates())
    return report


def _states_agree(
    session: Session, report: audit.ChainReport, asset_ids: list[int] | None
) -> audit.ChainReport:
    problems = repository.state_problems(session, asset_ids)
    if problems:
        return audit.ChainReport(False, report.events, None, problems[0] + _more(problems))
    return report


def _more(problems: list[Any]) -> str:
    return f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""


def _against_anchors(
    session: Session, report: audit.ChainReport, path: Path, trust: list[x509.Certificate]
) -> audit.ChainReport:
    """The verified chain compared with every anchor written outside the database: an
    anchored event missing means the log was cut, a different hash that it was rewritten.
    Each signed anchor must verify against the studio's trust; unsigned ones are counted."""
    found = anchors.read_anchors(path)
    if not found:
        return audit.ChainReport(False, report.events, None, f"{path.name} holds no anchor")
    stored = audit.event_hashes(session, [a.event for a in found if a.event > 0])
    unsigned = 0
    for anchor in found:
        where = f"the anchor on line {anchor.line} of {path.name} ({anchor.anchored_at})"
        try:
            signature = anchors.verify_signature(anchor, trust)
        except SignatureInvalid as exc:
            return audit.ChainReport(False, report.events, None, f"{where}: {exc}")
        if signature is None:
            unsigned += 1
        elif not signature.intact:
            return audit.ChainReport(
                False, report.events, None, f"{where} was altered: its signature does not match"
            )
        elif not signature.trusted:
            return audit.ChainReport(
                False,
                report.events,
                None,
                f"{where} is signed by {signature.signer}, who is not a trusted signer",
            )
        if anchor.event == 0:
            continue
        if anchor.event not in stored:
            return audit.ChainReport(
                False,
                report.events,
                anchor.event,
                f"event {anchor.event}, anchored by {where}, is missing: the log ends at "
                f"event {report.events}, so it was cut and its head rewritten",
            )
        if stored[anchor.event] != anchor.hash:
            return audit.ChainReport(
                False,
                report.events,
                anchor.event,
                f"event {anchor.event} differs from {where}: the log was rewritten",
            )
    newest = found[-1]
    note = f"; {unsigned} of them unsigned (made without a studio key)" if unsigned else ""
    return audit.ChainReport(
        True,
        report.events,
        None,
        f"{report.message}; {len(found)} anchors agree (newest: event {newest.event}, "
        f"{newest.anchored_at}){note}",
    )


def collect_garbage(
    workspace: Workspace, *, min_age_seconds: float = GC_MIN_AGE_SECONDS
) -> GarbageReport:
    """Remove stored copies no record names (left by registrations that failed after
    storing, when the database was too busy to undo them), temporary files of killed
    writes, and cached local features of pictures no record names or made under another
    spec, each older than ``min_age_seconds`` (younger ones may belong to a write in
    progress)."""
    if min_age_seconds < 0:
        raise InvalidInput("--min-age must not be negative")
    cutoff = time.time() - min_age_seconds
    with read_session(workspace.engine) as session:
        referenced = repository.referenced_blobs(session)
    removed: list[str] = []
    kept_young = 0
    for sha256, modified in list(workspace.store.blobs()):
        if sha256 in referenced:
            continue
        if modified > cutoff:
            kept_young += 1
            continue
        workspace.store.remove(sha256)
        removed.append(sha256)
    temporaries = 0
    for path in workspace.root.rglob(".incoming-*"):
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink()
                temporaries += 1
    # The folders a copy with Content Credentials is signed in, left by a killed export.
    for path in workspace.root.glob(".c2pa-*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and path.stat().st_mtime <= cutoff:
                shutil.rmtree(path)
                temporaries += 1
    # Cached local features of pictures no record names, or made under another spec (known
    # only when the verifier can be made here: otherwise every spec's files are kept).
    verifier = workspace.verifier()
    current = (
        FeatureCache(workspace.features_folder, verifier.features_spec).folder
        if isinstance(verifier, GeometricVerifier)
        else None
    )
    features = prune_features(
        workspace.features_folder, referenced, older_than=cutoff, current=current
    )
    report = GarbageReport(removed, temporaries, kept_young, len(referenced), features)
    if removed or temporaries or features:
        audit.record_event(
            workspace.engine,
            actor=workspace.actor(None, named=False),
            action="store.collected",
            subject="store",
            payload={**report.to_json(), "blobs": sorted(removed)[:1000]},
        )
    return report


def row_counts(workspace: Workspace) -> dict[str, int]:
    with read_session(workspace.engine) as session:
        return repository.row_counts(session)


def database_status(workspace: Workspace) -> DatabaseStatus:
    return DatabaseStatus(
        url=workspace.engine.url.render_as_string(hide_password=True),
        revision=schema.current_revision(workspace.engine),
        code_revision=schema.SCHEMA_HEAD,
    )
