"""The studio's rules as pure functions: from what is known about an asset, the
requirements it must meet, which are met and which are missing, each with the guideline it
comes from. No I/O: the workspace gathers the facts, this decides.

The rules (GUIDELINES.md):

- written approval is required for a key creative element, a talent likeness, personal
  data, a match against third-party or talent reference material; and, before anything
  generated goes into a final deliverable, whatever its declared use ("even a prop or
  background art seen on screen"), for its use in final deliverables and for a tool that
  stores or trains on inputs or whose handling is unknown (vetted as storing and training
  on nothing, a tool needs no approval). An approval covers the triggers present when it
  was given; a trigger that appears later (a re-check finds a third-party match) needs a
  new approval;
- material in final deliverables has meaningful human work recorded on it (who revised it,
  and how);
- a talent likeness needs a valid, unexpired consent of each talent depicted, covering the
  scope (likeness, voice, performance) and the asset's production;
- a flagged similarity check needs a reviewer's (or legal's) approval standing;
- every asset must be checked against the reference sets before it can be cleared;
- a tool that stores or trains on inputs, or whose handling is unknown, is a finding on
  every asset made with it; one outside an enterprise-secured environment is a finding too;
- temporary material (ideation, previz) needs an expiry date; past it, it is reported.

An asset is cleared for final when no requirement is missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The guidelines each rule comes from (GUIDELINES.md), quoted so a record explains itself.
GUIDELINES = {
    "disclosure-approval": "Disclosure: if the output includes final deliverables, talent "
    "likeness, personal data or third-party IP, written approval is required before "
    "proceeding.",
    "approval-key-creative": "Needs written approval: main characters, key visual elements "
    "or fictional settings central to the story.",
    "approval-likeness": "Needs written approval: replicating or altering an actor's voice or "
    "likeness, which also needs the performer's consent and union rules.",
    "approval-final": "Needs written approval: any AI-generated material in final "
    "deliverables, even a prop or background art seen on screen.",
    "principle-1": "Principle 1: outputs do not replicate or substantially recreate "
    "identifiable characteristics of unowned or copyrighted material.",
    "principle-2": "Principle 2: the generative tools used do not store, reuse or train on "
    "production data inputs or outputs.",
    "principle-3": "Principle 3: where possible, tools are used in an enterprise-secured "
    "environment to safeguard inputs.",
    "principle-4": "Principle 4: generated material is temporary and not part of the final "
    "deliverables.",
    "principle-5": "Principle 5: GenAI is not used to replace or generate new talent "
    "performances or union-covered work without consent.",
    "final-human-input": "Generated material that reaches final deliverables is reviewed "
    "and revised with meaningful human input (the guidance's expectation for background art "
    "seen on screen).",
    "ops-similarity-review": "Operations: a similarity review with reviewer sign-offs "
    "documented for sensitive shots, because 'substantially recreates' must be evidenced.",
}

TEMPORARY_USES = frozenset({"ideation", "previz"})
APPROVAL_USES = {
    "key-creative": "approval-key-creative",
    "talent-likeness": "approval-likeness",
}
# Every generated asset needs this approval before it is cleared for final. Approvals given
# before the rule applied to every use covered a final deliverable as "use:final-deliverable".
FINAL_USE = "final-use"
LEGACY_FINAL_USE = "use:final-deliverable"
# Reference material whose match needs written approval (not the production's own).
UNOWNED_RIGHTS = frozenset({"third-party", "talent"})
HANDLING = ("yes", "no", "unknown")
SCOPES = ("likeness", "voice", "performance")
APPROVED_REVIEW = frozenset({"approved", "legal_approved"})


@dataclass(frozen=True)
class ToolFacts:
    name: str
    stores_inputs: str = "unknown"
    trains_on_inputs: str = "unknown"
    enterprise_secured: str = "unknown"

    @property
    def risky(self) -> bool:
        """Stores or trains on inputs, or nobody knows whether it does."""
        return self.stores_inputs != "no" or self.trains_on_inputs != "no"


@dataclass(frozen=True)
class MatchFacts:
    """A reference item the newest check judged close (review or high)."""

    reference_set: str
    rights_status: str
    item_id: int
    verdict: str


@dataclass(frozen=True)
class Consent:
    consent_id: int
    talent: str
    scope: str
    production: str | None
    expires: dt.date
    withdrawn: bool = False


@dataclass(frozen=True)
class Approval:
    approval_id: int
    approver: str
    reference: str
    covers: frozenset[str]
    withdrawn: bool = False


@dataclass(frozen=True)
class Revision:
    """Human work recorded on an asset: who revised it and how."""

    revision_id: int
    revised_by: str
    how: str


@dataclass(frozen=True)
class AssetFacts:
    asset_id: int
    intended_use: str
    production: str | None
    checked: bool
    verdict: str | None
    review_status: str
    tool: ToolFacts | None
    matches: tuple[MatchFacts, ...] = ()
    talent: tuple[tuple[str, str], ...] = ()  # (talent name, scope) depicted
    personal_data: bool = False
    expires: dt.date | None = None
    revisions: tuple[Revision, ...] = ()


@dataclass(frozen=True)
class Requirement:
    key: str
    text: str
    guideline: str
    met: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "guideline": self.guideline,
            "guideline_text": GUIDELINES[self.guideline],
            "met": self.met,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Finding:
    key: str
    text: str
    guideline: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "guideline": self.guideline,
            "guideline_text": GUIDELINES[self.guideline],
        }


@dataclass(frozen=True)
class PolicyResult:
    requirements: tuple[Requirement, ...]
    findings: tuple[Finding, ...]
    approval_triggers: tuple[str, ...] = field(default=())

    @property
    def missing(self) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if not r.met)

    @property
    def cleared_for_final(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "cleared_for_final": self.cleared_for_final,
            "requirements": [r.to_json() for r in self.requirements],
            "missing": [r.key for r in self.missing],
            "findings": [f.to_json() for f in self.findings],
            "approval_triggers": list(self.approval_triggers),
        }


def approval_triggers(facts: AssetFacts) -> list[tuple[str, str, str]]:
    """What makes written approval necessary: (trigger key, why, guideline)."""
    triggers = []
    guideline = APPROVAL_USES.get(facts.intended_use)
    if guideline is not None:
        triggers.append(
            (f"use:{facts.intended_use}", f"intended use {facts.intended_use}", guideline)
        )
    if facts.personal_data:
        triggers.append(("personal-data", "contains personal data", "disclosure-approval"))
    for match in facts.matches:
        if match.rights_status in UNOWNED_RIGHTS:
            triggers.append(
                (
                    f"match:{match.reference_set}#{match.item_id}",
                    f"{match.verdict} match against {match.rights_status} material "
                    f"{match.reference_set} #{match.item_id}",
                    "disclosure-approval",
                )
            )
    triggers.append(
        (
            FINAL_USE,
            "generated material in final deliverables (any use, even background art)",
            "approval-final",
        )
    )
    if facts.tool is None or facts.tool.risky:
        name = facts.tool.name if facts.tool else "an unrecorded tool"
        triggers.append(
            (
                f"tool:{name}",
                f"made with {name}, which stores or trains on inputs or whose handling is "
                "unknown (vet it with `provenance tools add`, or approve its use)",
                "principle-2",
            )
        )
    return triggers


def _covers(approval: Approval, key: str) -> bool:
    return key in approval.covers or (key == FINAL_USE and LEGACY_FINAL_USE in approval.covers)


def evaluate(
    facts: AssetFacts,
    consents: Iterable[Consent],
    approvals: Iterable[Approval],
    today: dt.date,
) -> PolicyResult:
    """The requirements and findings for one asset on ``today``."""
    requirements: list[Requirement] = []
    findings: list[Finding] = []
    active_approvals = [a for a in approvals if not a.withdrawn]

    requirements.append(
        Requirement(
            "checked",
            "Checked against the reference sets",
            "principle-1",
            facts.checked,
            "" if facts.checked else "run `provenance check` on it",
        )
    )
    if facts.verdict in ("review", "high"):
        met = facts.review_status in APPROVED_REVIEW
        requirements.append(
            Requirement(
                "similarity-review",
                f"Similarity review of the {facts.verdict} verdict signed off",
                "ops-similarity-review",
                met,
                f"review status: {facts.review_status.replace('_', ' ')}",
            )
        )

    triggers = approval_triggers(facts)
    for key, why, guideline in triggers:
        covering = [a for a in active_approvals if _covers(a, key)]
        detail = (
            f"approval #{covering[-1].approval_id} by {covering[-1].approver} "
            f"({covering[-1].reference})"
            if covering
            else "no written approval covers it"
        )
        requirements.append(
            Requirement(
                f"approval:{key}", f"Written approval: {why}", guideline, bool(covering), detail
            )
        )

    revised = facts.revisions[-1] if facts.revisions else None
    requirements.append(
        Requirement(
            "human-revision",
            "Meaningful human work on it recorded (who revised it, how)",
            "final-human-input",
            revised is not None,
            f"revision #{revised.revision_id} by {revised.revised_by}: {revised.how}"
            if revised
            else "provenance revise ID --revised-by NAME --how TEXT",
        )
    )

    if facts.intended_use == "talent-likeness":
        if not facts.talent:
            requirements.append(
                Requirement(
                    "consent:talent-named",
                    "The talent depicted is named (provenance declare ID --talent NAME)",
                    "principle-5",
                    False,
                )
            )
        for talent, scope in facts.talent:
            valid = [
                c
                for c in consents
                if c.talent.casefold() == talent.casefold()
                and c.scope == scope
                and (c.production is None or c.production == facts.production)
            ]
            standing = [c for c in valid if not c.withdrawn]
            current = [c for c in standing if c.expires >= today]
            if current:
                detail = f"consent #{current[-1].consent_id}, expires {current[-1].expires}"
            elif standing:
                detail = f"consent #{standing[-1].consent_id} expired on {standing[-1].expires}"
            elif valid:
                detail = f"consent #{valid[-1].consent_id} was withdrawn"
            else:
                detail = "no consent recorded"
            requirements.append(
                Requirement(
                    f"consent:{talent}:{scope}",
                    f"Consent of {talent} to the use of their {scope}",
                    "principle-5",
                    bool(current),
                    detail,
                )
            )

    if facts.intended_use in TEMPORARY_USES:
        requirements.append(
            Requirement(
                "expiry-date",
                "Temporary material has an expiry date",
                "principle-4",
                facts.expires is not None,
                f"expires {facts.expires}"
                if facts.expires
                else "provenance declare ID --expires DATE",
            )
        )
        if facts.expires is not None and facts.expires < today:
            findings.append(
                Finding(
                    "past-expiry",
                    f"Temporary material past its expiry date ({facts.expires})",
                    "principle-4",
                )
            )

    tool = facts.tool
    if tool is None:
        findings.append(
            Finding("tool-unknown", "No tool is recorded for this asset", "principle-2")
        )
    else:
        if tool.stores_inputs != "no":
            findings.append(
                Finding(
                    f"tool-stores:{tool.name}",
                    f"{tool.name}: stores inputs ({tool.stores_inputs})",
                    "principle-2",
                )
            )
        if tool.trains_on_inputs != "no":
            findings.append(
                Finding(
                    f"tool-trains:{tool.name}",
                    f"{tool.name}: trains on inputs ({tool.trains_on_inputs})",
                    "principle-2",
                )
            )
        if tool.enterprise_secured != "yes":
            findings.append(
                Finding(
                    f"tool-unsecured:{tool.name}",
                    f"{tool.name}: enterprise-secured environment ({tool.enterprise_secured})",
                    "principle-3",
                )
            )
    return PolicyResult(tuple(requirements), tuple(findings), tuple(k for k, _, _ in triggers))
