"""The policy engine, rule by rule, each with the guideline it comes from."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from provenance.policy import (
    GUIDELINES,
    Approval,
    AssetFacts,
    Consent,
    MatchFacts,
    PolicyResult,
    Revision,
    ToolFacts,
    approval_triggers,
    evaluate,
)

TODAY = dt.date(2026, 11, 22)
VETTED = ToolFacts("studio-diffusion", "no", "no", "yes")
REVISED = (Revision(3, "arti", "repainted the signage by hand"),)


def facts(**changes: object) -> AssetFacts:
    base = AssetFacts(
        asset_id=1,
        intended_use="background",
        production="Nightfall",
        checked=True,
        verdict="clear",
        review_status="clear",
        tool=VETTED,
        revisions=REVISED,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def requirement(result: PolicyResult, key: str) -> tuple[bool, str, str]:
    [found] = [r for r in result.requirements if r.key == key]
    return found.met, found.guideline, found.detail


def approve(*triggers: str, withdrawn: bool = False, number: int = 1) -> Approval:
    return Approval(number, "J. Doe (studio)", "email 2026-11-20", frozenset(triggers), withdrawn)


def test_a_background_with_a_vetted_tool_needs_written_approval_for_final() -> None:
    """'Even a prop or piece of background art that appears on screen.'"""
    result = evaluate(facts(), [], [], TODAY)
    assert not result.cleared_for_final
    assert [r.key for r in result.requirements] == [
        "checked",
        "approval:final-use",
        "human-revision",
    ]
    assert requirement(result, "approval:final-use")[:2] == (False, "approval-final")
    assert result.findings == ()
    assert evaluate(facts(), [], [approve("final-use")], TODAY).cleared_for_final


@pytest.mark.parametrize(
    "use", ["ideation", "previz", "background", "key-creative", "final-deliverable", "undeclared"]
)
def test_every_use_needs_approval_for_final(use: str) -> None:
    assert "final-use" in [key for key, _, _ in approval_triggers(facts(intended_use=use))]


def test_an_approval_given_for_a_final_deliverable_before_the_rule_still_counts() -> None:
    final = facts(intended_use="final-deliverable")
    result = evaluate(final, [], [approve("use:final-deliverable")], TODAY)
    assert requirement(result, "approval:final-use")[0] is True


def test_final_material_needs_human_work_recorded() -> None:
    bare = evaluate(facts(revisions=()), [], [approve("final-use")], TODAY)
    assert requirement(bare, "human-revision") == (
        False,
        "final-human-input",
        "provenance revise ID --revised-by NAME --how TEXT",
    )
    assert not bare.cleared_for_final
    revised = evaluate(facts(), [], [approve("final-use")], TODAY)
    assert requirement(revised, "human-revision") == (
        True,
        "final-human-input",
        "revision #3 by arti: repainted the signage by hand",
    )


def test_an_unchecked_asset_is_not_cleared() -> None:
    result = evaluate(facts(checked=False, verdict=None, review_status="registered"), [], [], TODAY)
    assert requirement(result, "checked")[:2] == (False, "principle-1")
    assert not result.cleared_for_final


@pytest.mark.parametrize(
    ("use", "guideline"),
    [
        ("key-creative", "approval-key-creative"),
        ("talent-likeness", "approval-likeness"),
    ],
)
def test_uses_that_need_written_approval(use: str, guideline: str) -> None:
    result = evaluate(facts(intended_use=use), [], [], TODAY)
    met, cited, detail = requirement(result, f"approval:use:{use}")
    assert (met, cited, detail) == (False, guideline, "no written approval covers it")
    approved = evaluate(facts(intended_use=use), [], [approve(f"use:{use}")], TODAY)
    assert requirement(approved, f"approval:use:{use}")[0] is True


def test_personal_data_needs_written_approval() -> None:
    result = evaluate(facts(personal_data=True), [], [], TODAY)
    assert requirement(result, "approval:personal-data")[:2] == (False, "disclosure-approval")


def test_a_match_against_unowned_material_needs_approval_and_owned_does_not() -> None:
    third = MatchFacts("studio-ip", "third-party", 7, "review")
    talent = MatchFacts("cast-faces", "talent", 3, "high")
    owned = MatchFacts("our-plates", "owned", 9, "high")
    flagged = facts(verdict="high", review_status="approved", matches=(third, talent, owned))
    keys = [key for key, _, _ in approval_triggers(flagged)]
    assert keys == ["match:studio-ip#7", "match:cast-faces#3", "final-use"]
    result = evaluate(flagged, [], [], TODAY)
    assert requirement(result, "approval:match:studio-ip#7")[:2] == (False, "disclosure-approval")


def test_a_flagged_check_needs_a_standing_sign_off() -> None:
    for status, met in [
        ("flagged", False),
        ("needs_changes", False),
        ("rejected", False),
        ("escalated", False),
        ("approved", True),
        ("legal_approved", True),
    ]:
        result = evaluate(facts(verdict="review", review_status=status), [], [], TODAY)
        assert requirement(result, "similarity-review")[:2] == (met, "ops-similarity-review")


def test_a_recheck_that_adds_a_third_party_match_reopens_the_approval() -> None:
    final = facts(intended_use="final-deliverable")
    given = approve(*[key for key, _, _ in approval_triggers(final)])
    assert evaluate(final, [], [given], TODAY).cleared_for_final
    # A later check finds a third-party match: the approval did not cover it.
    rechecked = dataclasses.replace(
        final,
        verdict="review",
        review_status="approved",
        matches=(MatchFacts("studio-ip", "third-party", 7, "review"),),
    )
    result = evaluate(rechecked, [], [given], TODAY)
    assert requirement(result, "approval:final-use")[0] is True
    assert requirement(result, "approval:match:studio-ip#7")[0] is False
    assert not result.cleared_for_final
    covering = approve(*[key for key, _, _ in approval_triggers(rechecked)], number=2)
    assert evaluate(rechecked, [], [given, covering], TODAY).cleared_for_final


def test_a_withdrawn_approval_no_longer_counts() -> None:
    final = facts(intended_use="final-deliverable")
    result = evaluate(final, [], [approve("final-use", withdrawn=True)], TODAY)
    assert requirement(result, "approval:final-use")[0] is False
    assert not result.cleared_for_final


def likeness(**changes: object) -> AssetFacts:
    return facts(intended_use="talent-likeness", talent=(("Ada Star", "likeness"),), **changes)


def consent(**changes: object) -> Consent:
    base = Consent(4, "Ada Star", "likeness", "Nightfall", dt.date(2027, 6, 30))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_talent_likeness_needs_a_valid_consent() -> None:
    approval = approve("use:talent-likeness", "final-use")
    key = "consent:Ada Star:likeness"
    cases = [
        ([], False, "no consent recorded"),
        ([consent()], True, "consent #4, expires 2027-06-30"),
        ([consent(expires=dt.date(2026, 11, 21))], False, "consent #4 expired on 2026-11-21"),
        ([consent(withdrawn=True)], False, "consent #4 was withdrawn"),
        ([consent(scope="voice")], False, "no consent recorded"),
        ([consent(production="Another Show")], False, "no consent recorded"),
        ([consent(production=None, talent="ada star")], True, "consent #4, expires 2027-06-30"),
    ]
    for consents, met, detail in cases:
        result = evaluate(likeness(), consents, [approval], TODAY)
        assert requirement(result, key) == (met, "principle-5", detail), consents
        assert result.cleared_for_final is met


def test_a_consent_expiring_today_still_holds() -> None:
    approval = approve("use:talent-likeness", "final-use")
    result = evaluate(likeness(), [consent(expires=TODAY)], [approval], TODAY)
    assert result.cleared_for_final


def test_talent_likeness_must_name_the_talent() -> None:
    result = evaluate(facts(intended_use="talent-likeness"), [], [], TODAY)
    assert requirement(result, "consent:talent-named")[:2] == (False, "principle-5")


@pytest.mark.parametrize(
    ("tool", "findings"),
    [
        (VETTED, []),
        (ToolFacts("cloud-gen", "yes", "no", "yes"), ["tool-stores:cloud-gen"]),
        (ToolFacts("cloud-gen", "no", "yes", "yes"), ["tool-trains:cloud-gen"]),
        (ToolFacts("cloud-gen", "no", "no", "no"), ["tool-unsecured:cloud-gen"]),
        (
            ToolFacts("new-tool"),
            ["tool-stores:new-tool", "tool-trains:new-tool", "tool-unsecured:new-tool"],
        ),
        (None, ["tool-unknown"]),
    ],
)
def test_tool_handling_findings(tool: ToolFacts | None, findings: list[str]) -> None:
    asset = facts(tool=tool)
    result = evaluate(asset, [], [], TODAY)
    assert [f.key for f in result.findings] == findings
    guidelines = {f.guideline for f in result.findings}
    assert guidelines <= {"principle-2", "principle-3"}
    # A written approval of what needs one (final use, and an unvetted tool) clears it.
    everything = approve(*[key for key, _, _ in approval_triggers(asset)])
    assert evaluate(asset, [], [everything], TODAY).cleared_for_final


@pytest.mark.parametrize("use", ["background", "final-deliverable"])
def test_a_risky_or_unvetted_tool_needs_approval_for_final(use: str) -> None:
    risky = facts(intended_use=use, tool=ToolFacts("cloud-gen", "yes", "no", "yes"))
    keys = [key for key, _, _ in approval_triggers(risky)]
    assert keys == ["final-use", "tool:cloud-gen"]
    result = evaluate(risky, [], [approve("final-use")], TODAY)
    assert requirement(result, "approval:tool:cloud-gen")[:2] == (False, "principle-2")
    unvetted = facts(intended_use=use, tool=ToolFacts("new-tool"))
    assert [key for key, _, _ in approval_triggers(unvetted)] == ["final-use", "tool:new-tool"]
    vetted = facts(intended_use=use)
    assert [key for key, _, _ in approval_triggers(vetted)] == ["final-use"]


def test_temporary_material_needs_an_expiry_date_and_is_reported_past_it() -> None:
    for use in ("ideation", "previz"):
        undated = evaluate(facts(intended_use=use), [], [], TODAY)
        assert requirement(undated, "expiry-date")[:2] == (False, "principle-4")
        dated = evaluate(facts(intended_use=use, expires=dt.date(2027, 1, 31)), [], [], TODAY)
        assert requirement(dated, "expiry-date")[0] is True
        assert dated.findings == ()
        past = evaluate(facts(intended_use=use, expires=dt.date(2026, 11, 1)), [], [], TODAY)
        assert [f.key for f in past.findings] == ["past-expiry"]
        assert past.findings[0].guideline == "principle-4"


def test_every_cited_guideline_is_quoted() -> None:
    result = evaluate(
        likeness(verdict="high", review_status="flagged", personal_data=True, tool=None),
        [],
        [],
        TODAY,
    )
    document = result.to_json()
    assert document["cleared_for_final"] is False
    for entry in document["requirements"] + document["findings"]:
        assert entry["guideline_text"] == GUIDELINES[entry["guideline"]]
    assert set(document["missing"]) == {r.key for r in result.requirements if not r.met}
