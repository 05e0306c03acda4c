"""Users and roles: who may register, review, decide and administer.

Roles (one per user):

- ``artist``: registers assets and reads their status;
- ``reviewer``: signs off flagged assets (never their own);
- ``legal``: decides escalations;
- ``admin``: manages users and reference sets.

A token is issued by ``users token NAME`` and shown once; only its sha256 is stored, so a
lost token is replaced, never recovered. Issuing a new token retires the old one. A
disabled user keeps their row (past decisions still name them) but their token no longer
authenticates. Every change is an audit event.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance.db import accounts, audit
from provenance.db.session import read_session, write_transaction
from provenance.db.tables import User, WebSession, utcnow
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, InvalidInput, NotFound
from provenance.workspace import Workspace

ROLES = ("artist", "reviewer", "legal", "admin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}\Z")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"user name {name!r} must be 1-100 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def add_user(
    workspace: Workspace,
    name: str,
    role: str,
    *,
    by: str | None = None,
    signed_in: UserInfo | None = None,
) -> UserInfo:
    actor = _admin(workspace, by, signed_in)
    check_name(name)
    check_role(role)
    exists = InvalidInput(f"user {name!r} exists already")
    try:
        with write_transaction(workspace.engine) as session:
            if session.scalar(select(User).where(User.name == name)) is not None:
                raise exists
            user = User(name=name, role=role)
            session.add(user)
            session.flush()
            audit.append_event(
                session,
                actor=actor,
                action="user.added",
                subject=f"user:{name}",
                payload={"role": role},
            )
            return accounts.user_info(user)
    except IntegrityError:
        # Two admins adding the same name at once (PostgreSQL): the unique name decides.
        raise exists from None


def issue_token(
    workspace: Workspace, name: str, *, by: str | None = None, signed_in: UserInfo | None = None
) -> str:
    """A new token for ``name`` (the previous one stops working); only its hash is kept."""
    actor = _admin(workspace, by, signed_in)
    token = accounts.TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(workspace.engine) as session:
        user = _active(session, name)
        user.token_sha256 = accounts.token_hash(token)
        user.token_issued_at = utcnow()
        _end_sessions(session, user.id)
        audit.append_event(
            session, actor=actor, action="user.token_issued", subject=f"user:{name}", payload={}
        )
    return token


def disable_user(
    workspace: Workspace, name: str, *, by: str | None = None, signed_in: UserInfo | None = None
) -> None:
    actor = _admin(workspace, by, signed_in)
    with write_transaction(workspace.engine) as session:
        user = _active(session, name)
        user.disabled_at = utcnow()
        user.token_sha256 = None
        _end_sessions(session, user.id)
        audit.append_event(
            session, actor=actor, action="user.disabled", subject=f"user:{name}", payload={}
        )


def list_users(workspace: Workspace) -> list[UserInfo]:
    with read_session(workspace.engine) as session:
        return [accounts.user_info(u) for u in session.scalars(select(User).order_by(User.name))]


def authenticate(workspace: Workspace, token: str) -> UserInfo:
    """The active user holding ``token``; Unauthenticated otherwise."""
    return workspace.authenticate(token)


def local_user(workspace: Workspace, name: str) -> UserInfo:
    """The active user named ``name`` (the local user of a workspace used without a token)."""
    return workspace.local_user(name)


def current_user(workspace: Workspace) -> UserInfo:
    """The user acting: the token's (PROVENANCE_TOKEN) or, without one, the local user
    (the ``user`` setting or the login name), who must be an active user here."""
    return workspace.acting_user()


def _admin(workspace: Workspace, by: str | None, signed_in: UserInfo | None = None) -> str:
    """The actor of a user-management write. Once an active admin holds a token, only
    an admin's token may manage users; before that (setting up), the local user may,
    so that the first admin can be added and given a token. ``signed_in``: an admin the
    web pages signed in."""
    if signed_in is not None:
        return workspace.role_actor(None, ("admin",), "managing users", signed_in)
    if workspace.token is not None:
        return workspace.actor(by, role="admin", doing="managing users")
    with read_session(workspace.engine) as session:
        admin_holds_token = accounts.admin_token_exists(session)
    if admin_holds_token:
        raise AccessDenied(
            f"managing users needs an admin's token: set {accounts.TOKEN_ENV} "
            "(`provenance users token NAME` issues one)"
        )
    # Setting up, the first users are added by whoever holds the workspace's files.
    return workspace.actor(by, named=False)


def open_session(workspace: Workspace, name: str, seconds: int) -> str:
    """Record a signed-in web session of ``name`` lasting ``seconds``; return its id."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    with write_transaction(workspace.engine) as session:
        user = _active(session, name)
        # Sessions that ran out are swept as new ones start.
        session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.add(
            WebSession(
                id=session_id,
                user_id=user.id,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=seconds),
            )
        )
    return session_id


def session_holder(workspace: Workspace, session_id: str) -> tuple[UserInfo, str] | None:
    """The active user of a standing web session and the sha256 of their current token
    (empty when they hold none: a single sign-on user), or None (no such session, ended,
    expired, user disabled)."""
    with read_session(workspace.engine) as session:
        found = session.execute(
            select(User, WebSession.expires_at)
            .join(WebSession, WebSession.user_id == User.id)
            .where(WebSession.id == session_id)
        ).first()
        if found is None:
            return None
        user, expires_at = found
        if expires_at < utcnow() or user.disabled_at is not None:
            return None
        return accounts.user_info(user), user.token_sha256 or ""


def end_session(workspace: Workspace, session_id: str) -> None:
    with write_transaction(workspace.engine) as session:
        session.execute(delete(WebSession).where(WebSession.id == session_id))


def _end_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def _active(session: Any, name: str) -> User:
    user: User | None = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    if user.disabled_at is not None:
        raise InvalidInput(f"user {name!r} is disabled")
    return user
