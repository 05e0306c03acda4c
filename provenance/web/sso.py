"""Single sign-on with OpenID Connect: the studio's identity provider (Okta, Entra ID,
Keycloak, Google Workspace...) vouches for who someone is; the workspace still decides what
they may do, by the role of the workspace user the provider's claim names.

The authorization code flow with PKCE (Authlib's OAuth 2 client makes the authorization
URL and exchanges the code); the ID token is verified with joserfc against the provider's
published keys: signature, issuer, audience (our client id), expiry, issue time and the
nonce this sign-in sent. State, nonce and code verifier are kept in this server's memory for
ten minutes, tied to the browser by a cookie; a state is used once. Anything that does not
hold (a forged or expired token, another audience, a replayed state, a name that is no
active user here) refuses the sign-in with one line and opens no session.

Settings: ``oidc_issuer`` (empty: single sign-on is off), ``oidc_client_id``,
``oidc_client_secret`` (better given as PROVENANCE_OIDC_CLIENT_SECRET), ``oidc_user_claim``
(the claim naming the workspace user; ``preferred_username`` by default) and
``oidc_public_url`` (this server's address as browsers reach it, for the redirect URI;
default: the address the request came to).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from provenance import users
from provenance.errors import AccessDenied, ProvenanceError, Unauthenticated
from provenance.web.auth import Sessions
from provenance.web.pages import signed_in
from provenance.workspace import Workspace

router = APIRouter(include_in_schema=False)

SSO_COOKIE = "provenance_sso"
CALLBACK = "/signin/sso/callback"
PENDING_SECONDS = 600
PENDING_MAX = 10_000
METADATA_SECONDS = 3600
HTTP_TIMEOUT = 10.0
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


class SignInRefused(Unauthenticated):
    """Single sign-on did not establish who this is (the sign-in page says why)."""


@dataclass(frozen=True)
class Pending:
    """A sign-in sent to the provider and not back yet."""

    nonce: str
    verifier: str
    redirect_uri: str
    started: float


@dataclass
class Provider:
    """One identity provider: its discovery document and keys, fetched when first needed
    (and again after an hour, or when a token names a key not seen yet)."""

    issuer: str
    client_id: str
    client_secret: str
    claim: str
    _metadata: dict[str, Any] | None = None
    _fetched: float = 0.0
    _keys: Any = None
    _pending: dict[str, Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, url: str) -> dict[str, Any]:
        import httpx

        try:
            answer = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInRefused(f"the identity provider did not answer at {url}: {exc}") from None
        if not isinstance(document, dict):
            raise SignInRefused(f"the identity provider's {url} is not a JSON object")
        return document

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._fetched > METADATA_SECONDS:
            found = self._get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if found.get("issuer") != self.issuer:
                raise SignInRefused(
                    f"the provider's discovery document names issuer {found.get('issuer')!r}, "
                    f"not {self.issuer!r}"
                )
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(name), str):
                    raise SignInRefused(f"the provider's discovery document has no {name}")
            self._metadata, self._fetched, self._keys = found, time.monotonic(), None
        return self._metadata

    def keys(self, refresh: bool = False) -> Any:
        from joserfc.jwk import KeySet

        if self._keys is None or refresh:
            try:
                self._keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
            except ProvenanceError:
                raise
            except Exception as exc:
                raise SignInRefused(f"the provider's keys cannot be read: {exc}") from None
        return self._keys

    def _client(self, redirect_uri: str) -> Any:
        from authlib.integrations.httpx_client import OAuth2Client

        return OAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope="openid profile email",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT,
        )

    def start(self, redirect_uri: str) -> tuple[str, str]:
        """The provider's authorization URL for a new sign-in, and its state."""
        from authlib.common.security import generate_token

        verifier = generate_token(64)
        nonce = secrets.token_urlsafe(24)
        with self._client(redirect_uri) as client:
            url, state = client.create_authorization_url(
                self.metadata()["authorization_endpoint"], code_verifier=verifier, nonce=nonce
            )
        with self._lock:
            self._sweep()
            if len(self._pending) >= PENDING_MAX:
                raise SignInRefused("too many sign-ins are waiting; try again in a few minutes")
            self._pending[state] = Pending(nonce, verifier, redirect_uri, time.monotonic())
        return url, state

    def _sweep(self) -> None:
        cutoff = time.monotonic() - PENDING_SECONDS
        for state in [s for s, p in self._pending.items() if p.started < cutoff]:
            del self._pending[state]

    def finish(self, state: str, code: str) -> str:
        """The workspace user name the provider vouches for, once the code is exchanged
        and its ID token verified; the state is used up whatever happens."""
        with self._lock:
            self._sweep()
            pending = self._pending.pop(state, None)
        if pending is None:
            raise SignInRefused("this sign-in is unknown, used already or older than 10 minutes")
        with self._client(pending.redirect_uri) as client:
            try:
                answer = client.fetch_token(
                    self.metadata()["token_endpoint"],
                    code=code,
                    code_verifier=pending.verifier,
                    grant_type="authorization_code",
                )
            except Exception as exc:  # Authlib raises several kinds; each is a refusal
                raise SignInRefused(f"the identity provider refused the code: {exc}") from None
        id_token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(id_token, str):
            raise SignInRefused("the identity provider sent no ID token")
        claims = self.verify(id_token, pending.nonce)
        name = claims.get(self.claim)
        if not isinstance(name, str) or not name:
            raise SignInRefused(f"the ID token has no {self.claim!r} claim naming the user")
        return name

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token whose signature, issuer, audience, times and nonce
        hold; SignInRefused otherwise."""
        from joserfc import jwt
        from joserfc.errors import BadSignatureError, JoseError

        def decode(keys: Any) -> Any:
            return jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))

        try:
            try:
                token = decode(self.keys())
            except (BadSignatureError, ValueError, KeyError):
                token = decode(self.keys(refresh=True))  # the provider may have rotated keys
            registry = jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except BadSignatureError:
            raise SignInRefused("the ID token's signature does not verify") from None
        except (JoseError, ValueError, KeyError) as exc:
            raise SignInRefused(f"the ID token does not hold: {exc}") from None
        claims: dict[str, Any] = dict(token.claims)
        return claims


def provider(workspace: Workspace, request: Request) -> Provider | None:
    """The configured identity provider (made once per server), or None when single
    sign-on is off."""
    issuer = str(workspace.settings["oidc_issuer"])
    if not issuer:
        return None
    found: Provider | None = getattr(request.app.state, "sso", None)
    if found is None:
        found = Provider(
            issuer=issuer,
            client_id=str(workspace.settings["oidc_client_id"]),
            client_secret=str(workspace.settings["oidc_client_secret"]),
            claim=str(workspace.settings["oidc_user_claim"]),
        )
        request.app.state.sso = found
    return found


def _refused(reason: str) -> Response:
    return RedirectResponse("/signin?" + urlencode({"error": "sso", "why": reason}), 303)


@router.get("/signin/sso")
def sso_start(request: Request) -> Response:
    workspace: Workspace = request.app.state.workspace
    found = provider(workspace, request)
    if found is None:
        return _refused("single sign-on is not set up here (the oidc_issuer setting)")
    base = str(workspace.settings["oidc_public_url"]) or str(request.base_url)
    try:
        url, state = found.start(base.rstrip("/") + CALLBACK)
    except SignInRefused as exc:
        return _refused(str(exc))
    response = RedirectResponse(url, 303)
    response.set_cookie(
        SSO_COOKIE, state, max_age=PENDING_SECONDS, httponly=True, samesite="lax", path="/signin"
    )
    return response


@router.get(CALLBACK)
def sso_callback(
    request: Request,
    state: Annotated[str, Query(max_length=512)] = "",
    code: Annotated[str, Query(max_length=4096)] = "",
    error: Annotated[str, Query(max_length=512)] = "",
) -> Response:
    workspace: Workspace = request.app.state.workspace
    sessions: Sessions = request.app.state.sessions
    found = provider(workspace, request)
    if found is None:
        return _refused("single sign-on is not set up here (the oidc_issuer setting)")
    client = request.client.host if request.client else "unknown"
    wait = sessions.attempts.wait(client)
    if wait:
        return _refused(f"too many failed sign-ins from this address; try again in {wait} s")
    try:
        if error:
            raise SignInRefused(f"the identity provider answered: {error}")
        # The browser that started this sign-in is the one finishing it (no login CSRF).
        expected = request.cookies.get(SSO_COOKIE) or ""
        if not state or not secrets.compare_digest(
            expected.encode("utf-8", "replace"), state.encode("utf-8", "replace")
        ):
            raise SignInRefused("this sign-in was not started from this browser")
        name = found.finish(state, code)
        try:
            user = users.local_user(workspace, name)
        except AccessDenied:
            raise SignInRefused(f"{name!r} is not an active user of this workspace") from None
    except SignInRefused as exc:
        sessions.attempts.failed(client)
        return _refused(str(exc))
    response = signed_in(request, user, sessions.issue_sso(workspace, user.name), "lax")
    response.delete_cookie(SSO_COOKIE, path="/signin")
    return response
