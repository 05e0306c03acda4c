"""The web application: the REST API (``/api/v1``, see ``provenance.web.api``) and the
reviewer pages (``provenance.web.pages``), over one opened workspace.

``provenance serve`` runs it with uvicorn. Expected failures become a JSON error under
``/api`` and an error page elsewhere; the OpenAPI schema is served at
``/api/v1/openapi.json`` and committed as ``docs/openapi.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from provenance import __version__
from provenance.errors import (
    AccessDenied,
    Conflict,
    DatabaseBusy,
    InvalidInput,
    MediaError,
    NotFound,
    ProvenanceError,
    Unauthenticated,
)
from provenance.web import api, manage, pages, sso, uploads
from provenance.web.auth import Sessions, load_key
from provenance.workspace import Workspace

logger = logging.getLogger(__name__)

# Pages may load scripts, styles and images from this server only: even a string that
# escaped escaping could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


BODY_LIMIT = 1024 * 1024


class BodyLimit:
    """Refuses a request body over its route's limit (``uploads.UPLOAD_BODY_LIMIT`` for a
    signed document's upload, ``BODY_LIMIT`` otherwise) with 413 as soon as it is read: by
    the Content-Length it announces, or by counting. The refusal is raised inside the app, so
    its handlers answer in the usual shape, and nobody, signed in or not, can make the server
    spool an endless upload to disk before the route checks who is asking.

    (FastAPI's own ``max_body_size`` answers a plain-text 413 that bypasses the handlers.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = uploads.upload_rule(scope["path"])
        upload = rule is not None
        limit = rule.limit if rule is not None else BODY_LIMIT
        headers = dict(scope.get("headers") or [])
        announced = headers.get(b"content-length", b"")
        seen = 0
        authorised = not upload

        async def limited() -> Any:
            nonlocal seen, authorised
            if announced.isdigit() and int(announced) > limit:
                raise _too_large(limit)
            if not authorised:
                # Who is asking is settled before the first byte of a document is read.
                assert rule is not None  # only an upload waits for authorisation
                try:
                    await run_in_threadpool(
                        uploads.authorise_upload, scope["app"], scope, headers, rule
                    )
                except ProvenanceError as exc:
                    # As an HTTP error: the body parser would turn any other error into 400.
                    raise _Refused(exc) from None
                authorised = True
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited, send)


class _Refused(StarletteHTTPException):
    """A ProvenanceError raised while a body is read, carried through the body parser
    (which turns any other error into a 400) with its status and kind."""

    def __init__(self, error: ProvenanceError) -> None:
        super().__init__(status_for(error), str(error))
        self.kind = type(error).__name__


def _too_large(limit: int) -> StarletteHTTPException:
    return StarletteHTTPException(413, f"the request body is over {limit:,} bytes")


def status_for(exc: ProvenanceError) -> int:
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidInput | MediaError):
        return 422
    if isinstance(exc, DatabaseBusy):
        return 503
    return 400


def create_app(workspace: Workspace | None) -> FastAPI:
    """The application serving ``workspace`` (which the caller closes afterwards); with
    None, an application only good for its OpenAPI schema."""
    app = FastAPI(
        title="provenance",
        version=__version__,
        description="Records, checks and review decisions of generated assets.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = workspace
    if workspace is not None:
        app.state.sessions = Sessions(load_key(workspace.root))
    app.add_middleware(BodyLimit)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(manage.router)
    app.include_router(sso.router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).with_name("static"))), name="static"
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            # Records, prompts and pictures are not left in a shared machine's browser cache.
            response.headers["Cache-Control"] = "no-store"
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(ProvenanceError)
    async def provenance_error(request: Request, exc: ProvenanceError) -> Response:
        status = status_for(exc)
        if is_api(request):
            return api.error_answer(status, type(exc).__name__, str(exc))
        if status == 401:
            return RedirectResponse("/signin", 303)
        return pages.error_page(request, status, str(exc))

    @app.exception_handler(pages.SignInNeeded)
    async def sign_in_needed(request: Request, exc: pages.SignInNeeded) -> Response:
        return RedirectResponse("/signin", 303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        if is_api(request):
            return api.error_answer(422, "InvalidInput", problems)
        return pages.error_page(request, 422, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if is_api(request):
            kind = exc.kind if isinstance(exc, _Refused) else "HTTPError"
            return api.error_answer(exc.status_code, kind, message)
        return pages.error_page(request, exc.status_code, message)

    return app


def openapi_text() -> str:
    """The OpenAPI schema as committed in docs/openapi.json."""
    return json.dumps(create_app(None).openapi(), indent=2, sort_keys=True) + "\n"
