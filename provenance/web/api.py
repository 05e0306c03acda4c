"""The REST API under ``/api/v1``.

Every request carries ``Authorization: Bearer <token>`` (``provenance users token NAME``).
Successful answers are JSON objects with ``"ok": true``; failures are ``{"ok": false,
"error": {"type", "message"}}`` with 401 (no or bad token), 403 (the role may not), 404
(unknown id), 409 (the state does not allow it, or another decision came first), 422 (bad
input). Lists take ``limit`` and ``offset`` and say the ``total``.

Artists read the assets they registered; reviewers, legal and admins read every asset,
the queue and the reference sets; reviewers and legal decide (see ``provenance.reviews``);
legal records the studio's written approvals.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from provenance import assets, checking, compliance, reviews, triage
from provenance import reference_sets as refsets
from provenance.domain import UserInfo
from provenance.review_rules import DECISIONS, OPEN_STATUSES, SORTS, STATUSES
from provenance.reviews import QueueFilter
from provenance.web import uploads
from provenance.web.auth import (
    DECIDING_ROLES,
    QUEUE_ROLES,
    bearer_user,
    require_read,
    require_role,
)
from provenance.workspace import Workspace

router = APIRouter(prefix="/api/v1", tags=["api"])

MAX_PAGE = 500


def _workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def api_user(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <token>")] = None,
) -> UserInfo:
    return bearer_user(_workspace(request), authorization)


User = Annotated[UserInfo, Depends(api_user)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Skip this many items.")]


class Page(BaseModel):
    ok: bool = True
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


class Item(BaseModel):
    ok: bool = True
    item: dict[str, Any]


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorAnswer(BaseModel):
    ok: bool = False
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorAnswer, "description": text}
    for code, text in (
        (401, "No token, or a token that is not valid."),
        (403, "The user's role may not do this."),
        (404, "No such record."),
        (409, "The record's state does not allow this, or changed since it was read."),
        (422, "The request is not acceptable."),
    )
}


def _slice(items: list[dict[str, Any]], limit: int, offset: int) -> Page:
    """A page of a list held whole."""
    return _page(items[offset : offset + limit], len(items), limit, offset)


def _page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> Page:
    return Page(total=total, limit=limit, offset=offset, items=items)


@router.get("/me", response_model=Item, responses=ERRORS)
def me(user: User) -> Item:
    """The user the token belongs to."""
    return Item(item=user.to_json())


@router.get("/assets", response_model=Page, responses=ERRORS)
def list_assets(
    request: Request,
    user: User,
    production: str | None = None,
    tool: str | None = None,
    use: str | None = None,
    status: Annotated[Literal[STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    verdict: Literal["clear", "review", "high"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """Assets, oldest first (artists: their own), with their review status."""
    workspace = _workspace(request)
    filters: dict[str, Any] = {
        "production": production,
        "tool": tool,
        "use": use,
        "registered_by": user.name if user.role == "artist" else None,
        "verdict": verdict,
        "status": status,
    }
    page = assets.list_assets(workspace, limit=limit, offset=offset, **filters)
    return _page(page, assets.count_assets(workspace, **filters), limit, offset)


def _readable(request: Request, user: UserInfo, asset_id: int) -> dict[str, Any]:
    asset = assets.show(_workspace(request), str(asset_id))
    require_read(user, asset)
    return asset


@router.get("/assets/{asset_id}", response_model=Item, responses=ERRORS)
def asset_detail(request: Request, user: User, asset_id: int) -> Item:
    """One asset's record (``provenance.asset/1``) with its review status and decisions."""
    return Item(item=_readable(request, user, asset_id))


@router.get("/assets/{asset_id}/checks", response_model=Page, responses=ERRORS)
def asset_checks(
    request: Request, user: User, asset_id: int, limit: Limit = 50, offset: Offset = 0
) -> Page:
    """The asset's checks, oldest first, each with its matches, thresholds and specs."""
    _readable(request, user, asset_id)
    checks = checking.asset_checks(_workspace(request), str(asset_id))
    return _slice(checks, limit, offset)


@router.get("/assets/{asset_id}/matches", response_model=Page, responses=ERRORS)
def asset_matches(
    request: Request, user: User, asset_id: int, limit: Limit = 50, offset: Offset = 0
) -> Page:
    """The matches of the asset's newest check (empty when never checked)."""
    _readable(request, user, asset_id)
    checks = checking.asset_checks(_workspace(request), str(asset_id))
    matches = checks[-1]["matches"] if checks else []
    return _slice(matches, limit, offset)


@router.get("/assets/{asset_id}/reviews", response_model=Page, responses=ERRORS)
def asset_reviews(
    request: Request, user: User, asset_id: int, limit: Limit = 50, offset: Offset = 0
) -> Page:
    """The asset's decisions, oldest first."""
    decisions = _readable(request, user, asset_id)["review"]["decisions"]
    return _slice(decisions, limit, offset)


@router.get("/assets/{asset_id}/notes", response_model=Page, responses=ERRORS)
def asset_notes(
    request: Request, user: User, asset_id: int, limit: Limit = 50, offset: Offset = 0
) -> Page:
    """The asset's notes as threads, oldest first (each with its ``replies``)."""
    _readable(request, user, asset_id)
    threads = triage.notes(_workspace(request), str(asset_id))
    return _slice([note.to_json() for note in threads], limit, offset)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=triage.NOTE_MAX)
    reply_to: int | None = Field(default=None, description="The note this one answers.")


@router.post("/assets/{asset_id}/notes", status_code=201, response_model=Item, responses=ERRORS)
def create_note(request: Request, user: User, asset_id: int, body: NoteIn) -> Item:
    """Add a note (or a reply) to the asset; an audit event. Artists: their own assets."""
    _readable(request, user, asset_id)
    made = triage.add_note(
        _workspace(request), str(asset_id), body.text, user=user, reply_to=body.reply_to
    )
    return Item(item=made.to_json())


