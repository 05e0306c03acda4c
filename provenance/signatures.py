"""Signing and verifying what the studio hands out: the studio's key (``keys init`` makes a
development one), any signed file checked (``verify``), and the audit log's head anchored
outside the database (``audit anchor``, and on every export).

Signatures are checked against the studio's own root and its trust list (settings
``signing_certificate`` and ``trust_list``), plus any certificates the caller names: a
lawyer outside the studio verifies with the studio's root certificate alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from provenance.config import WORKSPACE_FILE, with_settings
from provenance.db import audit
from provenance.db.session import read_session
from provenance.errors import AuditChainBroken, ConfigError, InvalidInput, SignatureInvalid
from provenance.signing import anchors, credentials, documents, keys
from provenance.signing.documents import SignatureReport
from provenance.workspace import Workspace

VERIFY_SCHEMA = "provenance.verify/1"
# Larger files are read for Content Credentials from disk, not into memory.
_IN_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True)
class KeysMade:
    """What ``keys init`` wrote and who signs now."""

    files: keys.DevelopmentKeys
    signer: str

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "provenance.keys/1",
            "ca_certificate": str(self.files.ca_certificate),
            "certificate": str(self.files.certificate),
            "key": str(self.files.key),
            "signer": self.signer,
        }


def init_keys(workspace: Workspace, *, organisation: str, force: bool = False) -> KeysMade:
    """Make a development CA and signing certificate in the workspace's keys/ folder and
    set signing_certificate and signing_key to them. Refused when a key is configured
    already, unless ``force``."""
    if str(workspace.settings["signing_certificate"]).strip() and not force:
        raise ConfigError(
            "a signing key is configured already (signing_certificate); pass --force to "
            "replace it with a new development key"
        )
    if not organisation.strip() or len(organisation) > 64:
        raise InvalidInput("--organisation must be 1 to 64 characters")
    settings_file = workspace.root / WORKSPACE_FILE
    try:
        text = settings_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {WORKSPACE_FILE}: {exc.strerror}") from None
    made = keys.make_development_keys(workspace.root / "keys", organisation.strip())
    updated = with_settings(
        text,
        {
            "signing_certificate": str(made.certificate.relative_to(workspace.root)),
            "signing_key": str(made.key.relative_to(workspace.root)),
            "signing_command": "",
        },
    )
    settings_file.write_text(updated, encoding="utf-8")
    loaded = keys.load_key(made.certificate, made.key, "")
    return KeysMade(made, loaded.signer)


@dataclass(frozen=True)
class FileVerification:
    """One file's signatures and whether they all hold."""

    path: Path
    kind: str  # "pdf", "cms", "c2pa" or "anchors"
    reports: tuple[SignatureReport, ...]
    content_credentials: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.reports) and all(report.ok for report in self.reports)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": VERIFY_SCHEMA,
            "file": str(self.path),
            "kind": self.kind,
            "ok": self.ok,
            "signatures": [report.to_json() for report in self.reports],
        }
        if self.content_credentials is not None:
            document["content_credentials"] = self.content_credentials
        return document


def trust_for(workspace: Workspace | None, extra: list[Path]) -> list[x509.Certificate]:
    """The roots to verify against: the workspace's, then each PEM file in ``extra``."""
    trusted = workspace.trust_certificates() if workspace is not None else []
    for path in extra:
        trusted += keys.read_certificates(path, "--trust")
    return trusted


