"""Exports for legal: an asset's provenance record and evidence pack, a production's
disclosure summary with every asset's record. This module gathers what the records say
(statuses, checks, audit events, the chain's verification, thumbnails); ``provenance.export``
renders the documents from them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance import compliance, signatures, thumbnails
from provenance._version import __version__
from provenance.atomic import copy_atomically, write_atomically
from provenance.db import audit, repository
from provenance.db.session import read_session
from provenance.db.tables import Asset, AuditEvent
from provenance.errors import StoreError
from provenance.export import evidence
from provenance.export import record as record_export
from provenance.export.documents import stored_check_json
from provenance.signing import anchors, credentials
from provenance.signing import documents as signed_documents
from provenance.signing.keys import StudioKey
from provenance.workspace import Workspace

# Assets read at a time by the disclosure summary.
DISCLOSURE_CHUNK = 1000


def asset_record(workspace: Workspace, ref: str, *, today: dt.date | None = None) -> dict[str, Any]:
    """The asset's provenance record (provenance.record/1)."""
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        return _record(
            session,
            asset,
            today or compliance.today_utc(),
            repository.chain_since_checkpoint(session),
        )


def disclosure(
    workspace: Workspace, production: str, *, today: dt.date | None = None
) -> dict[str, Any]:
    """The production's disclosure summary (provenance.disclosure/1)."""
    with read_session(workspace.engine) as session:
        return _disclosure(session, production, today or compliance.today_utc())


def export_asset(
    workspace: Workspace,
    ref: str,
    out: Path,
    *,
    today: dt.date | None = None,
    pdf: bool = True,
    c2pa: bool = False,
) -> list[Path]:
    """Write asset-ID.json, its evidence pack asset-ID.html and (``pdf``) asset-ID.pdf,
    and (``c2pa``) a copy of the asset with Content Credentials. With a studio key, the
    PDF is signed, the JSON gets a detached signature (asset-ID.json.p7s), and the audit
    log's head is anchored (audit-anchor.json here, and a line in the anchors file)."""
    record = asset_record(workspace, ref, today=today)
    key = workspace.require_studio_key() if c2pa else workspace.studio_key()
    html = evidence.asset_pack_html(record, _thumbnailer(workspace), _frame_thumbnailer(workspace))
    stem = f"asset-{record['asset']['id']}"
    files = {f"{stem}.json": record_export.dumps(record).encode("utf-8"),
             f"{stem}.html": html.encode("utf-8")}  # fmt: skip
    if pdf:
        files[f"{stem}.pdf"] = evidence.to_pdf(html)
    anchor = signatures.head_anchor(
        workspace,
        key,
        f"export asset {record['asset']['id']}",
        chain_ok=record["audit"]["chain"]["ok"],
    )
    copies = {}
    if c2pa:
        assert key is not None
        copies[_copy_name(stem, record)] = (
            record,
            hashlib.sha256(files[f"{stem}.json"]).hexdigest(),
        )
    return _write_export(workspace, out, files, key, anchor, copies)


def sign_asset(workspace: Workspace, ref: str, out: Path) -> list[Path]:
    """Write a copy of asset REF with Content Credentials signed by the studio's key: the
    registered file as its parent ingredient (a vendor's manifest kept inside), and our
    assertion of its record, verdict, review status and approvals."""
    key = workspace.require_studio_key()
    record = asset_record(workspace, ref)
    stem = f"asset-{record['asset']['id']}"
    digest = hashlib.sha256(record_export.dumps(record).encode("utf-8")).hexdigest()
    anchor = signatures.head_anchor(
        workspace,
        key,
        f"sign asset {record['asset']['id']}",
        chain_ok=record["audit"]["chain"]["ok"],
    )
    return _write_export(
        workspace, out, {}, key, anchor, {_copy_name(stem, record): (record, digest)}
    )


