"""The records the policy rests on, and an asset's clearance status.

- tools and their data handling: each vetting is a new ``tool_profiles`` row; the newest
  holds; a tool never vetted has unknown handling;
- consents (talent, scope, production, expiry, signed document in the content store);
- written approvals of one asset, each listing the triggers it covers;
- withdrawals of a consent or an approval (the record itself stays as it was);
- declarations about an asset after registration: personal data, expiry date, talent.

All are append-only and audited. ``status`` gathers the facts and asks ``provenance.policy``.

JSON of a status, schema ``provenance.status/1``::

    {"schema", "asset": {"id", "sha256", "original_name", "intended_use", "production",
     "registered_by"}, "as_of": "YYYY-MM-DD", "verdict", "review_status", "tool": {...},
     "declarations": {"personal_data", "expires", "talent"}, "consents": [...],
     "approvals": [...], "policy": {"cleared_for_final", "requirements", "missing",
     "findings", "approval_triggers"}}
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance import audit, policy
from provenance.db import repository
from provenance.db.session import read_session, write_transaction
from provenance.db.tables import (
    Approval,
    Asset,
    Check,
    Consent,
    Declaration,
    GenerationRecord,
    Production,
    ReferenceSet,
    Revision,
    Tool,
    ToolProfile,
    Withdrawal,
    utcnow,
)
from provenance.errors import Conflict, InvalidInput, NotFound
from provenance.reviews import status_of

if TYPE_CHECKING:
    from provenance.workspace import Workspace

STATUS_SCHEMA = "provenance.status/1"
TOOL_SCHEMA = "provenance.tool/1"
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024
WITHDRAWABLE = ("consent", "approval")
# Asset ids per IN (...) list when reading many assets' records at once.
_PREFETCH_CHUNK = 500


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


def vet_tool(
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


def current_profile(session: Session, tool_id: int) -> ToolProfile | None:
    return session.scalar(
        select(ToolProfile)
        .where(ToolProfile.tool_id == tool_id)
        .order_by(ToolProfile.id.desc())
        .limit(1)
    )


def tool_json(session: Session, tool: Tool) -> dict[str, Any]:
    profile = current_profile(session, tool.id)
    assets = session.scalar(
        select(func.count(func.distinct(GenerationRecord.asset_id))).where(
            GenerationRecord.tool_id == tool.id
        )
    )
    return {
        "schema": TOOL_SCHEMA,
        "name": tool.name,
        "vetted": profile is not None,
        "vendor": profile.vendor if profile else None,
        "version": profile.version if profile else None,
        "stores_inputs": profile.stores_inputs if profile else "unknown",
        "trains_on_inputs": profile.trains_on_inputs if profile else "unknown",
        "enterprise_secured": profile.enterprise_secured if profile else "unknown",
        "terms_url": profile.terms_url if profile else None,
        "notes": profile.notes if profile else None,
        "vetted_by": profile.recorded_by if profile else None,
        "vetted_at": profile.recorded_at.isoformat() if profile else None,
        "assets": int(assets or 0),
    }


def list_tools(workspace: Workspace) -> list[dict[str, Any]]:
    with read_session(workspace.engine) as session:
        tools = session.scalars(select(Tool).order_by(func.lower(Tool.name))).all()
        return [tool_json(session, t) for t in tools]


def list_consents(
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


def add_consent(
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


def withdraw(workspace: Workspace, kind: str, record_id: int, reason: str, *, actor: str) -> None:
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


def declare(
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


def revise(
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


class Lookups:
    """Workspace-wide records the policy reads for every asset (withdrawals, consents, the
    sets' rights, tools' current vettings), each read once per session: a production's
    disclosure asks for thousands of statuses."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._withdrawn: dict[str, dict[int, Withdrawal]] = {}
        self._rights: dict[str, str] | None = None
        self._consents: list[Consent] | None = None
        self._profiles: dict[int, ToolProfile | None] = {}
        # Per asset, when read ahead by prefetch(): its declarations and its approvals.
        self._declarations: dict[int, list[Declaration]] = {}
        self._approvals: dict[int, list[Approval]] = {}
        self._revisions: dict[int, list[Revision]] = {}

    def prefetch(self, asset_ids: Sequence[int]) -> None:
        """Read the declarations and approvals of many assets (a production's) in a few
        queries instead of two per asset."""
        for start in range(0, len(asset_ids), _PREFETCH_CHUNK):
            chunk = list(asset_ids[start : start + _PREFETCH_CHUNK])
            for asset_id in chunk:
                self._declarations[asset_id] = []
                self._approvals[asset_id] = []
                self._revisions[asset_id] = []
            for revision in self.session.scalars(
                select(Revision).where(Revision.asset_id.in_(chunk)).order_by(Revision.id)
            ):
                self._revisions[revision.asset_id].append(revision)
            for declaration in self.session.scalars(
                select(Declaration).where(Declaration.asset_id.in_(chunk)).order_by(Declaration.id)
            ):
                self._declarations[declaration.asset_id].append(declaration)
            for approval in self.session.scalars(
                select(Approval).where(Approval.asset_id.in_(chunk)).order_by(Approval.id)
            ):
                self._approvals[approval.asset_id].append(approval)

    def declarations(self, asset_id: int) -> dict[str, Any]:
        if asset_id in self._declarations:
            return _newest_declared(self._declarations[asset_id])
        return declarations_of(self.session, asset_id)

    def approvals(self, asset_id: int) -> list[Approval]:
        if asset_id in self._approvals:
            return list(self._approvals[asset_id])
        return list(
            self.session.scalars(
                select(Approval).where(Approval.asset_id == asset_id).order_by(Approval.id)
            ).all()
        )

    def revisions(self, asset_id: int) -> list[Revision]:
        if asset_id in self._revisions:
            return list(self._revisions[asset_id])
        return list(
            self.session.scalars(
                select(Revision).where(Revision.asset_id == asset_id).order_by(Revision.id)
            ).all()
        )

    def withdrawn(self, kind: str) -> dict[int, Withdrawal]:
        if kind not in self._withdrawn:
            rows = self.session.scalars(
                select(Withdrawal).where(Withdrawal.subject_kind == kind)
            ).all()
            self._withdrawn[kind] = {w.subject_id: w for w in rows}
        return self._withdrawn[kind]

    def rights(self) -> dict[str, str]:
        if self._rights is None:
            statement = select(ReferenceSet.name, ReferenceSet.rights_status)
            self._rights = {str(row[0]): str(row[1]) for row in self.session.execute(statement)}
        return self._rights

    def consents(self) -> list[Consent]:
        if self._consents is None:
            self._consents = list(self.session.scalars(select(Consent).order_by(Consent.id)).all())
        return self._consents

    def profile(self, tool_id: int) -> ToolProfile | None:
        if tool_id not in self._profiles:
            self._profiles[tool_id] = current_profile(self.session, tool_id)
        return self._profiles[tool_id]


