"""The management pages: users (admins), reference sets (admins), tool vettings (admins and
legal) and consents (legal). Each form carries a CSRF token and makes one use-case call as
the signed-in user, who must hold the role the command line would ask of a token; every
change is an audit event, written by the use case, exactly as from the command line."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from provenance import clearance, reference_sets, users
from provenance.clearance import Document
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, InvalidInput
from provenance.policy import SCOPES
from provenance.users import ROLES
from provenance.web import uploads
from provenance.web.pages import _check_csrf, _render, _workspace, page_user

router = APIRouter(include_in_schema=False)

# Who may open which page (the use case checks again when it writes).
PAGES = {
    "users": ("admin",),
    "reference-sets": ("admin",),
    "tools": ("admin", "legal"),
    "consents": ("legal",),
}
HANDLING = ("yes", "no", "unknown")
RIGHTS = reference_sets.RIGHTS


def _allowed(request: Request, page: str, csrf: str | None = None) -> UserInfo:
    """The signed-in user, who must hold one of ``page``'s roles; for a form, ``csrf``
    must be the session's token."""
    user = page_user(request)
    if csrf is not None:
        _check_csrf(request, csrf)
    if user.role not in PAGES[page]:
        raise AccessDenied(f"the {page} page is for the {' or '.join(PAGES[page])} role")
    return user


def _done(page: str, message: str) -> Response:
    return RedirectResponse(f"/manage/{page}?{urlencode({'done': message})}", 303)


@router.get("/manage")
def manage_home(request: Request) -> Response:
    user = page_user(request)
    mine = [page for page, roles in PAGES.items() if user.role in roles]
    if not mine:
        raise AccessDenied("managing the workspace is for admins and legal")
    return RedirectResponse(f"/manage/{mine[0]}", 303)


def _page(request: Request, user: UserInfo, page: str, done: str, **context: Any) -> Response:
    pages = [p for p, roles in PAGES.items() if user.role in roles]
    return _render(
        request,
        "manage.html",
        {"user": user, "page": page, "pages": pages, "done": done, **context},
    )


@router.get("/manage/users")
def users_page(request: Request, done: str = "") -> Response:
    user = _allowed(request, "users")
    found = users.list_users(_workspace(request))
    return _page(request, user, "users", done, users=found, roles=ROLES, token=None)


