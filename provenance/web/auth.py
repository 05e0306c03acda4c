"""Who is asking: bearer tokens for the API, signed session cookies and CSRF tokens for the
pages, and what each role may read.

A session cookie names a session recorded in the database (``web_sessions``), the user, an
expiry and a binding to their current token (an HMAC of the token's stored hash), all
signed with the workspace's web key. Signing out deletes the session's row, so a copied
cookie stops working at once; issuing a new token or disabling the user deletes all of
theirs. Failed sign-ins are counted per client address: past ``SIGNIN_FAILURES`` within
``SIGNIN_WINDOW`` seconds, that address waits. Forms carry a
CSRF token derived from the session cookie; the sign-in form, made before any session,
uses a random value held in a cookie of its own (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import users
from provenance.atomic import write_atomically
from provenance.db import accounts
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, Unauthenticated

if TYPE_CHECKING:
    from provenance.workspace import Workspace

SESSION_COOKIE = "provenance_session"
SIGNIN_COOKIE = "provenance_signin"
SESSION_SECONDS = 12 * 3600
KEY_FILE = "web-key.json"
KEY_FORMAT = "provenance.web-key/1"

# Roles that read every asset; artists read only the assets they registered.
READ_ALL_ROLES = frozenset({"reviewer", "legal", "admin"})
# Roles that see the review queue and the reference sets.
QUEUE_ROLES = READ_ALL_ROLES
DECIDING_ROLES = frozenset({"reviewer", "legal"})


def load_key(workspace_root: Path) -> bytes:
    """The workspace's web key, made on first use (owner-only file, never in the DB)."""
    path = workspace_root / KEY_FILE
    if path.is_file():
        document = json.loads(path.read_text(encoding="utf-8"))
        return bytes.fromhex(document["key"])
    key = secrets.token_bytes(32)
    text = json.dumps({"format": KEY_FORMAT, "key": key.hex()})
    write_atomically(path, text.encode("utf-8"))
    os.chmod(path, 0o600)
    return key


def bearer_user(workspace: Workspace, authorization: str | None) -> UserInfo:
    """The user of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        raise Unauthenticated("send your token as 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send your token as 'Authorization: Bearer <token>'")
    return users.authenticate(workspace, token.strip())


SIGNIN_FAILURES = 10
SIGNIN_WINDOW = 300


class SignInAttempts:
    """Failed sign-ins per client address in the last ``SIGNIN_WINDOW`` seconds (kept in
    this server's memory: a restart forgets them)."""

    def __init__(self, limit: int = SIGNIN_FAILURES, window: int = SIGNIN_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str) -> list[float]:
        cutoff = time.monotonic() - self.window
        recent = [t for t in self._failures.get(client, []) if t > cutoff]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return recent

    def wait(self, client: str) -> int:
        """Seconds ``client`` must wait before trying again (0: it may try now)."""
        recent = self._recent(client)
        if len(recent) < self.limit:
            return 0
        return max(1, int(recent[0] + self.window - time.monotonic()) + 1)

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, []).append(time.monotonic())


class Sessions:
    """Signed session cookies (each naming a recorded session) and CSRF tokens under one
    key, and the failed sign-ins counted against each address."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.attempts = SignInAttempts()

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def issue(self, workspace: Workspace, name: str, token: str) -> str:
        """A cookie value for ``name``, who has just shown ``token``: a new session."""
        return self._issue(workspace, name, self._token_binding(accounts.token_hash(token)))

    def issue_sso(self, workspace: Workspace, name: str) -> str:
        """A cookie value for ``name``, whom the identity provider has just vouched for: a
        new session, bound to single sign-on rather than to a token (disabling the user or
        issuing them a token still ends it)."""
        return self._issue(workspace, name, self._sso_binding(name))

    def _issue(self, workspace: Workspace, name: str, binding: str) -> str:
        body = {
            "s": users.open_session(workspace, name, SESSION_SECONDS),
            "u": name,
            "b": binding,
            "exp": int(time.time()) + SESSION_SECONDS,
        }
        payload = base64.urlsafe_b64encode(json.dumps(body).encode("utf-8")).decode("ascii")
        return f"{payload}.{self._sign('session|' + payload)}"

    def _token_binding(self, token_sha256: str) -> str:
        return self._sign("bind|" + token_sha256)[:32]

    def _sso_binding(self, name: str) -> str:
        return self._sign("bind-sso|" + name)[:32]

    def _body(self, cookie: str | None) -> dict[str, Any] | None:
        """The signed body of a cookie, or None when it is missing, forged or malformed."""
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not _same(signature, self._sign("session|" + payload)):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
            return {
                "s": str(body["s"]),
                "u": str(body["u"]),
                "b": str(body["b"]),
                "exp": int(body["exp"]),
            }
        except (ValueError, KeyError, TypeError):
            return None

    def user(self, workspace: Workspace, cookie: str | None) -> UserInfo | None:
        """The user a cookie value stands for, or None when it is missing, forged, expired,
        signed out, or made with a token that is no longer theirs."""
        body = self._body(cookie)
        if body is None or body["exp"] < time.time():
            return None
        found = users.session_holder(workspace, body["s"])
        if found is None:
            return None
        user, token_sha256 = found
        if user.name != body["u"]:
            return None
        if _same(body["b"], self._sso_binding(user.name)):
            return user
        if not token_sha256 or not _same(body["b"], self._token_binding(token_sha256)):
            return None
        return user

    def end(self, workspace: Workspace, cookie: str | None) -> None:
        """End the session a cookie names (signing out)."""
        body = self._body(cookie)
        if body is not None:
            users.end_session(workspace, body["s"])

    def csrf(self, cookie: str) -> str:
        return self._sign("csrf|" + cookie)[:40]

    def csrf_ok(self, cookie: str | None, given: str | None) -> bool:
        if not cookie or not given:
            return False
        return _same(self.csrf(cookie), given)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also takes hostile (non-ASCII) input."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def can_read(user: UserInfo, asset: dict[str, Any]) -> bool:
    return user.role in READ_ALL_ROLES or asset["registered_by"] == user.name


def require_read(user: UserInfo, asset: dict[str, Any]) -> None:
    if not can_read(user, asset):
        raise AccessDenied("artists read only the assets they registered")


def require_role(user: UserInfo, roles: frozenset[str], doing: str) -> None:
    if user.role not in roles:
        raise AccessDenied(f"{doing} needs one of the roles {', '.join(sorted(roles))}")
