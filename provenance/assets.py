"""Reading assets: one record, lists and counts with filters, the audit history of one
asset, and its stored bytes or thumbnail (for the reviewer pages)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from provenance import thumbnails
from provenance.db import audit, repository
from provenance.db.session import read_session
from provenance.domain import IntendedUse
from provenance.errors import InvalidInput, NotFound
from provenance.export.asset_json import asset_json
from provenance.review_rules import STATUSES
from provenance.workspace import Workspace


def show(workspace: Workspace, ref: str) -> dict[str, Any]:
    """The full record of the asset named by an id or a sha256 prefix."""
    with read_session(workspace.engine) as session:
        return asset_json(repository.find_asset(session, ref))


# What ``list_assets`` filters the newest check's verdict by (``unchecked``: no check yet).
VERDICTS = ("clear", "review", "high", "unchecked")


def list_assets(
    workspace: Workspace,
    *,
    production: str | None = None,
    tool: str | None = None,
    use: str | None = None,
    since: str | None = None,
    registered_by: str | None = None,
    status: str | None = None,
    verdict: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Assets matching every given filter, oldest first, without raw metadata.

    ``verdict``: that of the newest check (clear, review, high, or unchecked); ``status``:
    the review status (see ``review_rules.STATUSES``)."""
    filters = _asset_filters(production, tool, use, since, registered_by, verdict, status)
    with read_session(workspace.engine) as session:
        found = repository.list_assets(session, limit=limit, offset=offset, **filters)
        return [asset_json(asset, include_raw=False) for asset in found]


def _choice(option: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().lower().replace("-", "_")
    if cleaned not in allowed:
        raise InvalidInput(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return cleaned


def count_assets(
    workspace: Workspace,
    *,
    production: str | None = None,
    tool: str | None = None,
    use: str | None = None,
    since: str | None = None,
    registered_by: str | None = None,
    verdict: str | None = None,
    status: str | None = None,
) -> int:
    """How many assets ``list_assets`` gives with these filters (no limit)."""
    filters = _asset_filters(production, tool, use, since, registered_by, verdict, status)
    with read_session(workspace.engine) as session:
        return repository.count_assets(session, **filters)


def asset_history(workspace: Workspace, ref: str) -> list[dict[str, Any]]:
    """The audit events about the asset, oldest first."""
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        return [
            audit.event_json(event)
            for event in repository.events_about(session, f"asset:{asset.id}")
        ]


def stored_image(workspace: Workspace, sha256: str, *, artist: str | None = None) -> bytes:
    """The stored bytes of a registered asset or a reference item, by content hash;
    NotFound for any other name (nothing outside the store is ever read). With
    ``artist``, only that artist's own assets and reference items are found."""
    _check_image(workspace, sha256, artist)
    return workspace.store.read(sha256)


def _check_image(workspace: Workspace, sha256: str, artist: str | None) -> None:
    if not repository.SHA256.match(sha256):
        raise NotFound("no stored image with that name")
    with read_session(workspace.engine) as session:
        if not repository.is_known_image(session, sha256, registered_by=artist):
            raise NotFound("no stored image with that name")


def thumbnail(workspace: Workspace, sha256: str, size: int, *, artist: str | None = None) -> Path:
    """A JPEG of the stored image fitting ``size`` pixels, made once and kept under
    ``thumbnails/`` (re-made only if deleted). ``artist``: as for ``stored_image``."""
    _check_image(workspace, sha256, artist)
    return thumbnails.thumbnail(
        workspace.root, workspace.store, sha256, size, workspace.fingerprint_limits
    )


def frame_thumbnail(
    workspace: Workspace, sha256: str, frame: int, size: int, *, artist: str | None = None
) -> Path:
    """A JPEG of one frame of a stored movie or frame sequence (numbered as its check
    numbers them) fitting ``size`` pixels, made once and kept. ``artist``: as for
    ``stored_image``."""
    _check_image(workspace, sha256, artist)
    return thumbnails.frame_thumbnail(
        workspace.root, workspace.store, sha256, frame, size, workspace.fingerprint_limits
    )


def aligned_reference(
    workspace: Workspace,
    asset_sha256: str,
    reference_sha256: str,
    transform: tuple[float, ...] | None,
    size: int,
) -> Path:
    """The reference redrawn in the asset's frame at the asset's displayed size (see
    ``thumbnails.aligned``), for comparing the two by wipe, flicker and difference. Both
    must be stored images the workspace knows."""
    _check_image(workspace, asset_sha256, None)
    _check_image(workspace, reference_sha256, None)
    return thumbnails.aligned(
        workspace.root,
        workspace.store,
        asset_sha256,
        reference_sha256,
        transform,
        size,
        workspace.fingerprint_limits,
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
    verdict: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """The asset-list filters as the repository takes them (use, date, verdict and status
    checked)."""
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
        "verdict": _choice("--verdict", verdict, VERDICTS),
        "status": _choice("--status", status, STATUSES),
    }
