"""Signed documents uploaded through the web layer (pages and API) become approvals the same
way `provenance approve --document FILE` does: the bytes go into the content store by
sha256, under the upload's own file name reduced to a safe base name."""

from __future__ import annotations

import re
from typing import Any

from fastapi import UploadFile

from provenance.clearance import MAX_DOCUMENT_BYTES, Document
from provenance.workspace import Workspace

# The routes taking a signed document (the asset page's form and the API), and the most
# their whole request body may be: the document and the form around it.
UPLOAD_PATH = re.compile(r"/(api/v1/)?assets/\d+/approvals?\Z")
UPLOAD_BODY_LIMIT = MAX_DOCUMENT_BYTES + 1024 * 1024


def record_approval(
    workspace: Workspace,
    asset_id: int,
    *,
    user: dict[str, Any],
    approver: str,
    reference: str,
    document: UploadFile,
    check_id: int | None = None,
) -> dict[str, Any]:
    """Record the studio's written approval of ``asset_id`` by ``user`` (legal only: the
    workspace refuses anyone else before it writes); ``check_id``: the check the approver
    saw (a newer one is a Conflict)."""
    # Whole: the app's BodyLimit has already refused a body over UPLOAD_BODY_LIMIT.
    data = document.file.read()
    return workspace.approve(
        str(asset_id),
        approver=approver,
        reference=reference,
        document=Document(data, upload_name(document.filename)),
        user=user,
        check_id=check_id,
    )


def upload_name(name: str | None) -> str:
    """The uploaded file's own name, reduced to a safe base name (it is recorded with the
    approval; the browser's path and any control characters are dropped)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip(" .")
    return base[:200] or "document"
