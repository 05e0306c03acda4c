"""A small OpenID Connect identity provider the single sign-on tests start on a real port:
discovery, an authorization page where a person types who they are, the token endpoint
(client secret and PKCE checked) and its published keys. ID tokens are RS256, signed with
joserfc. ``state.mode`` makes it misbehave the ways a forged or stolen token would:
``forge`` signs with a key it does not publish, ``audience`` names another client,
``nonce`` answers with another nonce, ``expired`` sends a token past its expiry."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.serving import free_port, serving

CLIENT_ID = "provenance-tests"
CLIENT_SECRET = "s3cret-for-tests"


class IdentityProvider:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig"})
        self.other = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "use": "sig"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.mode = "honest"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize, methods=["GET", "POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in request.query_params.items()
            )
            return HTMLResponse(
                "<!doctype html><title>Studio sign-in</title><form method=post>"
                f'{fields}<label>User <input name="username" id="idp-user"></label>'
                '<button id="idp-submit">Sign in</button></form>'
            )
        form = await request.form()
        values = {k: str(v) for k, v in form.items()}
        if values.get("client_id") != CLIENT_ID or values.get("response_type") != "code":
            return Response("unknown client", 400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "username": values["username"],
            "redirect_uri": values["redirect_uri"],
            "nonce": values.get("nonce"),
            "challenge": values.get("code_challenge"),
        }
        target = values["redirect_uri"] + "?" + urlencode({"code": code, "state": values["state"]})
        return RedirectResponse(target, 302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if digest.rstrip(b"=").decode() != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"user-{grant['username']}",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "preferred_username": grant["username"],
        }
        key = self.key
        if self.mode == "forge":
            key = self.other
        elif self.mode == "audience":
            claims["aud"] = "another-client"
        elif self.mode == "nonce":
            claims["nonce"] = "not-the-one-sent"
        elif self.mode == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 300, "id_token": id_token})  # fmt: skip


@contextmanager
def running() -> Iterator[IdentityProvider]:
    """An identity provider serving on a free local port until the block ends."""
    port = free_port()
    provider = IdentityProvider(f"http://127.0.0.1:{port}")
    with serving(provider.app(), port):
        yield provider
