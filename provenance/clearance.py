"""The records the policy rests on, written by admin and legal and declared by artists.

- tools and their data handling: each vetting is a new ``tool_profiles`` row; the newest
  holds; a tool never vetted has unknown handling;
- consents (talent, scope, production, expiry, signed document in the content store);
- written approvals of one asset, each listing the triggers it covers;
- withdrawals of a consent or an approval (the record itself stays as it was);
- declarations about an asset after registration: personal data, expiry date, talent.

All are append-only and audited. What they add up to for an asset is
``provenance.compliance``'s to say.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance import policy
from provenance.compliance import Lookups, gather, production_id, today_utc, tool_json
from provenance.db import audit, repository
from provenance.db.session import read_session, write_transaction
from provenance.db.tables import (
    Approval,
    Check,
    Consent,
    Declaration,
    Revision,
    Tool,
    ToolProfile,
    Withdrawal,
    utcnow,
)
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, Conflict, InvalidInput, NotFound
from provenance.export.documents import (
    approval_json,
    consent_json,
    revision_json,
    withdrawal_record,
)
from provenance.workspace import Workspace

TOOL_SCHEMA = "provenance.tool/1"
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024
WITHDRAWABLE = ("consent", "approval")


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def check_handling(value: str, what: str) -> str:
    if value not in policy.HANDLING:
        raise InvalidInput(f"{what} {value!r} is not one of {', '.join(policy.HANDLING)}")
    return value


def _text(value: str | None, what: str, *, required: bool = False, limit: int = 2000) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character")
    if len(value) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return value


class Document(NamedTuple):
    """A signed document: its bytes (any format; kept as they are) and its file name."""

    data: bytes
    name: str


def check_document_size(size: int, name: str) -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{name}: document is {size:,} bytes, over 100 MiB")
    if size == 0:
        raise InvalidInput(f"{name}: document is empty")


def read_document(source: Path | Document) -> Document:
    """The document at ``source`` (a file), or ``source`` itself once its size is checked
    (one uploaded through the web layer)."""
    if isinstance(source, Document):
        check_document_size(len(source.data), source.name)
        return source
    try:
        size = source.stat().st_size
        if not source.is_file():
            raise InvalidInput(f"{source}: not a file")
        check_document_size(size, source.name)
        return Document(source.read_bytes(), source.name)
    except FileNotFoundError:
        raise InvalidInput(f"{source}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read it ({exc.strerror})") from None


# -- tools ----------------------------------------------------------------------------------


def _vet_tool(
    workspace: Workspace,
    name: str,
    *,
    vendor: str | None,
    version: str | None,
    stores_inputs: str,
    trains_on_inputs: str,
    enterprise_secured: str,
    terms_url: str | None,
    notes: str | None,
    actor: str,
) -> dict[str, Any]:
    """Record a vetting of ``name`` (created when unknown); the newest vetting holds."""
    tool_name = _text(name, "tool name", required=True, limit=200)
    assert tool_name is not None
    values = {
        "vendor": _text(vendor, "--vendor"),
        "version": _text(version, "--version"),
        "stores_inputs": check_handling(stores_inputs, "--stores-inputs"),
        "trains_on_inputs": check_handling(trains_on_inputs, "--trains-on-inputs"),
        "enterprise_secured": check_handling(enterprise_secured, "--enterprise-secured"),
        "terms_url": _text(terms_url, "--terms-url"),
        "notes": _text(notes, "--notes", limit=10_000),
    }
    with write_transaction(workspace.engine) as session:
        tool, _ = repository.get_or_create_tool(session, tool_name)
        profile = ToolProfile(tool_id=tool.id, recorded_by=actor, recorded_at=utcnow(), **values)
        session.add(profile)
        session.flush()
        audit.append_event(
            session,
            actor=actor,
            action="tool.vetted",
            subject=f"tool:{tool.name}",
            payload={"profile_id": profile.id, **values},
        )
        return tool_json(session, tool)


def list_tools(workspace: Workspace) -> list[dict[str, Any]]:
    with read_session(workspace.engine) as session:
        tools = session.scalars(select(Tool).order_by(func.lower(Tool.name))).all()
        return [tool_json(session, t) for t in tools]


def _list_consents(
    workspace: Workspace, *, talent: str | None, production: str | None, today: dt.date
) -> list[dict[str, Any]]:
    """Every consent on record, oldest first, each with its state on ``today``: ``valid``,
    ``expired`` (past its last day) or ``withdrawn``. ``talent`` matches case-insensitively;
    ``production`` keeps the consents for that production and those for any production."""
    with read_session(workspace.engine) as session:
        lookups = Lookups(session)
        withdrawn = lookups.withdrawn("consent")
        if production is not None:
            production_id(session, production)  # an unknown name is an error, not "none"
        found = []
        for row in lookups.consents():
            if talent is not None and row.talent.casefold() != talent.strip().casefold():
                continue
            elsewhere = row.production is not None and row.production.name != production
            if production is not None and elsewhere:
                continue
            document = consent_json(row, withdrawn=withdrawn.get(row.id))
            state = (
                "withdrawn"
                if document["withdrawn"]
                else "expired"
                if row.expires < today
                else "valid"
            )
            found.append({**document, "state": state, "days_left": (row.expires - today).days})
        return found


def show_tool(workspace: Workspace, name: str) -> dict[str, Any]:
    with read_session(workspace.engine) as session:
        tool = repository.find_tool(session, name)
        if tool is None:
            raise NotFound(f"no tool named {name!r}")
        document = tool_json(session, tool)
        profiles = session.scalars(
            select(ToolProfile).where(ToolProfile.tool_id == tool.id).order_by(ToolProfile.id)
        ).all()
        document["history"] = [
            {
                "stores_inputs": p.stores_inputs,
                "trains_on_inputs": p.trains_on_inputs,
                "enterprise_secured": p.enterprise_secured,
                "vendor": p.vendor,
                "version": p.version,
                "recorded_by": p.recorded_by,
                "recorded_at": p.recorded_at.isoformat(),
            }
            for p in profiles
        ]
        return document


# -- consents, approvals, withdrawals, declarations ----------------------------------------


def _add_consent(
    workspace: Workspace,
    *,
    talent: str,
    scope: str,
    production: str | None,
    document: Path | Document,
    expires: str,
    actor: str,
    new_production: bool = False,
) -> dict[str, Any]:
    """Record a consent. A consent for a production no asset names yet is refused unless
    ``new_production`` says so: a misspelt name would otherwise make a production of its
    own, and the consent would cover none of the assets it was meant for."""
    name = _text(talent, "--talent", required=True, limit=200)
    if scope not in policy.SCOPES:
        raise InvalidInput(f"--scope {scope!r} is not one of {', '.join(policy.SCOPES)}")
    until = parse_date(expires, "--expires")
    production_name = _text(production, "--production", limit=200)
    data, file_name = read_document(document)
    digest = hashlib.sha256(data).hexdigest()

    def write(session: Session) -> tuple[dict[str, Any], str]:
        if production_name and not new_production:
            try:
                production_id(session, production_name)
            except NotFound as exc:
                raise NotFound(f"{exc}; pass --new-production if it has no assets yet") from None
        row = Consent(
            talent=name,
            scope=scope,
            production=(
                repository.get_or_create_production(session, production_name)
                if production_name
                else None
            ),
            document_sha256=digest,
            document_name=file_name,
            expires=until,
            recorded_by=actor,
            recorded_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return consent_json(row, withdrawn=None), f"consent:{row.id}"

    return _record_with_document(workspace, data, digest, "consent.recorded", actor, write)


def add_approval(
    workspace: Workspace,
    ref: str,
    *,
    approver: str,
    reference: str,
    document: Path | Document,
    actor: str,
    today: dt.date,
    check_id: int | None = None,
) -> dict[str, Any]:
    """Record a written approval of the asset, covering what needs approval right now.

    The approval is bound to the asset's newest check (``check_id``: the one the approver
    saw, when given): a check recorded meanwhile is a Conflict, so an approval never covers
    triggers the approver did not see."""
    who = _text(approver, "--approver", required=True, limit=200)
    what = _text(reference, "--reference", required=True)
    data, file_name = read_document(document)
    digest = hashlib.sha256(data).hexdigest()
    with read_session(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        asset_id = asset.id
        seen = asset.checks[-1].id if asset.checks else None
        facts, _, _ = gather(session, asset)
    if check_id is not None and check_id != seen:
        raise Conflict(
            f"asset {asset_id}'s newest check is #{seen}, not #{check_id}: look at it again"
        )
    # Never empty: every generated asset needs approval before it reaches final.
    triggers = [key for key, _, _ in policy.approval_triggers(facts)]

    def write(session: Session) -> tuple[dict[str, Any], str]:
        newest = session.scalar(select(func.max(Check.id)).where(Check.asset_id == asset_id))
        if newest != seen:
            raise Conflict(
                f"asset {asset_id} was checked again (check #{newest}) while the approval was "
                "being recorded: look at the new check and record the approval again"
            )
        row = Approval(
            asset_id=asset_id,
            approver=who,
            reference=what,
            document_sha256=digest,
            document_name=file_name,
            covers={"triggers": triggers},
            recorded_by=actor,
            recorded_at=utcnow(),
            check_id=seen,
        )
        session.add(row)
        session.flush()
        return approval_json(row, withdrawn=None), f"asset:{asset_id}"

    return _record_with_document(workspace, data, digest, "approval.recorded", actor, write)


def _record_with_document(
    workspace: Workspace,
    data: bytes,
    digest: str,
    action: str,
    actor: str,
    write: Callable[[Session], tuple[dict[str, Any], str]],
) -> dict[str, Any]:
    """Put a signed document into the content store, then write its record (``write``
    adds the row and gives its JSON and the audit subject) and the audit event vouching for it, in
    one transaction; a failure removes the document again if this call stored it."""
    created = workspace.store.put(data, digest)
    try:
        with write_transaction(workspace.engine) as session:
            document_json, subject = write(session)
            audit.append_event(
                session,
                actor=actor,
                action=action,
                subject=subject,
                payload={
                    **document_json,
                    "record_sha256": audit.record_digest(document_json),
                },
            )
            return document_json
    except BaseException:
        if created:
            workspace.store.remove(digest)
        raise


def _withdraw(workspace: Workspace, kind: str, record_id: int, reason: str, *, actor: str) -> None:
    if kind not in WITHDRAWABLE:
        raise InvalidInput(f"only a consent or an approval can be withdrawn, not {kind!r}")
    why = _text(reason, "--reason", required=True)
    try:
        _write_withdrawal(workspace, kind, record_id, why, actor)
    except IntegrityError:
        # Two withdrawals of the same record at once (PostgreSQL): the unique key decides.
        raise Conflict(f"{kind} #{record_id} is withdrawn already") from None


def _write_withdrawal(
    workspace: Workspace, kind: str, record_id: int, why: str | None, actor: str
) -> None:
    with write_transaction(workspace.engine) as session:
        row: Consent | Approval | None = (
            session.get(Consent, record_id)
            if kind == "consent"
            else session.get(Approval, record_id)
        )
        if row is None:
            raise NotFound(f"no {kind} #{record_id}")
        if session.scalar(
            select(Withdrawal.id).where(
                Withdrawal.subject_kind == kind, Withdrawal.subject_id == record_id
            )
        ):
            raise Conflict(f"{kind} #{record_id} is withdrawn already")
        withdrawal = Withdrawal(
            subject_kind=kind,
            subject_id=record_id,
            reason=why,
            recorded_by=actor,
            recorded_at=utcnow(),
        )
        session.add(withdrawal)
        session.flush()
        subject = f"asset:{row.asset_id}" if isinstance(row, Approval) else f"consent:{row.id}"
        audit.append_event(
            session,
            actor=actor,
            action=f"{kind}.withdrawn",
            subject=subject,
            payload={
                "withdrawal_id": withdrawal.id,
                f"{kind}_id": record_id,
                "reason": why,
                "record_sha256": audit.record_digest(withdrawal_record(withdrawal)),
            },
        )


def _declare(
    workspace: Workspace,
    ref: str,
    *,
    personal_data: bool | None,
    expires: str | None,
    talent: list[tuple[str, str]] | None,
    actor: str,
) -> dict[str, Any]:
    until = parse_date(expires, "--expires") if expires else None
    named = None
    if talent is not None:
        named = []
        for name, scope in talent:
            checked = _text(name, "--talent's name (NAME or NAME:SCOPE)", required=True, limit=200)
            if scope not in policy.SCOPES:
                raise InvalidInput(
                    f"--talent {name + ':' + scope!r}: the scope {scope!r} is not one of "
                    f"{', '.join(policy.SCOPES)}"
                )
            named.append([checked, scope])
    if personal_data is None and until is None and named is None:
        raise InvalidInput("declare at least one of --personal-data, --expires, --talent")
    with write_transaction(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        row = Declaration(
            asset_id=asset.id,
            personal_data=personal_data,
            expires=until,
            talent={"talent": named} if named is not None else None,
            recorded_by=actor,
            recorded_at=utcnow(),
        )
        session.add(row)
        session.flush()
        payload = {
            "personal_data": personal_data,
            "expires": until.isoformat() if until else None,
            "talent": named,
        }
        audit.append_event(
            session,
            actor=actor,
            action="asset.declared",
            subject=f"asset:{asset.id}",
            payload=payload,
        )
        return {"asset_id": asset.id, **payload}


def _revise(
    workspace: Workspace, ref: str, *, revised_by: str, how: str, actor: str
) -> dict[str, Any]:
    """Record the human work done on an asset (who revised it, and how): what the guidance
    expects of generated material before it reaches final deliverables."""
    who = _text(revised_by, "--revised-by", required=True, limit=200)
    what = _text(how, "--how", required=True, limit=10_000)
    with write_transaction(workspace.engine) as session:
        asset = repository.find_asset(session, ref)
        row = Revision(
            asset_id=asset.id, revised_by=who, how=what, recorded_by=actor, recorded_at=utcnow()
        )
        session.add(row)
        session.flush()
        document = revision_json(row)
        audit.append_event(
            session,
            actor=actor,
            action="asset.revised",
            subject=f"asset:{asset.id}",
            payload=document,  # the row itself is vouched for by the event's "rows"
        )
        return document


# -- facts and status -----------------------------------------------------------------------


# -- the use cases, each checking who may make the record ---------------------------


def vet_tool(
    workspace: Workspace,
    name: str,
    *,
    by: str | None = None,
    user: UserInfo | None = None,
    **profile: Any,
) -> dict[str, Any]:
    actor = workspace.role_actor(by, ("admin", "legal"), "vetting a tool", user)
    return _vet_tool(workspace, name, actor=actor, **profile)


def add_consent(
    workspace: Workspace, *, by: str | None = None, user: UserInfo | None = None, **consent: Any
) -> dict[str, Any]:
    actor = workspace.role_actor(by, ("legal",), "recording a consent", user)
    return _add_consent(workspace, actor=actor, **consent)


def list_consents(
    workspace: Workspace,
    *,
    talent: str | None = None,
    production: str | None = None,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    return _list_consents(
        workspace, talent=talent, production=production, today=today or today_utc()
    )


def approve(
    workspace: Workspace,
    ref: str,
    *,
    by: str | None = None,
    user: UserInfo | None = None,
    today: dt.date | None = None,
    **approval: Any,
) -> dict[str, Any]:
    """Record the studio's written approval of an asset (legal). ``user``: the user the
    web layer signed in."""
    actor = workspace.role_actor(by, ("legal",), "recording a written approval", user)
    return add_approval(workspace, ref, actor=actor, today=today or today_utc(), **approval)


def withdraw(
    workspace: Workspace, kind: str, record_id: int, reason: str, *, by: str | None = None
) -> None:
    actor = workspace.role_actor(by, ("legal",), f"withdrawing a {kind}")
    _withdraw(workspace, kind, record_id, reason, actor=actor)


def declare(
    workspace: Workspace, ref: str, *, by: str | None = None, **declared: Any
) -> dict[str, Any]:
    """Declare facts about an asset; with a token, an artist only about their own."""
    actor = workspace.actor(by)
    if workspace.token is not None and workspace.authenticate(workspace.token).role == "artist":
        with read_session(workspace.engine) as session:
            asset = repository.find_asset(session, ref)
            if asset.registered_by != actor:
                raise AccessDenied(
                    f"artists declare facts only about the assets they registered; "
                    f"asset {asset.id} was registered by {asset.registered_by!r}"
                )
    return _declare(workspace, ref, actor=actor, **declared)


def revise(
    workspace: Workspace, ref: str, *, revised_by: str, how: str, by: str | None = None
) -> dict[str, Any]:
    """Record the human work done on an asset: who revised it, and how."""
    return _revise(workspace, ref, revised_by=revised_by, how=how, actor=workspace.actor(by))
