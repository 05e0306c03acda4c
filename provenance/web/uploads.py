"""Signed documents uploaded through the web layer (pages and API) become approvals the same
way `provenance approve --document FILE` does: the bytes go into the content store by
sha256, under the upload's own file name reduced to a safe base name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import UploadFile
from starlette.requests import cookie_parser

from provenance import clearance
from provenance.clearance import MAX_DOCUMENT_BYTES, Document
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, Unauthenticated
from provenance.web.auth import SESSION_COOKIE, Sessions, bearer_user
from provenance.workspace import Workspace


@dataclass(frozen=True)
class UploadRule:
    """A route taking uploaded files: the most its whole request body may be, and the roles
    that may send one (refused before the body is read)."""

    path: re.Pattern[str]
    limit: int
    roles: tuple[str, ...]
    doing: str


# The most a signed document's request may be: the document and the form around it.
UPLOAD_BODY_LIMIT = MAX_DOCUMENT_BYTES + 1024 * 1024
# The most one upload of reference pictures may be (a larger set comes from a folder).
REFERENCE_UPLOAD_LIMIT = 1024 * 1024 * 1024
UPLOADS = (
    UploadRule(
        re.compile(r"/(api/v1/)?assets/\d+/approvals?\Z"),
        UPLOAD_BODY_LIMIT,
        ("legal",),
        "recording a written approval",
    ),
    UploadRule(
        re.compile(r"/manage/consents\Z"), UPLOAD_BODY_LIMIT, ("legal",), "recording a consent"
    ),
    UploadRule(
        re.compile(r"/manage/reference-sets\Z"),
        REFERENCE_UPLOAD_LIMIT,
        ("admin",),
        "managing reference sets",
    ),
)
UPLOAD_PATH = UPLOADS[0].path


def upload_rule(path: str) -> UploadRule | None:
    """The upload rule of the route at ``path``; None for a route taking no files."""
    return next((rule for rule in UPLOADS if rule.path.match(path)), None)


def authorise_upload(
    app: Any, scope: dict[str, Any], headers: dict[bytes, bytes], rule: UploadRule = UPLOADS[0]
) -> None:
    """Refuse an upload from anyone but a signed-in user holding one of ``rule``'s roles
    before its body is read: the API's bearer token, or the pages' session cookie. Raises
    Unauthenticated or AccessDenied (the route checks again, with the form's CSRF token,
    once it runs)."""
    workspace: Workspace | None = app.state.workspace
    if workspace is None:
        return
    user: UserInfo | None
    if scope["path"].startswith("/api/"):
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        user = bearer_user(workspace, authorization or None)
    else:
        sessions: Sessions = app.state.sessions
        user = sessions.user(workspace, _cookie(headers, SESSION_COOKIE))
        if user is None:
            raise Unauthenticated("sign in first")
    if user.role not in rule.roles:
        raise AccessDenied(f"{rule.doing} needs the {' or '.join(rule.roles)} role; {user.role}")


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    # Starlette's own parser: it undoes the quoting set_cookie applied.
    return cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(name)


def record_approval(
    workspace: Workspace,
    asset_id: int,
    *,
    user: UserInfo,
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
    return clearance.approve(
        workspace,
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
