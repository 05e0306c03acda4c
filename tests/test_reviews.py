"""The review workflow on SQLite and on a real PostgreSQL server: decisions, separation of
duties, supersession, escalation, reopening, the queue, conflicts and tamper evidence."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from provenance import Workspace, reviews
from provenance.domain import Decision, UserInfo
from provenance.errors import Conflict, ProvenanceError
from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot, sql
from tests.team import as_user, build_team


@pytest.fixture
def team(db_workspace_dir: Path, tmp_path: Path) -> dict[str, Any]:
    return build_team(db_workspace_dir, tmp_path)


def review(team: dict[str, Any], who: str, asset: int, decision: str, *extra: Any) -> Any:
    return run(
        "-w",
        team["ws"],
        "review",
        asset,
        "--decision",
        decision,
        *extra,
        env=as_user(team["tokens"][who]),
    )


def status(team: dict[str, Any], asset: int) -> dict[str, Any]:
    return run_json("-w", team["ws"], "show", asset)["review"]


def test_a_reviewer_approves_a_flagged_asset_with_the_evidence_kept(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot010"]
    assert status(team, shot)["status"] == "flagged"
    assert status(team, team["ids"]["shot030"])["status"] == "clear"
    queue = run_json("-w", ws, "queue")
    assert {e["asset_id"] for e in queue["entries"]} == {shot, team["ids"]["shot020"]}
    result = review(
        team, "rosa", shot, "approve", "--rationale", "Homage cleared by the director", "--json"
    )
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["schema"] == "provenance.review/1"
    assert (made["decided_by"], made["role"], made["outcome"]) == ("rosa", "reviewer", "approved")
    assert made["rationale"] == "Homage cleared by the director"
    evidence = made["evidence"]
    assert evidence["verdict"] == "high"
    assert evidence["check_id"] == made["check_id"]
    top = evidence["matches"][0]
    assert top["reference_set"] == "studio-ip"
    assert top["source_path"].endswith("astronaut.jpg")
    assert top["score"] > 0.75 or top["detector"] == "phash"
    summary = status(team, shot)
    assert summary["status"] == "approved"
    assert [d["review_id"] for d in summary["decisions"]] == [made["review_id"]]
    assert shot not in {e["asset_id"] for e in run_json("-w", ws, "queue")["entries"]}
    text = run("-w", ws, "show", shot).stdout
    assert "approved" in text
    assert "Homage cleared by the director" in text
    assert run_json("-w", ws, "audit", "verify")["ok"] is True
    [(payload,)] = sql(ws, "SELECT payload FROM audit_events WHERE action = 'review.decided'")
    event = json.loads(payload)
    assert (event["review_id"], event["outcome"], event["status_before"]) == (
        made["review_id"],
        "approved",
        "flagged",
    )


def test_who_may_decide(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot010"]
    before = snapshot(ws)
    cases = [
        ("arti", "registered asset"),  # separation of duties, whatever the role
        ("ada", "needs the reviewer role"),
        ("lena", "legal decides only escalated"),
    ]
    for who, message in cases:
        result = review(team, who, shot, "approve", "--rationale", "looks fine")
        assert result.exit_code == 1
        assert message in result.output, (who, result.output)
        assert result.output.count("\n") == 1
    assert snapshot(ws) == before
    # An artist who registered nothing is still not a reviewer.
    assert (
        run(
            "-w", ws, "users", "add", "amy", "--role", "artist", env=as_user(team["tokens"]["ada"])
        ).exit_code
        == 0
    )
    amy = run("-w", ws, "users", "token", "amy", env=as_user(team["tokens"]["ada"])).stdout.strip()
    refused = run(
        "-w", ws, "review", shot, "--decision", "approve", "--rationale", "x", env=as_user(amy)
    )
    assert "needs the reviewer role" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--decision", "approve", "--rationale", "   "), "needs a rationale"),
        (("--decision", "approve", "--rationale", "a\x00b"), "NUL"),
        (("--decision", "approve", "--rationale", "x" * 10_001), "longer than"),
        (("--decision", "bless", "--rationale", "x"), "Invalid value"),
    ],
)
def test_bad_decisions_change_nothing(
    team: dict[str, Any], args: tuple[str, ...], message: str
) -> None:
    before = snapshot(team["ws"])
    result = run(
        "-w",
        team["ws"],
        "review",
        team["ids"]["shot010"],
        *args,
        env=as_user(team["tokens"]["rosa"]),
    )
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert snapshot(team["ws"]) == before


def test_clear_unknown_and_unchecked_assets_are_refused(
    team: dict[str, Any], tmp_path: Path
) -> None:
    ws = team["ws"]
    clear = review(team, "rosa", team["ids"]["shot030"], "approve", "--rationale", "x")
    assert "is clear" in clear.output
    unknown = review(team, "rosa", 9999, "approve", "--rationale", "x")
    assert unknown.exit_code == 1
    assert "no asset with id 9999" in unknown.output
    fm.sample("chelsea.png").save(tmp_path / "later.png")
    registered = run(
        "-w",
        ws,
        "register",
        tmp_path / "later.png",
        "--by",
        "arti",
        "--json",
        env={"PROVENANCE_CHECK_ON_REGISTER": "false"},
    )
    registered = json.loads(registered.stdout)
    unchecked = review(
        team, "rosa", registered["results"][0]["asset"]["id"], "approve", "--rationale", "x"
    )
    assert "has not been checked" in unchecked.output


def test_a_new_decision_supersedes_only_the_one_it_names(team: dict[str, Any]) -> None:
    shot = team["ids"]["shot010"]
    first = json.loads(review(team, "rosa", shot, "approve", "--rationale", "ok", "--json").stdout)
    again = review(team, "ravi", shot, "reject", "--rationale", "too close")
    assert again.exit_code == 1
    assert f"--supersedes {first['review_id']}" in again.output
    wrong = review(
        team,
        "ravi",
        shot,
        "reject",
        "--rationale",
        "too close",
        "--supersedes",
        first["review_id"] + 100,
    )
    assert "decided meanwhile" in wrong.output
    second = json.loads(
        review(
            team,
            "ravi",
            shot,
            "reject",
            "--rationale",
            "too close",
            "--supersedes",
            first["review_id"],
            "--json",
        ).stdout
    )
    assert second["previous_id"] == first["review_id"]
    summary = status(team, shot)
    assert summary["status"] == "rejected"
    # The first decision is kept as it was.
    assert [(d["decision"], d["rationale"]) for d in summary["decisions"]] == [
        ("approve", "ok"),
        ("reject", "too close"),
    ]


def test_escalations_go_to_legal(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot020"]
    assert review(team, "rosa", shot, "escalate", "--rationale", "Logo visible").exit_code == 0
    queue = run_json("-w", ws, "queue", "--status", "escalated")["entries"]
    assert [e["asset_id"] for e in queue] == [shot]
    assert (
        "only legal decides it"
        in review(team, "ravi", shot, "approve", "--rationale", "fine", "--supersedes", "1").output
    )
    assert (
        "approve or reject"
        in review(team, "lena", shot, "needs-changes", "--rationale", "x").output
    )
    decided = review(
        team, "lena", shot, "approve", "--rationale", "Licensed under deal 42", "--json"
    )
    assert decided.exit_code == 0, decided.output
    assert json.loads(decided.stdout)["outcome"] == "legal_approved"
    assert status(team, shot)["status"] == "legal_approved"
    assert run_json("-w", ws, "queue")["total"] == 1  # shot010 still flagged


def test_a_check_that_changes_the_verdict_reopens_review(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot020"]
    assert review(team, "rosa", shot, "approve", "--rationale", "ok").exit_code == 0
    # The same verdict again: the approval stands.
    assert run_json("-w", ws, "check", shot, "--by", "rosa")["checks"][0]["verdict"] == "high"
    assert status(team, shot)["status"] == "approved"
    # Stricter high lines make the same evidence a `review` verdict: review reopens. (The
    # verified match then no longer covers enough of the picture to be high by itself.)
    stricter = {
        "PROVENANCE_SSCD_HIGH": "0.9999",
        "PROVENANCE_PHASH_HIGH": "-1",
        "PROVENANCE_VERIFY_MIN_COVERAGE": "1.01",
    }
    rechecked = run("-w", ws, "check", shot, "--by", "rosa", "--json", env=stricter)
    assert json.loads(rechecked.stdout)["checks"][0]["verdict"] == "review"
    summary = status(team, shot)
    assert (summary["status"], summary["reopened"]) == ("flagged", True)
    [entry] = [e for e in run_json("-w", ws, "queue")["entries"] if e["asset_id"] == shot]
    assert entry["reopened"] is True
    payloads = [
        json.loads(p)
        for (p,) in sql(
            ws, "SELECT payload FROM audit_events WHERE action = 'asset.checked' ORDER BY id"
        )
    ]
    assert (payloads[-1]["status_before"], payloads[-1]["status_after"]) == ("approved", "flagged")
    # A reviewer decides the reopened review without naming the old decision.
    assert review(team, "ravi", shot, "approve", "--rationale", "still fine").exit_code == 0
    assert status(team, shot)["status"] == "approved"


def test_queue_filters_sorts_and_pages(team: dict[str, Any]) -> None:
    ws = team["ws"]
    both = run_json("-w", ws, "queue")
    assert both["schema"] == "provenance.queue/1"
    assert both["total"] == 2
    strengths = [e["strength"] for e in both["entries"]]
    assert strengths == sorted(strengths, reverse=True)
    assert run_json("-w", ws, "queue", "--production", "Elsewhere")["total"] == 0
    assert run_json("-w", ws, "queue", "--production", "Nightfall")["total"] == 2
    assert run_json("-w", ws, "queue", "--verdict", "high")["total"] == 2
    assert run_json("-w", ws, "queue", "--verdict", "review")["total"] == 0
    paged = run_json("-w", ws, "queue", "--limit", "1", "--sort", "age")
    assert (paged["total"], len(paged["entries"])) == (2, 1)
    assert paged["entries"][0]["asset_id"] == team["ids"]["shot010"]
    text = run("-w", ws, "queue").stdout
    assert "shot010.png" in text
    assert "flagged" in text


def test_without_a_token_the_local_user_must_be_a_user(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot010"]
    stranger = run(
        "-w",
        ws,
        "review",
        shot,
        "--decision",
        "approve",
        "--rationale",
        "x",
        env={"PROVENANCE_USER": "mallory"},
    )
    assert "'mallory' is not an active user" in stranger.output
    local = run(
        "-w",
        ws,
        "review",
        shot,
        "--decision",
        "approve",
        "--rationale",
        "ok",
        env={"PROVENANCE_USER": "rosa"},
    )
    assert local.exit_code == 0, local.output
    assert status(team, shot)["decisions"][0]["decided_by"] == "rosa"


def test_audit_verify_fails_after_a_decision_row_is_tampered_with(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot010"]
    made = json.loads(
        review(team, "rosa", shot, "reject", "--rationale", "too close", "--json").stdout
    )
    assert run_json("-w", ws, "audit", "verify")["ok"] is True
    sql(
        ws,
        "UPDATE reviews SET rationale = 'cleared', decision = 'approve', "
        "outcome = 'approved' WHERE id = :id",
        id=made["review_id"],
    )
    result = run("-w", ws, "audit", "verify")
    assert result.exit_code == 1
    assert f"row {made['review_id']} of reviews was altered" in result.output
    sql(ws, "DELETE FROM reviews WHERE id = :id", id=made["review_id"])
    assert "is missing" in run("-w", ws, "audit", "verify").output


def _decide_at_once(ws: Path, asset: int, reviewers: list[str]) -> list[Any]:
    """Each reviewer decides on the same state (no decision seen) at the same moment."""
    barrier = threading.Barrier(len(reviewers))
    outcomes: list[Any] = [None] * len(reviewers)

    def decide(position: int, name: str) -> None:
        with Workspace.open(ws) as workspace:
            user = UserInfo(name, "reviewer", False, None, None, None)
            barrier.wait()
            try:
                outcomes[position] = reviews.review(
                    workspace,
                    str(asset),
                    "approve",
                    f"ok from {name}",
                    user=user,
                    previous=None,
                    explicit_previous=True,
                )
            except ProvenanceError as exc:
                outcomes[position] = exc

    threads = [threading.Thread(target=decide, args=(i, n)) for i, n in enumerate(reviewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_decisions_on_one_asset_have_exactly_one_winner(team: dict[str, Any]) -> None:
    ws = team["ws"]
    for asset in (team["ids"]["shot010"], team["ids"]["shot020"]):
        outcomes = _decide_at_once(ws, asset, ["rosa", "ravi"])
        winners = [o for o in outcomes if isinstance(o, Decision)]
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1
        assert isinstance(losers[0], Conflict)
        assert "decided meanwhile" in str(losers[0])
        assert len(status(team, asset)["decisions"]) == 1
    assert run_json("-w", ws, "audit", "verify")["ok"] is True


def test_a_decision_on_evidence_that_a_newer_check_replaced_is_refused(
    team: dict[str, Any],
) -> None:
    ws, shot = team["ws"], team["ids"]["shot010"]
    seen = run_json("-w", ws, "show", shot)["checks"][-1]["check_id"]
    newer = run_json("-w", ws, "check", shot, "--by", "rosa")["checks"][0]["check_id"]
    before = snapshot(ws)
    stale = review(team, "rosa", shot, "approve", "--rationale", "ok", "--check", seen)
    assert stale.exit_code == 1
    assert f"checked again (check {newer}) after the check {seen} you saw" in stale.output
    assert snapshot(ws) == before
    current = review(team, "rosa", shot, "approve", "--rationale", "ok", "--check", newer)
    assert current.exit_code == 0, current.output
    assert status(team, shot)["decisions"][0]["check_id"] == newer


def test_notes_are_threads_in_the_audit_log(team: dict[str, Any]) -> None:
    ws, shot = team["ws"], team["ids"]["shot010"]
    rosa, arti = as_user(team["tokens"]["rosa"]), as_user(team["tokens"]["arti"])
    asked = run(
        "-w", ws, "note", shot, "Whose helmet is this?\nLooks like ours", "--json", env=rosa
    )
    assert asked.exit_code == 0, asked.output
    question = json.loads(asked.stdout)
    assert (question["schema"], question["author"], question["role"]) == (
        "provenance.note/1", "rosa", "reviewer"
    )  # fmt: skip
    answer = run("-w", ws, "note", shot, "\x1b[2JOurs", "--reply-to", question["note_id"], env=arti)
    assert answer.exit_code == 0, answer.output
    before = snapshot(ws)
    for args, message in [
        (("   ",), "a note needs some text"),
        (("x", "--reply-to", "1"), f"asset {shot} has no note #1"),
        (("x\x00",), "NUL"),
    ]:
        refused = run("-w", ws, "note", shot, *args, env=rosa)
        assert refused.exit_code == 1
        assert message in refused.stderr
        assert refused.stderr.count("\n") == 1
    assert snapshot(ws)["rows"] == before["rows"]
    other = run("-w", ws, "note", team["ids"]["shot020"], "x", env=as_user(team["tokens"]["lena"]))
    assert other.exit_code == 0  # legal writes notes too
    listed = run("-w", ws, "notes", shot).stdout
    lines = listed.splitlines()
    assert lines[0].startswith(f"#{question['note_id']} rosa (reviewer) ")
    assert lines[1:3] == ["  Whose helmet is this?", "  Looks like ours"]
    assert lines[3].startswith("  #")
    assert "arti (artist)" in lines[3]
    assert "\x1b" not in listed
    threads = json.loads(run("-w", ws, "notes", shot, "--json").stdout)["notes"]
    assert threads[0]["replies"][0]["reply_to"] == question["note_id"]
    assert "Audit chain OK" in run("-w", ws, "audit", "verify").stdout