def verify_file(
    path: Path, trust: list[x509.Certificate], *, signature: Path | None = None
) -> FileVerification:
    """Check a signed PDF, a file with a detached signature (``FILE.p7s`` beside it, or
    ``signature``), an anchors file, or a file's Content Credentials. SignatureInvalid
    when the file carries no signature at all."""
    if path.suffix == ".p7s" and signature is None:
        path, signature = path.with_suffix(""), path
    if signature is None and path.with_name(path.name + ".p7s").is_file():
        signature = path.with_name(path.name + ".p7s")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    data = _read(path) if size <= _IN_MEMORY else None
    if signature is not None:
        content = data if data is not None else _read(path)
        report = documents.verify_detached(content, _read(signature), trust)
        return FileVerification(path, "cms", (report,))
    if data is not None and data.startswith(b"%PDF-"):
        return FileVerification(path, "pdf", tuple(documents.verify_pdf(data, trust)))
    if data is not None and _looks_like_anchors(data):
        found = anchors.read_anchors(path)
        reports = []
        for anchor in found:
            report = _anchor_report(anchor, trust)
            reports.append(report)
        return FileVerification(path, "anchors", tuple(reports))
    summary = credentials.read_credentials(path.name, data, path, keys.anchors_pem(trust))
    if summary is None:
        raise SignatureInvalid(
            f"{path.name} carries no signature: no Content Credentials, not a signed PDF, "
            f"and no {path.name}.p7s beside it"
        )
    state = str(summary["validation_state"])
    report = SignatureReport(
        "c2pa",
        not state.startswith("invalid"),
        state == credentials.STATE_VALID,
        str(summary.get("signer") or "unknown"),
        summary.get("signing_time"),
        state,
    )
    return FileVerification(path, "c2pa", (report,), summary)


def anchor_audit(workspace: Workspace, reason: str) -> anchors.Anchor:
    """Anchor the audit log's head now (``audit anchor``): verify the chain, check it
    against the newest anchor, append a signed anchor to the anchors file."""
    anchor = head_anchor(workspace, workspace.studio_key(), reason)
    if anchor is None:
        raise AuditChainBroken(
            "the audit chain does not verify; it is not anchored (`provenance audit verify`)"
        )
    anchors.append_anchor(anchors_path(workspace), anchor)
    return anchor


def head_anchor(
    workspace: Workspace,
    key: keys.StudioKey | None,
    reason: str,
    *,
    chain_ok: bool | None = None,
) -> anchors.Anchor | None:
    """The audit head as an anchor (signed when there is a key), not yet written; None when
    the chain does not verify (``chain_ok``: the caller verified it already, as an export's
    records do). AuditChainBroken when the chain contradicts the newest anchor in the
    anchors file: the log was rewritten or cut since."""
    with read_session(workspace.engine) as session:
        if chain_ok is None:
            chain_ok = audit.verify_chain(session).ok
        if not chain_ok:
            return None
        event, digest = audit.head(session)
        newest = anchors.newest_anchor(anchors_path(workspace))
        if newest is not None and newest.event > 0:
            stored = audit.event_hashes(session, [newest.event]).get(newest.event)
            if stored != newest.hash:
                raise AuditChainBroken(
                    f"the audit log contradicts its anchor of event {newest.event} "
                    f"({newest.anchored_at}): it was rewritten or cut; run "
                    "`provenance audit verify --anchors`"
                )
    return anchors.make_anchor(event, digest, reason, key)


def anchors_path(workspace: Workspace) -> Path:
    """The anchors file (setting audit_anchors)."""
    return workspace.path_setting(str(workspace.settings["audit_anchors"]))


def _anchor_report(anchor: anchors.Anchor, trust: list[x509.Certificate]) -> SignatureReport:
    where = f"line {anchor.line}: event {anchor.event}, {anchor.anchored_at}"
    try:
        report = anchors.verify_signature(anchor, trust)
    except SignatureInvalid as exc:
        return SignatureReport("cms", False, False, "unknown", None, f"{where}: {exc}")
    if report is None:
        return SignatureReport("cms", True, False, "nobody", None, f"{where}: unsigned")
    return SignatureReport(
        "cms", report.intact, report.trusted, report.signer, anchor.anchored_at,
        f"{where}: {report.message}",
    )  # fmt: skip


def _looks_like_anchors(data: bytes) -> bool:
    first = data.lstrip()[:4096]
    if not first.startswith(b"{"):
        return False
    try:
        line = first.split(b"\n", 1)[0]
        return bool(json.loads(line).get("schema") == anchors.SCHEMA)
    except (ValueError, AttributeError):
        return anchors.SCHEMA.encode() in first


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
