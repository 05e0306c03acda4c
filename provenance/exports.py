"""Exports for legal: an asset's provenance record and evidence pack, a production's
disclosure summary with every asset's record. This module gathers what the records say
(statuses, checks, audit events, the chain's verification, thumbnails); ``provenance.export``
renders the documents from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance import compliance, thumbnails
from provenance.atomic import write_atomically
from provenance.db import audit, repository
from provenance.db.session import read_session
from provenance.db.tables import Asset, AuditEvent, Production
from provenance.errors import StoreError
from provenance.export import evidence
from provenance.export import record as record_export
from provenance.export.documents import stored_check_json
from provenance.workspace import Workspace


def asset_record(workspace: Workspace, ref: str, *, today: dt.date | None = None) -> dict[str, Any]:
    """The asset's provenance record (provenance.record/1)."""
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        return _record(session, asset, today or compliance.today_utc(), audit.verify_chain(session))


def disclosure(
    workspace: Workspace, production: str, *, today: dt.date | None = None
) -> dict[str, Any]:
    """The production's disclosure summary (provenance.disclosure/1)."""
    with read_session(workspace.engine) as session:
        return _disclosure(session, production, today or compliance.today_utc())


def export_asset(
    workspace: Workspace, ref: str, out: Path, *, today: dt.date | None = None, pdf: bool = True
) -> list[Path]:
    """Write asset-ID.json, its evidence pack asset-ID.html and (``pdf``) asset-ID.pdf."""
    record = asset_record(workspace, ref, today=today)
    html = evidence.asset_pack_html(record, _thumbnailer(workspace), _frame_thumbnailer(workspace))
    stem = f"asset-{record['asset']['id']}"
    files = {f"{stem}.json": record_export.dumps(record).encode("utf-8"),
             f"{stem}.html": html.encode("utf-8")}  # fmt: skip
    if pdf:
        files[f"{stem}.pdf"] = evidence.to_pdf(html)
    return _write_files(out, files)


def export_production(
    workspace: Workspace,
    production: str,
    out: Path,
    *,
    today: dt.date | None = None,
    pdf: bool = True,
) -> list[Path]:
    """Write the disclosure summary (disclosure.json, .html, .pdf) and every asset's
    record and evidence pack under assets/."""
    summary = disclosure(workspace, production, today=today)
    html = evidence.disclosure_html(summary)
    files = {"disclosure.json": record_export.dumps(summary).encode("utf-8"),
             "disclosure.html": html.encode("utf-8")}  # fmt: skip
    if pdf:
        files["disclosure.pdf"] = evidence.to_pdf(html)
    ids = [entry["asset_id"] for c in summary["categories"] for entry in c["assets"]]
    with read_session(workspace.engine) as session:
        chain = audit.verify_chain(session)  # once for the whole export
        for asset_id in ids:
            asset = repository.find_asset(session, str(asset_id))
            record = _record(session, asset, today or compliance.today_utc(), chain)
            stem = f"assets/asset-{asset_id}"
            files[f"{stem}.json"] = record_export.dumps(record).encode("utf-8")
            files[f"{stem}.html"] = evidence.asset_pack_html(
                record, _thumbnailer(workspace), _frame_thumbnailer(workspace)
            ).encode("utf-8")
    return _write_files(out, files)


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
    compliance.production_id(session, name)
    assets = session.scalars(
        repository.with_details(select(Asset))
        .join(Production)
        .where(Production.name == name)
        .order_by(Asset.id)
    ).all()
    lookups = compliance.Lookups(session)
    lookups.prefetch([asset.id for asset in assets])
    return record_export.production_disclosure(
        name,
        today=today,
        statuses=[(asset, compliance.status(session, asset, today, lookups)) for asset in assets],
        chain=audit.verify_chain(session),
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
