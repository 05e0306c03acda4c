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
import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance import audit
from provenance.db.session import read_session, write_transaction
from provenance.db.tables import User, WebSession, utcnow
from provenance.errors import AccessDenied, InvalidInput, NotFound, Unauthenticated

if TYPE_CHECKING:
    from provenance.workspace import Workspace

ROLES = ("artist", "reviewer", "legal", "admin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}\Z")
# secrets.token_urlsafe(32): 256 random bits; the prefix makes a leaked token recognisable.
TOKEN_PREFIX = "pvt_"


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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(workspace: Workspace, name: str, role: str, *, actor: str) -> dict[str, Any]:
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
            return user_json(user)
    except IntegrityError:
        # Two admins adding the same name at once (PostgreSQL): the unique name decides.
        raise exists from None


def issue_token(workspace: Workspace, name: str, *, actor: str) -> str:
    """A new token for ``name`` (the previous one stops working); only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(workspace.engine) as session:
        user = _active(session, name)
        user.token_sha256 = token_hash(token)
        user.token_issued_at = utcnow()
        _end_sessions(session, user.id)
        audit.append_event(
            session, actor=actor, action="user.token_issued", subject=f"user:{name}", payload={}
        )
    return token


def disable_user(workspace: Workspace, name: str, *, actor: str) -> None:
    with write_transaction(workspace.engine) as session:
        user = _active(session, name)
        user.disabled_at = utcnow()
        user.token_sha256 = None
        _end_sessions(session, user.id)
        audit.append_event(
            session, actor=actor, action="user.disabled", subject=f"user:{name}", payload={}
        )


def list_users(workspace: Workspace) -> list[dict[str, Any]]:
    with read_session(workspace.engine) as session:
        return [user_json(u) for u in session.scalars(select(User).order_by(User.name))]


def admin_token_exists(workspace: Workspace) -> bool:
    """Whether an active admin holds a token (from then on, only admins manage users)."""
    with read_session(workspace.engine) as session:
        found = session.scalar(
            select(User.id)
            .where(User.role == "admin", User.disabled_at.is_(None), User.token_sha256.is_not(None))
            .limit(1)
        )
        return found is not None


def authenticate(workspace: Workspace, token: str) -> dict[str, Any]:
    """The active user holding ``token``; AccessDenied otherwise (without saying which part
    was wrong)."""
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("the token is not valid")
    with read_session(workspace.engine) as session:
        user = session.scalar(select(User).where(User.token_sha256 == token_hash(token)))
        if user is None or user.disabled_at is not None:
            raise Unauthenticated("the token is not valid")
        return user_json(user)


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


def session_holder(workspace: Workspace, session_id: str) -> tuple[dict[str, Any], str] | None:
    """The active user of a standing web session and the sha256 of their current token,
    or None (no such session, ended, expired, user disabled or without a token)."""
    with read_session(workspace.engine) as session:
        found = session.execute(
            select(User, WebSession.expires_at)
            .join(WebSession, WebSession.user_id == User.id)
            .where(WebSession.id == session_id)
        ).first()
        if found is None:
            return None
        user, expires_at = found
        if expires_at < utcnow() or user.disabled_at is not None or user.token_sha256 is None:
            return None
        return user_json(user), user.token_sha256


def end_session(workspace: Workspace, session_id: str) -> None:
    with write_transaction(workspace.engine) as session:
        session.execute(delete(WebSession).where(WebSession.id == session_id))


def _end_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def local_user(workspace: Workspace, name: str) -> dict[str, Any]:
    """The active user named ``name`` (the local user of a workspace used without a token)."""
    with read_session(workspace.engine) as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None or user.disabled_at is not None:
            raise AccessDenied(
                f"{name!r} is not an active user of this workspace: set PROVENANCE_TOKEN to "
                "your token, or an admin adds you (`provenance users add NAME --role ROLE`)"
            )
        return user_json(user)


def user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "has_token": user.token_sha256 is not None,
        "token_issued_at": _iso(user.token_issued_at),
        "created_at": _iso(user.created_at),
        "disabled_at": _iso(user.disabled_at),
    }


def _active(session: Any, name: str) -> User:
    user: User | None = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    if user.disabled_at is not None:
        raise InvalidInput(f"user {name!r} is disabled")
    return user


def _iso(moment: Any) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None