def export_production(
    workspace: Workspace,
    production: str,
    out: Path,
    *,
    today: dt.date | None = None,
    pdf: bool = True,
    asset_pdfs: bool = False,
) -> list[Path]:
    """Write the disclosure summary (disclosure.json, .html, .pdf and .csv, one row per
    asset) and every asset's record and evidence pack (asset-ID.json and .html, and with
    ``asset_pdfs`` asset-ID.pdf) under assets/; signed and anchored as ``export_asset``."""
    summary = disclosure(workspace, production, today=today)
    key = workspace.studio_key()
    html = evidence.disclosure_html(summary)
    files = {"disclosure.json": record_export.dumps(summary).encode("utf-8"),
             "disclosure.html": html.encode("utf-8"),
             "disclosure.csv": record_export.disclosure_csv(summary).encode("utf-8")}  # fmt: skip
    if pdf:
        files["disclosure.pdf"] = evidence.to_pdf(html)
    ids = [entry["asset_id"] for c in summary["categories"] for entry in c["assets"]]
    with read_session(workspace.engine) as session:
        chain = repository.chain_since_checkpoint(session)  # once for the whole export
        for asset_id in ids:
            asset = repository.find_asset(session, str(asset_id))
            record = _record(session, asset, today or compliance.today_utc(), chain)
            stem = f"assets/asset-{asset_id}"
            files[f"{stem}.json"] = record_export.dumps(record).encode("utf-8")
            pack = evidence.asset_pack_html(
                record, _thumbnailer(workspace), _frame_thumbnailer(workspace)
            )
            files[f"{stem}.html"] = pack.encode("utf-8")
            if asset_pdfs:
                files[f"{stem}.pdf"] = evidence.to_pdf(pack)
    anchor = signatures.head_anchor(
        workspace, key, f"export production {production}", chain_ok=chain.ok
    )
    return _write_export(workspace, out, files, key, anchor, {})


def _record(
    session: Session, asset: Asset, today: dt.date, chain: audit.ChainReport
) -> dict[str, Any]:
    status = compliance.status(session, asset, today)
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject.in_(record_export.subjects(asset, status)))
        .order_by(AuditEvent.id)
    ).all()
    tool = None
    if status["tool"]:
        found = repository.find_tool(session, status["tool"]["name"])
        tool = compliance.tool_json(session, found) if found is not None else None
    return record_export.asset_record(
        asset,
        today=today,
        status=status,
        tool=tool,
        checks=[stored_check_json(session, check) for check in asset.checks],
        events=events,
        chain=chain,
    )


def _disclosure(session: Session, name: str, today: dt.date) -> dict[str, Any]:
    production = compliance.production_id(session, name)
    asset_ids = list(
        session.scalars(
            select(Asset.id).where(Asset.production_id == production).order_by(Asset.id)
        )
    )
    lookups = compliance.Lookups(session)

    def statuses() -> Iterator[tuple[Asset, dict[str, Any]]]:
        """Each asset's status, read DISCLOSURE_CHUNK assets at a time (their newest
        check, decision and tool only, as plain values), so that memory holds one chunk."""
        for start in range(0, len(asset_ids), DISCLOSURE_CHUNK):
            chunk = asset_ids[start : start + DISCLOSURE_CHUNK]
            lookups.prefetch(chunk, newest=True)
            for asset in repository.assets_for_status(session, chunk):
                yield asset, compliance.status(session, asset, today, lookups)
            lookups.forget(chunk)

    return record_export.production_disclosure(
        name, today=today, statuses=statuses(), chain=repository.chain_since_checkpoint(session)
    )


def _thumbnailer(workspace: Workspace) -> evidence.Thumbnail:
    def thumbnail(sha256: str, size: int) -> bytes:
        return thumbnails.thumbnail(
            workspace.root, workspace.store, sha256, size, workspace.fingerprint_limits
        ).read_bytes()

    return thumbnail


def _frame_thumbnailer(workspace: Workspace) -> evidence.FrameThumbnail:
    def frame_thumbnail(sha256: str, frame: int, size: int) -> bytes:
        return thumbnails.frame_thumbnail(
            workspace.root, workspace.store, sha256, frame, size, workspace.fingerprint_limits
        ).read_bytes()

    return frame_thumbnail


