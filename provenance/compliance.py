"""An asset's clearance status: what its records add up to under the studio's policy.

``status`` gathers the facts (intended use, verdict and review status, the tool's vetting,
declarations, consents, approvals, revisions) and asks ``provenance.policy``; ``Lookups``
prefetches them for many assets at once (the disclosure summary, ``expired``).

JSON of a status, schema ``provenance.status/1``::

    {"schema", "asset": {"id", "sha256", "original_name", "intended_use", "production",
     "registered_by"}, "as_of": "YYYY-MM-DD", "verdict", "review_status", "tool": {...},
     "declarations": {"personal_data", "expires", "talent"}, "consents": [...],
     "approvals": [...], "policy": {"cleared_for_final", "requirements", "missing",
     "findings", "approval_triggers"}}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provenance import policy
from provenance.db import repository
from provenance.db.session import read_session
from provenance.db.tables import (
    Approval,
    Asset,
    Consent,
    Declaration,
    GenerationRecord,
    Production,
    ReferenceSet,
    Revision,
    Tool,
    ToolProfile,
    Withdrawal,
)
from provenance.errors import NotFound
from provenance.export.documents import approval_json, consent_json, revision_json
from provenance.review_rules import status_of
from provenance.workspace import Workspace

TOOL_SCHEMA = "provenance.tool/1"


STATUS_SCHEMA = "provenance.status/1"


# Assets whose records are read ahead by one query each (a span of ids, see id_span).
_PREFETCH_CHUNK = 1000


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
        # Per asset, when read ahead by prefetch(newest=True): its newest check, decision
        # and tool, as plain values (a disclosure of 100,000 assets makes no ORM rows
        # for them).
        self._newest: dict[int, repository.NewestFacts] = {}

    def newest(self, asset: Asset) -> repository.NewestFacts:
        """The asset's newest check, decision and tool: read ahead, else from the asset's
        loaded relationships."""
        if asset.id in self._newest:
            return self._newest[asset.id]
        record = asset.generation_records[-1] if asset.generation_records else None
        tool = record.tool if record is not None else None
        return repository.NewestFacts(
            asset.checks[-1] if asset.checks else None,
            asset.reviews[-1] if asset.reviews else None,
            (tool.id, tool.name) if tool is not None else None,
        )

    def prefetch(self, asset_ids: Sequence[int], *, newest: bool = False) -> None:
        """Read the declarations, approvals and revisions of many assets (a production's)
        in a few queries instead of several per asset; ``newest``: their newest check,
        decision and tool too (``newest``)."""
        for start in range(0, len(asset_ids), _PREFETCH_CHUNK):
            chunk = list(asset_ids[start : start + _PREFETCH_CHUNK])
            if newest:
                self._newest.update(repository.newest_facts(self.session, chunk))
            self._revisions.update(_by_asset(self.session, Revision, chunk))
            self._declarations.update(_by_asset(self.session, Declaration, chunk))
            self._approvals.update(_by_asset(self.session, Approval, chunk))

    def forget(self, asset_ids: Sequence[int]) -> None:
        """Drop what ``prefetch`` read for these assets (a disclosure done with them)."""
        for asset_id in asset_ids:
            self._declarations.pop(asset_id, None)
            self._approvals.pop(asset_id, None)
            self._revisions.pop(asset_id, None)
            self._newest.pop(asset_id, None)

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


_PerAsset = TypeVar("_PerAsset", Revision, Declaration, Approval)


def _by_asset(
    session: Session, model: type[_PerAsset], asset_ids: list[int]
) -> dict[int, list[_PerAsset]]:
    """The rows of ``model`` (an asset's revisions, declarations or approvals) of each of
    ``asset_ids``, oldest first, read in one query over their span of ids."""
    found: dict[int, list[_PerAsset]] = {asset_id: [] for asset_id in asset_ids}
    statement = (
        select(model).where(repository.id_span(model.asset_id, asset_ids)).order_by(model.id)
    )
    for row in session.scalars(statement):
        if row.asset_id in found:
            found[row.asset_id].append(row)
    return found


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
    # Read ahead (a disclosure), or the asset's loaded relationships (with_details).
    latest, decision, made_with = lookups.newest(asset)
    state = status_of(latest.verdict if latest else None, latest.id if latest else None, decision)
    tool = None
    if made_with is not None:
        profile = lookups.profile(made_with[0])
        tool = policy.ToolFacts(
            made_with[1],
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
    # Consents are read only for an asset that names talent, withdrawals only for
    # consents and approvals it has: most assets have none (one status, fewer queries).
    consent_rows = [
        c
        for c in (lookups.consents() if facts.talent else [])
        if any(c.talent.casefold() == t.casefold() for t, _ in facts.talent)
    ]
    withdrawn_consents = lookups.withdrawn("consent") if consent_rows else {}
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
    approval_rows = lookups.approvals(asset.id)
    withdrawn_approvals = lookups.withdrawn("approval") if approval_rows else {}
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
    withdrawn_consents = lookups.withdrawn("consent") if found.consent_rows else {}
    withdrawn_approvals = lookups.withdrawn("approval") if found.approval_rows else {}
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


@dataclass(frozen=True)
class ExpiredAsset:
    """A temporary asset (ideation, previz) past its declared expiry date."""

    asset_id: int
    original_name: str
    intended_use: str
    production: str | None
    expires: dt.date
    days_past: int

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "expires": self.expires.isoformat()}


def expired_assets(session: Session, today: dt.date) -> list[ExpiredAsset]:
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
                ExpiredAsset(
                    asset_id=asset.id,
                    original_name=asset.original_name,
                    intended_use=asset.intended_use,
                    production=asset.production.name if asset.production else None,
                    expires=expires,
                    days_past=(today - expires).days,
                )
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


def asset_status(workspace: Workspace, ref: str, *, today: dt.date | None = None) -> dict[str, Any]:
    """The asset's requirements, met and missing, and findings (provenance.status/1)."""
    with read_session(workspace.engine) as session:
        # The asset's row and production only; its newest facts and records read ahead
        # in a query each (a status is a few round trips, not one per relationship).
        asset = repository.find_asset(session, ref, details=False)
        lookups = Lookups(session)
        lookups.prefetch([asset.id], newest=True)
        return status(session, asset, today or today_utc(), lookups)


def expired(workspace: Workspace, *, today: dt.date | None = None) -> list[ExpiredAsset]:
    """Temporary assets (ideation, previz) whose declared expiry date has passed."""
    with read_session(workspace.engine) as session:
        return expired_assets(session, today or today_utc())


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