@router.post("/manage/users")
def add_user(
    request: Request,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = _allowed(request, "users", csrf)
    added = users.add_user(_workspace(request), name.strip(), role, signed_in=user)
    return _done("users", f"Added {added.name} ({added.role}); issue their token below.")


@router.post("/manage/users/{name}/token")
def issue_token(request: Request, name: str, csrf: Annotated[str, Form()] = "") -> Response:
    """A new token, shown on this one answer and never again (only its hash is kept)."""
    user = _allowed(request, "users", csrf)
    workspace = _workspace(request)
    token = users.issue_token(workspace, name, signed_in=user)
    found = users.list_users(workspace)
    return _page(
        request, user, "users", "", users=found, roles=ROLES, token={"name": name, "value": token}
    )


@router.post("/manage/users/{name}/disable")
def disable_user(request: Request, name: str, csrf: Annotated[str, Form()] = "") -> Response:
    user = _allowed(request, "users", csrf)
    if name == user.name:
        raise InvalidInput("you cannot disable yourself; another admin can")
    users.disable_user(_workspace(request), name, signed_in=user)
    return _done("users", f"Disabled {name}: their token and sessions no longer work.")


@router.get("/manage/tools")
def tools_page(request: Request, done: str = "") -> Response:
    user = _allowed(request, "tools")
    found = clearance.list_tools(_workspace(request))
    return _page(request, user, "tools", done, tools=found, handling=HANDLING)


@router.post("/manage/tools")
def vet_tool(
    request: Request,
    name: Annotated[str, Form()] = "",
    vendor: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    stores_inputs: Annotated[str, Form()] = "unknown",
    trains_on_inputs: Annotated[str, Form()] = "unknown",
    enterprise_secured: Annotated[str, Form()] = "unknown",
    terms_url: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = _allowed(request, "tools", csrf)
    if not name.strip():
        raise InvalidInput("a tool vetting needs the tool's name")
    vetted = clearance.vet_tool(
        _workspace(request),
        name.strip(),
        user=user,
        vendor=vendor.strip() or None,
        version=version.strip() or None,
        stores_inputs=stores_inputs,
        trains_on_inputs=trains_on_inputs,
        enterprise_secured=enterprise_secured,
        terms_url=terms_url.strip() or None,
        notes=notes.strip() or None,
    )
    return _done("tools", f"Recorded the vetting of {vetted['name']}.")


@router.get("/manage/consents")
def consents_page(request: Request, done: str = "") -> Response:
    user = _allowed(request, "consents")
    found = clearance.list_consents(_workspace(request))
    return _page(request, user, "consents", done, consents=found, scopes=SCOPES)


@router.post("/manage/consents")
def add_consent(
    request: Request,
    document: UploadFile,
    talent: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    production: Annotated[str, Form()] = "",
    expires: Annotated[str, Form()] = "",
    new_production: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A talent's consent with its signed release (into the content store by sha256)."""
    user = _allowed(request, "consents", csrf)
    # Whole: the app's BodyLimit has already refused a body over the upload limit.
    data = document.file.read()
    made = clearance.add_consent(
        _workspace(request),
        user=user,
        talent=talent,
        scope=scope,
        production=production.strip() or None,
        document=Document(data, uploads.upload_name(document.filename)),
        expires=expires,
        new_production=new_production == "yes",
    )
    return _done("consents", f"Recorded consent #{made['consent_id']} of {made['talent']}.")


@router.get("/manage/reference-sets")
def reference_sets_page(request: Request, done: str = "") -> Response:
    user = _allowed(request, "reference-sets")
    found = reference_sets.list_sets(_workspace(request))
    return _page(request, user, "reference-sets", done, sets=found, rights=RIGHTS)


@router.post("/manage/reference-sets")
def create_reference_set(
    request: Request,
    name: Annotated[str, Form()] = "",
    rights: Annotated[str, Form()] = "",
    holder: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    folder: Annotated[str, Form()] = "",
    files: list[UploadFile] | None = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A new reference set from uploaded pictures or from a folder on the server that the
    admin names; its indexes are built before the answer comes back."""
    user = _allowed(request, "reference-sets", csrf)
    workspace = _workspace(request)
    sent = [f for f in files or [] if f.filename]
    if bool(sent) == bool(folder.strip()):
        raise InvalidInput("give either pictures to upload or a folder on the server (not both)")

    def create(sources: list[Path], source: str | None = None) -> reference_sets.IngestReport:
        return reference_sets.create(
            workspace,
            name.strip(),
            sources,
            rights=rights,
            holder=holder.strip() or None,
            description=description.strip(),
            user=user,
            source=source,
        )

    if folder.strip():
        given = Path(folder.strip()).expanduser()
        if not given.is_absolute() or not given.is_dir():
            raise InvalidInput(
                f"{folder.strip()!r} is not a folder on the server (an absolute path)"
            )
        report = create([given])
    else:
        # The pictures are written to a staging folder (outside the workspace, whose own
        # files a folder walk passes over), read from there like any folder, and removed
        # whatever happens.
        staging = Path(tempfile.mkdtemp(prefix="provenance-upload-"))
        try:
            for upload in sent:
                named = staging / uploads.upload_name(upload.filename)
                target, number = named, 1
                while target.exists():  # two uploads of one name keep both
                    number += 1
                    target = named.with_name(f"{named.stem}-{number}{named.suffix}")
                with target.open("wb") as handle:
                    shutil.copyfileobj(upload.file, handle)
            report = create([staging], f"uploaded through the web pages ({len(sent)} files)")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    problems = len(report.failed) + len(report.skipped)
    extra = f"; {problems} file(s) not read" if problems else ""
    return _done("reference-sets", f"Created {report.name}: {report.added} pictures{extra}.")