def _write_export(
    workspace: Workspace,
    out: Path,
    files: dict[str, bytes],
    key: StudioKey | None,
    anchor: anchors.Anchor | None,
    copies: Mapping[str, tuple[dict[str, Any], str]],
) -> list[Path]:
    """Sign what there is to sign, anchor the audit head, then write every file. Nothing is
    written when signing fails; the anchor goes to the anchors file before the export's
    files, so an export never lacks its anchor."""
    if key is not None:
        for name in list(files):
            if name.endswith(".pdf"):
                files[name] = signed_documents.sign_pdf(
                    files[name], key, reason="provenance evidence"
                )
            elif name.endswith((".json", ".html", ".csv")):
                files[name + ".p7s"] = signed_documents.sign_detached(files[name], key)
    if anchor is not None:
        # One line, as in the anchors file: `provenance verify` reads either.
        files["audit-anchor.json"] = (json.dumps(anchor.to_json(), sort_keys=True) + "\n").encode()
    # Copies with Content Credentials are signed in a folder of the workspace's (`store gc`
    # removes one a killed export leaves) and copied out in chunks: a movie never sits in
    # memory whole.
    with contextlib.ExitStack() as stack:
        signed_copies = {}
        for name, (record, record_sha256) in copies.items():
            assert key is not None
            staging = stack.enter_context(
                tempfile.TemporaryDirectory(prefix=".c2pa-", dir=workspace.root)
            )
            signed_copies[name] = _c2pa_copy(
                workspace, key, record, record_sha256, anchor, Path(staging)
            )
        if anchor is not None:
            anchors.append_anchor(signatures.anchors_path(workspace), anchor)
        written = _write_files(out, files)
        try:
            for name, signed in signed_copies.items():
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_atomically(target, signed)
                target.chmod(0o644)
                written.append(target)
        except OSError as exc:
            raise StoreError(f"cannot write the export to {out}: {exc.strerror}") from None
    return written


def _copy_name(stem: str, record: dict[str, Any]) -> str:
    suffix = Path(str(record["asset"]["original_name"])).suffix.lower()
    return f"{stem}-c2pa{suffix}"


def _c2pa_copy(
    workspace: Workspace,
    key: StudioKey,
    record: dict[str, Any],
    record_sha256: str,
    anchor: anchors.Anchor | None,
    staging: Path,
) -> Path:
    """A copy of the registered file with our signed Content Credentials, in ``staging``."""
    asset = record["asset"]
    source = workspace.store.path_for(asset["sha256"])
    named = Path(tempfile.mkdtemp(dir=staging))
    # The library tells formats by name: the stored copy is linked under its own.
    original = named / ("source" + Path(str(asset["original_name"])).suffix.lower())
    os.symlink(source, original)
    target = named / ("signed" + original.suffix)
    source_type = _digital_source_type(record)
    credentials.write_credentials(
        original,
        target,
        title=str(asset["original_name"]),
        key=key,
        trust_pem=workspace.fingerprint_limits.trust_anchors,
        assertion=_assertion(record, record_sha256, anchor, source_type),
        digital_source_type=source_type,
        generator=("provenance", __version__),
    )
    return target


def _assertion(
    record: dict[str, Any],
    record_sha256: str,
    anchor: anchors.Anchor | None,
    digital_source_type: str,
) -> dict[str, Any]:
    checks = record["checks"]
    return {
        "schema": credentials.RECORD_ASSERTION_SCHEMA,
        "asset_id": record["asset"]["id"],
        "sha256": record["asset"]["sha256"],
        "record_schema": record["schema"],
        "record_sha256": record_sha256,
        "verdict": checks[-1]["verdict"] if checks else "unchecked",
        "review_status": record["review_status"],
        "approvals": [
            {
                "approval_id": a["approval_id"],
                "approver": a["approver"],
                "reference": a["reference"],
                "covers": a["covers"],
                "recorded_at": a["recorded_at"],
                "withdrawn": a["withdrawn"] is not None,
            }
            for a in record["approvals"]
        ],
        "digital_source_type": digital_source_type,
        "audit_head": None if anchor is None else {"event": anchor.event, "hash": anchor.hash},
        "as_of": record["as_of"],
    }


def _digital_source_type(record: dict[str, Any]) -> str:
    """The IPTC digital source type of the copy: the maker's, from its own Content
    Credentials; else generated; composite when people reworked it (a revision)."""
    if record.get("revisions"):
        return credentials.COMPOSITE_TRAINED
    setting = record["asset"]["generation"]["settings"].get("digital_source_type")
    if (
        setting
        and isinstance(setting.get("value"), str)
        and setting["value"].startswith(credentials.IPTC)
    ):
        return str(setting["value"])
    return credentials.TRAINED


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
