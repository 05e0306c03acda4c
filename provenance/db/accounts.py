"""Who a token or a name belongs to: the lookups the workspace's actor check and the users
use case share. A user is handed on as a ``UserInfo``."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db.tables import User
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, Unauthenticated

# secrets.token_urlsafe(32): 256 random bits; the prefix makes a leaked token recognisable.
TOKEN_PREFIX = "pvt_"
TOKEN_ENV = "PROVENANCE_TOKEN"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def by_token(session: Session, token: str) -> UserInfo:
    """The active user holding ``token``; Unauthenticated otherwise (without saying which
    part was wrong)."""
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("the token is not valid")
    user = session.scalar(select(User).where(User.token_sha256 == token_hash(token)))
    if user is None or user.disabled_at is not None:
        raise Unauthenticated("the token is not valid")
    return user_info(user)


def active_user(session: Session, name: str) -> UserInfo:
    """The active user named ``name`` (the local user of a workspace used without a token)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled_at is not None:
        raise AccessDenied(
            f"{name!r} is not an active user of this workspace: set {TOKEN_ENV} to "
            "your token, or an admin adds you (`provenance users add NAME --role ROLE`)"
        )
    return user_info(user)


def any_active_user(session: Session) -> bool:
    """Whether the workspace has an active user (from then on, writes name who acts)."""
    return session.scalar(select(User.id).where(User.disabled_at.is_(None)).limit(1)) is not None


def admin_token_exists(session: Session) -> bool:
    """Whether an active admin holds a token (from then on, only admins manage users)."""
    found = session.scalar(
        select(User.id)
        .where(User.role == "admin", User.disabled_at.is_(None), User.token_sha256.is_not(None))
        .limit(1)
    )
    return found is not None


def user_info(user: User) -> UserInfo:
    return UserInfo(
        name=user.name,
        role=user.role,
        has_token=user.token_sha256 is not None,
        token_issued_at=_iso(user.token_issued_at),
        created_at=_iso(user.created_at),
        disabled_at=_iso(user.disabled_at),
    )


def _iso(moment: Any) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None