def declarations_of(session: Session, asset_id: int) -> dict[str, Any]:
    """The newest declared value of each field (None: never declared)."""
    rows = session.scalars(
        select(Declaration).where(Declaration.asset_id == asset_id).order_by(Declaration.id)
    ).all()
    return _newest_declared(rows)


def _newest_declared(rows: Iterable[Declaration]) -> dict[str, Any]:
    """Of an asset's declarations, oldest first, the newest value of each field."""
    result: dict[str, Any] = {"personal_data": None, "expires": None, "talent": None}
    for row in rows:
        if row.personal_data is not None:
            result["personal_data"] = row.personal_data
        if row.expires is not None:
            result["expires"] = row.expires
        if row.talent is not None:
            result["talent"] = [tuple(t) for t in row.talent["talent"]]
    return result


@dataclass(frozen=True)
class _Gathered:
    facts: policy.AssetFacts
    consents: list[policy.Consent]
    approvals: list[policy.Approval]
    consent_rows: list[Consent]
    approval_rows: list[Approval]
    declared: dict[str, Any]
    revision_rows: list[Revision]


def gather(
    session: Session, asset: Asset
) -> tuple[policy.AssetFacts, list[policy.Consent], list[policy.Approval]]:
    """The policy's inputs for ``asset``, read from the records."""
    found = _gather(session, asset, Lookups(session))
    return found.facts, found.consents, found.approvals