@router.post("/assets/{asset_id}/claim", status_code=201, response_model=Item, responses=ERRORS)
def claim_asset(request: Request, user: User, asset_id: int) -> Item:
    """Claim the asset for the user for an hour, until their decision or release; 409
    while someone else's claim lasts."""
    made = triage.claim(_workspace(request), asset_id, user=user)
    return Item(item=made.to_json())


@router.delete("/assets/{asset_id}/claim", response_model=Item, responses=ERRORS)
def release_asset(request: Request, user: User, asset_id: int) -> Item:
    """End the user's claim on the asset (admins: anyone's)."""
    triage.release(_workspace(request), asset_id, user=user)
    return Item(item={"asset_id": asset_id, "claimed_by": None})


@router.get("/assets/{asset_id}/history", response_model=Page, responses=ERRORS)
def asset_history(
    request: Request, user: User, asset_id: int, limit: Limit = 50, offset: Offset = 0
) -> Page:
    """The audit events about the asset, oldest first."""
    _readable(request, user, asset_id)
    events = assets.asset_history(_workspace(request), str(asset_id))
    return _slice(events, limit, offset)


@router.get("/assets/{asset_id}/status", response_model=Item, responses=ERRORS)
def asset_status(request: Request, user: User, asset_id: int) -> Item:
    """What the asset must meet to be cleared for final: requirements met and missing, each
    with its guideline, and findings (``provenance.status/1``)."""
    _readable(request, user, asset_id)
    return Item(item=compliance.asset_status(_workspace(request), str(asset_id)))


@router.get("/reference-sets", response_model=Page, responses=ERRORS)
def reference_sets(request: Request, user: User, limit: Limit = 50, offset: Offset = 0) -> Page:
    """The active reference sets with their rights status."""
    require_role(user, QUEUE_ROLES, "reading reference sets")
    found = [found.to_json() for found in refsets.list_sets(_workspace(request))]
    return _slice(found, limit, offset)


@router.get("/reference-sets/{name}", response_model=Item, responses=ERRORS)
def reference_set(
    request: Request, user: User, name: str, limit: Limit = 50, offset: Offset = 0
) -> Item:
    """One reference set with a page of its items (``item_list``)."""
    require_role(user, QUEUE_ROLES, "reading reference sets")
    document = refsets.show(_workspace(request), name).to_json()
    document["item_list"] = document["item_list"][offset : offset + limit]
    document.update(limit=limit, offset=offset)
    return Item(item=document)


class ReviewIn(BaseModel):
    asset_id: int = Field(ge=1)
    decision: Literal[DECISIONS]  # type: ignore[valid-type]
    rationale: str = Field(min_length=1, max_length=10_000)
    previous_decision_id: int | None = Field(
        description="The newest decision on the asset the decider saw; null when none. "
        "If another decision was made since, the answer is 409."
    )
    check_id: int | None = Field(
        default=None,
        description="The check whose evidence the decider was shown; if the asset was "
        "checked again since, the answer is 409. Omitted: the newest check.",
    )


@router.post("/reviews", status_code=201, response_model=Item, responses=ERRORS)
def create_review(request: Request, user: User, body: ReviewIn) -> Item:
    """Record a decision on the asset's newest check (reviewers: flagged assets; legal:
    escalated ones; never on an asset the user registered)."""
    require_role(user, DECIDING_ROLES, "signing off")
    made = reviews.review(
        _workspace(request),
        str(body.asset_id),
        body.decision,
        body.rationale,
        user=user,
        previous=body.previous_decision_id,
        explicit_previous=True,
        seen_check=body.check_id,
    )
    return Item(item=made.to_json())


@router.post("/assets/{asset_id}/approvals", status_code=201, response_model=Item, responses=ERRORS)
def create_approval(
    request: Request,
    user: User,
    asset_id: int,
    approver: Annotated[str, Form(description="The studio contact who approved in writing.")],
    reference: Annotated[str, Form(description="Where: the email, memo or ticket.")],
    document: Annotated[UploadFile, File(description="The signed document (at most 100 MiB).")],
    check_id: Annotated[
        int | None,
        Form(description="The check the approver saw; 409 when a newer one exists."),
    ] = None,
) -> Item:
    """Record the studio's written approval of the asset (legal only), covering what needs
    approval now; the document goes into the content store by sha256."""
    require_role(user, frozenset({"legal"}), "recording a written approval")
    made = uploads.record_approval(
        _workspace(request),
        asset_id,
        user=user,
        approver=approver,
        reference=reference,
        document=document,
        check_id=check_id,
    )
    return Item(item=made)


@router.get("/queue", response_model=Page, responses=ERRORS)
def queue(
    request: Request,
    user: User,
    status: Annotated[Literal[OPEN_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    verdict: Literal["review", "high"] | None = None,
    production: str | None = None,
    tool: str | None = None,
    sort: Annotated[Literal[SORTS], Query()] = "score",  # type: ignore[valid-type]
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """Assets waiting for a decision: flagged (reviewers) and escalated (legal)."""
    require_role(user, QUEUE_ROLES, "reading the queue")
    found = reviews.queue(
        _workspace(request),
        QueueFilter(
            status=status,
            verdict=verdict,
            production=production,
            tool=tool,
            sort=sort,
            limit=limit,
            offset=offset,
        ),
    )
    return _page([entry.to_json() for entry in found.entries], found.total, limit, offset)


def error_answer(status: int, kind: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"ok": False, "error": {"type": kind, "message": message}}, status, headers=headers
    )
