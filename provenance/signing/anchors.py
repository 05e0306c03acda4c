"""Audit anchors: the audit log's head (event number and hash), written outside the
database it protects.

An anchors file holds one JSON object a line (``provenance.audit-anchor/1``): the event
number and hash of the head, when and why it was anchored, and a detached CMS signature
(base64) over the rest of the line's canonical JSON, made with the studio's key. Whoever can
rewrite the database can rewrite the whole chain and its head row; they cannot make an
anchor written earlier agree with the rewritten chain, nor sign a new one without the key.
Keep the file where the database's writers cannot change it (another machine, a
write-once share), or keep a copy of every export, which carries its anchor too.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from provenance.errors import InvalidInput, StoreError
from provenance.signing import documents
from provenance.signing.keys import StudioKey

SCHEMA = "provenance.audit-anchor/1"
# A line longer than this is no anchor (they are about 3 KiB with a signature).
MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class Anchor:
    """One anchored head, as written."""

    line: int  # its line in the file, from 1; 0 for an anchor not read from a file
    event: int
    hash: str
    anchored_at: str
    reason: str
    signature: bytes | None
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        document = dict(self.body)
        document["signature"] = (
            None if self.signature is None else base64.b64encode(self.signature).decode("ascii")
        )
        return document


def make_anchor(event: int, digest: str, reason: str, key: StudioKey | None) -> Anchor:
    """An anchor of the head ``event``/``digest``, signed when there is a key."""
    anchored_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "event": event,
        "hash": digest,
        "anchored_at": anchored_at,
        "reason": reason,
        "signer": None if key is None else key.signer,
    }
    signature = None if key is None else documents.sign_detached(_canonical(body), key)
    return Anchor(0, event, digest, anchored_at, reason, signature, body)


def append_anchor(path: Path, anchor: Anchor) -> None:
    """Append ``anchor`` as one line, under an exclusive lock, flushed to disk."""
    line = (json.dumps(anchor.to_json(), sort_keys=True) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise StoreError(
            f"cannot append to the audit anchors file {path}: {exc.strerror}"
        ) from None


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in the file, in order. InvalidInput names the first line that is not
    an anchor (a damaged file is reported, never half read)."""
    try:
        with path.open("rb") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise InvalidInput(f"no audit anchors file at {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the audit anchors file {path}: {exc.strerror}") from None
    anchors = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        anchors.append(parse_anchor(raw, f"{path.name} line {number}", number))
    return anchors


def newest_anchor(path: Path) -> Anchor | None:
    """The last anchor in the file (read from its end: the file grows with every export);
    None when there is no file or no anchor in it."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - 2 * MAX_LINE))
            tail = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidInput(f"cannot read the audit anchors file {path}: {exc.strerror}") from None
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    return parse_anchor(lines[-1], f"the last line of {path.name}")


def parse_anchor(raw: bytes | str, where: str, line: int = 0) -> Anchor:
    """One anchor from its JSON; InvalidInput names ``where`` and what is wrong."""
    if len(raw) > MAX_LINE:
        raise InvalidInput(f"{where} is not an audit anchor: over {MAX_LINE:,} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where} is not an audit anchor: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise InvalidInput(f"{where} is not an audit anchor ({SCHEMA})")
    event, digest = document.get("event"), document.get("hash")
    if not isinstance(event, int) or event < 0 or not isinstance(digest, str):
        raise InvalidInput(f"{where}: an anchor needs an event number and a hash")
    signature = document.pop("signature", None)
    try:
        signed = None if signature is None else base64.b64decode(signature, validate=True)
    except (ValueError, TypeError):
        raise InvalidInput(f"{where}: the anchor's signature is not base64") from None
    return Anchor(
        line,
        event,
        digest,
        str(document.get("anchored_at", "")),
        str(document.get("reason", "")),
        signed,
        document,
    )


def verify_signature(
    anchor: Anchor, trust: list[x509.Certificate]
) -> documents.SignatureReport | None:
    """The anchor's signature checked against ``trust``; None for an unsigned anchor."""
    if anchor.signature is None:
        return None
    return documents.verify_detached(_canonical(anchor.body), anchor.signature, trust)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