def _gather(session: Session, asset: Asset, lookups: Lookups) -> _Gathered:
    latest: Check | None = asset.checks[-1] if asset.checks else None
    # The asset comes with its checks and decisions loaded (repository.with_details).
    state = status_of(
        latest.verdict if latest else None,
        latest.id if latest else None,
        asset.reviews[-1] if asset.reviews else None,
    )
    record = asset.generation_records[-1] if asset.generation_records else None
    tool = None
    if record is not None and record.tool is not None:
        profile = lookups.profile(record.tool.id)
        tool = policy.ToolFacts(
            record.tool.name,
            profile.stores_inputs if profile else "unknown",
            profile.trains_on_inputs if profile else "unknown",
            profile.enterprise_secured if profile else "unknown",
        )
    matches: list[policy.MatchFacts] = []
    if latest is not None and latest.verdict != "clear":
        rights = lookups.rights()
        seen = set()
        close = [
            (r["reference_set"], r["item_id"], r["verdict"])
            for r in latest.reasons.get("reasons", [])
            if r["verdict"] != "clear"
        ] + [
            (c["reference_set"], c["item_id"], c["verdict"])
            for c in latest.reasons.get("context", [])
        ]
        for set_name, item_id, verdict in close:
            if (set_name, item_id) in seen:
                continue
            seen.add((set_name, item_id))
            matches.append(
                policy.MatchFacts(set_name, rights.get(set_name, "third-party"), item_id, verdict)
            )
    declared = lookups.declarations(asset.id)
    revision_rows = lookups.revisions(asset.id)
    facts = policy.AssetFacts(
        asset_id=asset.id,
        intended_use=asset.intended_use,
        production=asset.production.name if asset.production else None,
        checked=latest is not None,
        verdict=latest.verdict if latest else None,
        review_status=state.status,
        tool=tool,
        matches=tuple(matches),
        talent=tuple(declared["talent"] or ()),
        personal_data=bool(declared["personal_data"]),
        expires=declared["expires"],
        revisions=tuple(policy.Revision(r.id, r.revised_by, r.how) for r in revision_rows),
    )
    withdrawn_consents = lookups.withdrawn("consent")
    consent_rows = [
        c
        for c in lookups.consents()
        if any(c.talent.casefold() == t.casefold() for t, _ in facts.talent)
    ]
    consents = [
        policy.Consent(
            c.id,
            c.talent,
            c.scope,
            c.production.name if c.production else None,
            c.expires,
            c.id in withdrawn_consents,
        )
        for c in consent_rows
    ]
    withdrawn_approvals = lookups.withdrawn("approval")
    approval_rows = lookups.approvals(asset.id)
    approvals = [
        policy.Approval(
            a.id,
            a.approver,
            a.reference,
            frozenset(a.covers.get("triggers", [])),
            a.id in withdrawn_approvals,
        )
        for a in approval_rows
    ]
    return _Gathered(
        facts, consents, approvals, consent_rows, approval_rows, declared, revision_rows
    )


def status(
    session: Session, asset: Asset, today: dt.date, lookups: Lookups | None = None
) -> dict[str, Any]:
    """The asset's clearance status (``provenance.status/1``) on ``today``. ``lookups``:
    shared by the statuses of one export."""
    lookups = lookups or Lookups(session)
    found = _gather(session, asset, lookups)
    facts, declared = found.facts, found.declared
    result = policy.evaluate(facts, found.consents, found.approvals, today)
    withdrawn_consents = lookups.withdrawn("consent")
    withdrawn_approvals = lookups.withdrawn("approval")
    return {
        "schema": STATUS_SCHEMA,
        "asset": {
            "id": asset.id,
            "sha256": asset.sha256,
            "original_name": asset.original_name,
            "intended_use": asset.intended_use,
            "production": facts.production,
            "registered_by": asset.registered_by,
        },
        "as_of": today.isoformat(),
        "verdict": facts.verdict,
        "review_status": facts.review_status,
        "tool": None
        if facts.tool is None
        else {
            "name": facts.tool.name,
            "stores_inputs": facts.tool.stores_inputs,
            "trains_on_inputs": facts.tool.trains_on_inputs,
            "enterprise_secured": facts.tool.enterprise_secured,
        },
        "declarations": {
            "personal_data": declared["personal_data"],
            "expires": declared["expires"].isoformat() if declared["expires"] else None,
            "talent": [list(t) for t in declared["talent"]] if declared["talent"] else [],
        },
        "consents": [
            consent_json(c, withdrawn=withdrawn_consents.get(c.id)) for c in found.consent_rows
        ],
        "approvals": [
            approval_json(a, withdrawn=withdrawn_approvals.get(a.id)) for a in found.approval_rows
        ],
        "revisions": [revision_json(r) for r in found.revision_rows],
        "policy": result.to_json(),
    }


