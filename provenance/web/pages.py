"""The reviewer pages: sign-in, the queue, an asset side by side with its matches, and the
sign-off form. Server-rendered (Jinja2, autoescaped); the only script is a small file of
keyboard shortcuts. Every form carries a CSRF token; images come from the content store by
sha256 only."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from provenance import assets, checking, compliance, reviews, triage, users
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, NotFound, ProvenanceError
from provenance.media import REGION_BOXES
from provenance.review_rules import DECISIONS, OPEN_STATUSES, SORTS, ReviewState, outcome_for
from provenance.reviews import QueueFilter
from provenance.scoring import Thresholds, nearest_words, score_words, strongest_items
from provenance.web import uploads
from provenance.web.auth import (
    QUEUE_ROLES,
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    Sessions,
    require_read,
)
from provenance.workspace import Workspace

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
# A reference's file name (its full source path is in the tooltip and the API).
templates.env.filters["basename"] = lambda path: str(path).replace("\\", "/").rsplit("/", 1)[-1]
# One wording for each measure, as on the command line and in the evidence packs.
templates.env.filters["nearest"] = nearest_words
templates.env.globals["score_words"] = score_words

THUMBNAIL_SIZES = (160, 640, COMPARE_SIZE := 4096)
# Each role's queue by default: what that role can decide (admins see both).
DEFAULT_STATUS = {"reviewer": "flagged", "legal": "escalated"}
ANY_STATUS = "any"
# Queue filters a page link or a redirect may carry (nothing else is passed on).
QUEUE_PARAMS = ("verdict", "status", "production", "tool", "sort", "page")
# Rows per queue page (the thumbnails load lazily; a long queue is paged, not truncated).
QUEUE_PAGE = 100
# Assets listed on the assets page: the newest (the API pages through all of them).
LIST_PAGE = 200
# References shown beside the asset: the strongest distinct items of the newest check.
SIDE_BY_SIDE = 6


class SignInNeeded(Exception):
    """The page needs a signed-in user; the app answers with a redirect to /signin."""


def _workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def page_user(request: Request) -> UserInfo:
    user = _sessions(request).user(_workspace(request), request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise SignInNeeded
    return user


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    csrf = _sessions(request).csrf(cookie) if cookie else ""
    return templates.TemplateResponse(request, name, {"csrf": csrf, **context}, status_code=status)


def _queue_query(values: dict[str, Any]) -> str:
    kept = {k: values[k] for k in QUEUE_PARAMS if values.get(k)}
    return urlencode(kept)


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/queue", 303)


@router.get("/signin")
def signin_form(request: Request, error: str = "", why: str = "") -> Response:
    nonce = secrets.token_urlsafe(24)
    sso = bool(_workspace(request).settings["oidc_issuer"])
    context = {"nonce": nonce, "error": error, "why": why[:500], "user": None, "csrf": "",
               "sso": sso}  # fmt: skip
    response = templates.TemplateResponse(request, "signin.html", context)
    response.set_cookie(
        SIGNIN_COOKIE, nonce, max_age=600, httponly=True, samesite="strict", path="/signin"
    )
    return response


@router.post("/signin")
def signin(
    request: Request, token: Annotated[str, Form()] = "", nonce: Annotated[str, Form()] = ""
) -> Response:
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not secrets.compare_digest(
        expected.encode("utf-8", "replace"), nonce.encode("utf-8", "replace")
    ):
        return RedirectResponse("/signin?error=expired", 303)
    client = request.client.host if request.client else "unknown"
    wait = _sessions(request).attempts.wait(client)
    if wait:
        return pages_error_too_many(request, wait)
    try:
        user = users.authenticate(_workspace(request), token.strip())
    except AccessDenied:
        _sessions(request).attempts.failed(client)
        return RedirectResponse("/signin?error=token", 303)
    cookie = _sessions(request).issue(_workspace(request), user.name, token.strip())
    response = signed_in(request, user, cookie, "strict")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


def signed_in(
    request: Request, user: UserInfo, cookie: str, samesite: Literal["strict", "lax"]
) -> Response:
    """Where a user lands once signed in (the queue, or an artist's own assets), carrying
    their new session's cookie. Single sign-on's is ``lax``: it is set at the end of a
    redirect chain that began at the identity provider, another site."""
    response = RedirectResponse("/queue" if user.role in QUEUE_ROLES else "/mine", 303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite=samesite,
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout")
def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    _check_csrf(request, csrf)
    # The session ends on the server: a copy of the cookie no longer signs anyone in.
    _sessions(request).end(_workspace(request), request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/signin", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def pages_error_too_many(request: Request, wait: int) -> Response:
    return error_page(
        request, 429, f"too many failed sign-ins from this address; try again in {wait} s"
    )


def _check_csrf(request: Request, given: str) -> None:
    if not _sessions(request).csrf_ok(request.cookies.get(SESSION_COOKIE), given):
        raise AccessDenied("the form has expired or did not come from this site; reload it")


@router.get("/queue")
def queue_page(
    request: Request,
    verdict: str = "",
    status: str = "",
    production: str = "",
    tool: str = "",
    sort: str = "score",
    page: int = 1,
    done: int | None = None,
) -> Response:
    user = page_user(request)
    if user.role not in QUEUE_ROLES:
        return RedirectResponse("/mine", 303)
    workspace = _workspace(request)
    status = status or DEFAULT_STATUS.get(user.role, ANY_STATUS)
    where = replace(
        _queue_filter(
            {
                "status": status,
                "verdict": verdict,
                "production": production,
                "tool": tool,
                "sort": sort,
            }
        ),
        limit=QUEUE_PAGE,
    )
    page = max(page, 1)
    found = reviews.queue(workspace, replace(where, offset=(page - 1) * QUEUE_PAGE))
    pages = max(1, -(-found.total // QUEUE_PAGE))
    if page > pages:
        # Decisions shortened the queue since the link was made: show its last page.
        page = pages
        found = reviews.queue(workspace, replace(where, offset=(page - 1) * QUEUE_PAGE))
    filters = {
        "verdict": verdict,
        "status": status,
        "production": production,
        "tool": tool,
        "sort": where.sort,
    }
    first = found.offset + 1 if found.entries else 0
    claimed = triage.claims(workspace, [e.asset_id for e in found.entries])
    return _render(
        request,
        "queue.html",
        {
            "user": user,
            "entries": found.entries,
            "total": found.total,
            "pending_checks": found.pending_checks,
            "filters": filters,
            "back": _queue_query({**filters, "page": page if page > 1 else None}),
            "paging": {
                "page": page,
                "pages": pages,
                "first": first,
                "last": found.offset + len(found.entries),
                "previous": _queue_query({**filters, "page": page - 1 if page > 2 else None}),
                "next": _queue_query({**filters, "page": page + 1}),
            },
            "statuses": OPEN_STATUSES,
            "sorts": SORTS,
            "done": done,
            "claims": claimed,
            "default_status": DEFAULT_STATUS.get(user.role, ANY_STATUS),
        },
    )


def _queue_filter(values: dict[str, str]) -> QueueFilter:
    """The queue a page's filters name (``status`` ``any``: both open statuses)."""
    status = values.get("status") or ANY_STATUS
    sort = values.get("sort") or "score"
    return QueueFilter(
        status=None if status == ANY_STATUS else status,
        verdict=values.get("verdict") or None,
        production=values.get("production") or None,
        tool=values.get("tool") or None,
        sort=sort if sort in SORTS else "score",
    )


def _neighbours(
    workspace: Workspace, user: UserInfo, back: dict[str, str], asset_id: int
) -> dict[str, int | None]:
    """The assets before and after this one in the queue its page was opened from (its
    filters kept); the first of that queue when this asset is not, or no longer, in it."""
    ids: list[int] = []
    if user.role in QUEUE_ROLES:
        values = {"status": DEFAULT_STATUS.get(user.role, ANY_STATUS), **back}
        # A hand-edited filter the queue refuses: no neighbours rather than an error.
        with contextlib.suppress(ProvenanceError):
            ids = reviews.queue_ids(workspace, _queue_filter(values))
    if asset_id not in ids:
        return {"previous": None, "next": ids[0] if ids else None, "position": None,
                "total": len(ids)}  # fmt: skip
    at = ids.index(asset_id)
    return {
        "previous": ids[at - 1] if at > 0 else None,
        "next": ids[at + 1] if at + 1 < len(ids) else None,
        "position": at + 1,
        "total": len(ids),
    }


@router.get("/mine")
def mine_page(request: Request) -> Response:
    user = page_user(request)
    workspace = _workspace(request)
    mine = None if user.role in QUEUE_ROLES else user.name
    total = assets.count_assets(workspace, registered_by=mine)
    newest = assets.list_assets(workspace, registered_by=mine, offset=max(0, total - LIST_PAGE))
    context = {"user": user, "assets": newest[::-1], "total": total}
    return _render(request, "mine.html", context)


@router.get("/assets/{asset_id}")
def asset_page(
    request: Request,
    asset_id: int,
    back: str = "",
    recorded: int | None = None,
    done: int | None = None,
) -> Response:
    user = page_user(request)
    workspace = _workspace(request)
    asset = assets.show(workspace, str(asset_id))
    require_read(user, asset)
    checks = checking.asset_checks(workspace, str(asset_id))
    latest = checks[-1] if checks else None
    clearance = compliance.asset_status(workspace, str(asset_id))["policy"]
    query = _parse_query(back)
    return _render(
        request,
        "asset.html",
        {
            "notes": triage.notes(workspace, str(asset_id)),
            "compare_size": COMPARE_SIZE,
            "claim": triage.claims(workspace, [asset_id]).get(asset_id),
            "neighbours": _neighbours(workspace, user, query, asset_id),
            "done": done,
            "note_max": triage.NOTE_MAX,
            "user": user,
            "asset": asset,
            "check": latest,
            # Reference material is for the roles that review, not the artist's own view.
            "pairs": _side_by_side(latest) if user.role in QUEUE_ROLES else [],
            "form": _form(user, asset),
            "back": _queue_query(query),
            "history": assets.asset_history(workspace, str(asset_id)),
            "clearance": clearance,
            # Legal records the studio's written approval here when one is missing.
            "approval_form": user.role == "legal"
            and any(key.startswith("approval:") for key in clearance["missing"]),
            "recorded": recorded,
        },
    )


def _parse_query(text: str) -> dict[str, str]:
    return dict(parse_qsl(text))


def _side_by_side(check: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The strongest distinct reference items of a check, each with its score per match
    against the detector's lines, and the region of the asset to outline (that of its
    strongest match)."""
    if check is None:
        return []
    thresholds = check["thresholds"]
    fired = {(r["reference_set"], r["item_id"], r["detector"]) for r in check["reasons"]}
    verified = {(v["reference_set"], v["item_id"]): v for v in check.get("verifications", [])}
    pairs = []
    for item in strongest_items(check, SIDE_BY_SIDE):
        best = item["best"]
        scores = []
        for match in item["matches"]:
            band = thresholds.get(match["detector"], {})
            scores.append(
                {
                    **match,
                    "review": band.get("review"),
                    "high": band.get("high"),
                    "higher_is_closer": band.get("higher_is_closer", True),
                    "verdict": _band(match["score"], band),
                    "fired": (match["reference_set"], match["item_id"], match["detector"]) in fired,
                }
            )
        verification = verified.get((best["reference_set"], best["item_id"]))
        outlines = verification if verification is not None and verification["verified"] else None
        box = REGION_BOXES.get(best["region"])
        shown = _frames_shown(check, best, outlines)
        pairs.append(
            {
                **shown,
                "reference": item["matches"][0],
                "scores": scores,
                "strength": item["strength"],
                # A verified match outlines the matched polygon on both pictures; otherwise
                # the crop of the asset where an embedding matched, if not the whole.
                "box": None if outlines or best["region"] == "whole" else box,
                "region": best["region"],
                "verification": verification,
                "asset_outline": _points(outlines["asset_polygon"]) if outlines else None,
                "reference_outline": _points(outlines["reference_polygon"]) if outlines else None,
            }
        )
    return pairs


def _frames_shown(
    check: dict[str, Any], best: dict[str, Any], verified: dict[str, Any] | None
) -> dict[str, Any]:
    """For a movie or frame sequence: the frame shown beside the reference (the verified
    one, else that of the strongest match), the matching frames to step through (the
    sampled frames inside the item's ranges) and the ranges in words. Empty for a still."""
    frames = check.get("frames")
    if not frames:
        return {"frame": None}
    shown = verified["frame"] if verified is not None else best.get("frame")
    ranges = [
        r
        for r in frames["ranges"]
        if (r["reference_set"], r["item_id"]) == (best["reference_set"], best["item_id"])
    ]
    stepping = [f for f in frames["sampled"] if any(r["first"] <= f <= r["last"] for r in ranges)]
    if shown is not None and shown not in stepping:
        stepping = sorted({*stepping, shown})
    return {
        "frame": shown,
        "frames": stepping,
        "outlined_frame": verified["frame"] if verified is not None else None,
        "ranges": [
            f"frame {r['first']}" if r["first"] == r["last"] else f"frames {r['first']}-{r['last']}"
            for r in ranges
        ],
    }


def _points(polygon: list[list[float]]) -> str:
    """A polygon (fractions of the picture) as SVG points in a 0-100 view box."""
    return " ".join(f"{x * 100:.2f},{y * 100:.2f}" for x, y in polygon)


def _band(score: float, band: dict[str, Any]) -> str:
    if not band:
        return "clear"
    return Thresholds(**band).verdict(score).value


def _form(user: UserInfo, asset: dict[str, Any]) -> dict[str, Any]:
    """Whether this user may decide on this asset now, which decisions, or why not."""
    review = asset["review"]
    state = ReviewState(
        review["status"], review["reopened"], None, None, review["latest_decision_id"], 0
    )
    if asset["registered_by"] == user.name:
        return {"allowed": False, "why": "You registered this asset: someone else signs it off."}
    try:
        outcome_for(user.role, "approve", state, asset["id"])
    except ProvenanceError as exc:
        return {"allowed": False, "why": str(exc)}
    choices = DECISIONS if user.role == "reviewer" else ("approve", "reject")
    return {
        "allowed": True,
        "choices": choices,
        "previous": review["latest_decision_id"],
        "supersedes": review["status"] not in OPEN_STATUSES,
    }


@router.post("/assets/{asset_id}/review")
def review_submit(
    request: Request,
    asset_id: int,
    decision: Annotated[str, Form()] = "",
    rationale: Annotated[str, Form()] = "",
    previous: Annotated[str, Form()] = "",
    check: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    _check_csrf(request, csrf)
    filters = _parse_query(back)
    query = _queue_query(filters)
    after = _neighbours(_workspace(request), user, filters, asset_id)["next"]
    made = reviews.review(
        _workspace(request),
        str(asset_id),
        decision,
        rationale,
        user=user,
        previous=int(previous) if previous.isdigit() else None,
        explicit_previous=True,
        seen_check=int(check) if check.isdigit() else None,
    )
    if after is not None:
        # On to the next asset of the same queue, its filters kept.
        target = f"/assets/{after}?{urlencode({'back': query, 'done': made.review_id})}"
    else:
        target = (
            f"/queue?{query}&done={made.review_id}" if query else f"/queue?done={made.review_id}"
        )
    return RedirectResponse(target, 303)


@router.post("/assets/{asset_id}/notes")
def note_submit(
    request: Request,
    asset_id: int,
    text: Annotated[str, Form()] = "",
    reply_to: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """A note on the asset, or a reply to one of its notes; in the audit chain."""
    user = page_user(request)
    _check_csrf(request, csrf)
    require_read(user, assets.show(_workspace(request), str(asset_id)))
    made = triage.add_note(
        _workspace(request),
        str(asset_id),
        text,
        user=user,
        reply_to=int(reply_to) if reply_to.isdigit() else None,
    )
    return RedirectResponse(
        f"/assets/{asset_id}?{urlencode({'back': back})}#note-{made.note_id}", 303
    )


@router.post("/assets/{asset_id}/claim")
def claim_submit(
    request: Request,
    asset_id: int,
    action: Annotated[str, Form()] = "claim",
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Claim the asset ("I am on this one"), or release one's claim."""
    user = page_user(request)
    _check_csrf(request, csrf)
    if action == "release":
        triage.release(_workspace(request), asset_id, user=user)
    else:
        triage.claim(_workspace(request), asset_id, user=user)
    return RedirectResponse(f"/assets/{asset_id}?{urlencode({'back': back})}", 303)


@router.post("/assets/{asset_id}/approval")
def approval_submit(
    request: Request,
    asset_id: int,
    document: UploadFile,
    approver: Annotated[str, Form()] = "",
    reference: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
    check_id: Annotated[int | None, Form()] = None,
) -> Response:
    """Legal records a written approval with its signed document (stored by sha256),
    bound to the check the page showed."""
    user = page_user(request)
    _check_csrf(request, csrf)
    made = uploads.record_approval(
        _workspace(request),
        asset_id,
        user=user,
        approver=approver,
        reference=reference,
        document=document,
        check_id=check_id,
    )
    query = urlencode({"back": back, "recorded": made["approval_id"]})
    return RedirectResponse(f"/assets/{asset_id}?{query}", 303)


@router.get("/thumbs/{size}/{sha256}.jpg")
def thumbnail(request: Request, size: int, sha256: str) -> Response:
    user = page_user(request)
    if size not in THUMBNAIL_SIZES:
        raise NotFound("no such thumbnail size")
    artist = user.name if user.role == "artist" else None
    path = assets.thumbnail(_workspace(request), sha256, size, artist=artist)
    return FileResponse(path, media_type="image/jpeg")


@router.get("/assets/{asset_id}/aligned/{reference_set}/{item_id}.jpg")
def aligned_reference(
    request: Request, asset_id: int, reference_set: str, item_id: int
) -> Response:
    """Reference item ``item_id`` of the asset's newest check, redrawn in the asset's frame
    by its verified transform (else stretched to the asset's size): the picture the wipe,
    flicker and difference views lay over the asset. For the roles that review only."""
    user = page_user(request)
    if user.role not in QUEUE_ROLES:
        raise NotFound("no such picture")
    workspace = _workspace(request)
    asset = assets.show(workspace, str(asset_id))
    checks = checking.asset_checks(workspace, str(asset_id))
    latest = checks[-1] if checks else None
    wanted = (reference_set, item_id)
    match = next(
        (
            m
            for m in (latest["matches"] if latest else [])
            if (m["reference_set"], m["item_id"]) == wanted
        ),
        None,
    )
    if latest is None or match is None:
        raise NotFound(f"the newest check of asset {asset_id} matched no {reference_set}#{item_id}")
    verified = next(
        (
            v
            for v in latest.get("verifications", [])
            if (v["reference_set"], v["item_id"]) == wanted and v["verified"]
        ),
        None,
    )
    transform = tuple(verified["transform"]) if verified and verified.get("transform") else None
    path = assets.aligned_reference(
        workspace, asset["sha256"], match["sha256"], transform, COMPARE_SIZE
    )
    return FileResponse(path, media_type="image/jpeg")


@router.get("/thumbs/{size}/{sha256}/frame/{frame}.jpg")
def frame_thumbnail(request: Request, size: int, sha256: str, frame: int) -> Response:
    """One frame of a movie or frame sequence, for stepping through its matching frames."""
    user = page_user(request)
    if size not in THUMBNAIL_SIZES:
        raise NotFound("no such thumbnail size")
    artist = user.name if user.role == "artist" else None
    path = assets.frame_thumbnail(_workspace(request), sha256, frame, size, artist=artist)
    return FileResponse(path, media_type="image/jpeg")


def error_page(request: Request, status: int, message: str) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    user = _sessions(request).user(_workspace(request), cookie) if cookie else None
    return _render(
        request, "error.html", {"user": user, "status": status, "message": message}, status
    )