def consent_json(row: Consent, *, withdrawn: Withdrawal | None) -> dict[str, Any]:
    return {
        "consent_id": row.id,
        "talent": row.talent,
        "scope": row.scope,
        "production": row.production.name if row.production else None,
        "document_sha256": row.document_sha256,
        "document_name": row.document_name,
        "expires": row.expires.isoformat(),
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
        "withdrawn": _withdrawal_json(withdrawn),
    }


def approval_json(row: Approval, *, withdrawn: Withdrawal | None) -> dict[str, Any]:
    return {
        "approval_id": row.id,
        "asset_id": row.asset_id,
        "approver": row.approver,
        "reference": row.reference,
        "document_sha256": row.document_sha256,
        "document_name": row.document_name,
        "covers": list(row.covers.get("triggers", [])),
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
        "withdrawn": _withdrawal_json(withdrawn),
        # Only when known: the digests of approvals recorded before 0006 stay as they were.
        **({"check_id": row.check_id} if row.check_id is not None else {}),
    }


def revision_json(row: Revision) -> dict[str, Any]:
    return {
        "revision_id": row.id,
        "asset_id": row.asset_id,
        "revised_by": row.revised_by,
        "how": row.how,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
    }


def _withdrawal_json(row: Withdrawal | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "reason": row.reason,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
    }


def withdrawal_record(row: Withdrawal) -> dict[str, Any]:
    return {
        "withdrawal_id": row.id,
        "subject_kind": row.subject_kind,
        "subject_id": row.subject_id,
        **(_withdrawal_json(row) or {}),
    }


def verify_records(session: Session) -> tuple[int | None, str] | None:
    """Consents, approvals and withdrawals against the audit events that recorded them."""
    consents = session.scalars(select(Consent).order_by(Consent.id)).all()
    problem = audit.verify_records(
        session,
        action="consent.recorded",
        key="consent_id",
        noun="consent",
        digests=((c.id, audit.record_digest(consent_json(c, withdrawn=None))) for c in consents),
    )
    if problem is not None:
        return problem
    approvals = session.scalars(select(Approval).order_by(Approval.id)).all()
    problem = audit.verify_records(
        session,
        action="approval.recorded",
        key="approval_id",
        noun="approval",
        digests=((a.id, audit.record_digest(approval_json(a, withdrawn=None))) for a in approvals),
    )
    if problem is not None:
        return problem
    for kind in WITHDRAWABLE:
        rows = session.scalars(
            select(Withdrawal).where(Withdrawal.subject_kind == kind).order_by(Withdrawal.id)
        ).all()
        problem = audit.verify_records(
            session,
            action=f"{kind}.withdrawn",
            key="withdrawal_id",
            noun=f"{kind} withdrawal",
            digests=((w.id, audit.record_digest(withdrawal_record(w))) for w in rows),
        )
        if problem is not None:
            return problem
    return None


def expired_assets(session: Session, today: dt.date) -> list[dict[str, Any]]:
    """Temporary assets (ideation, previz) whose declared expiry date has passed."""
    found = []
    assets = session.scalars(
        select(Asset)
        .where(Asset.intended_use.in_(sorted(policy.TEMPORARY_USES)))
        .order_by(Asset.id)
    ).all()
    lookups = Lookups(session)
    lookups.prefetch([asset.id for asset in assets])
    for asset in assets:
        expires = lookups.declarations(asset.id)["expires"]
        if expires is not None and expires < today:
            found.append(
                {
                    "asset_id": asset.id,
                    "original_name": asset.original_name,
                    "intended_use": asset.intended_use,
                    "production": asset.production.name if asset.production else None,
                    "expires": expires.isoformat(),
                    "days_past": (today - expires).days,
                }
            )
    return found


def production_id(session: Session, name: str) -> int:
    """The id of the production named exactly ``name``; NotFound names the known ones."""
    found = session.scalar(select(Production.id).where(Production.name == name))
    if found is None:
        known = list(session.scalars(select(Production.name).order_by(Production.name).limit(11)))
        listed = ", ".join(repr(k) for k in known[:10]) + (", ..." if len(known) > 10 else "")
        raise NotFound(f"no production named {name!r} (known: {listed or 'none yet'})")
    return int(found)
