"""Big workspaces: the review status kept in ``asset_states`` by the transactions that move
it (the queue and the filters read it in SQL), and `audit verify --incremental`, which reads
only what was written since the last successful verify. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import filemakers as fm
from tests.conftest import run, run_json, sql
from tests.team import as_user, build_team
from tests.test_schema import _downgrade


@pytest.fixture
def team(db_workspace_dir: Path, tmp_path: Path) -> dict[str, Any]:
    return build_team(db_workspace_dir, tmp_path)


def decide(team: dict[str, Any], who: str, shot: str, decision: str) -> None:
    result = run(
        "-w", team["ws"], "review", team["ids"][shot], "--decision", decision,
        "--rationale", f"{who} looked", env=as_user(team["tokens"][who]),
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def states(ws: Path) -> dict[int, tuple[str, str | None]]:
    return {
        asset_id: (status, verdict)
        for asset_id, status, verdict in sql(
            ws, "SELECT asset_id, status, verdict FROM asset_states ORDER BY asset_id"
        )
    }


def verify(ws: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run("-w", ws, "audit", "verify", "--json", *extra)
    return result.exit_code, json.loads(result.stdout)


def test_the_status_column_moves_with_checks_and_decisions(team: dict[str, Any]) -> None:
    ws, ids = team["ws"], team["ids"]
    flagged, copied, clear = ids["shot010"], ids["shot020"], ids["shot030"]
    assert states(ws) == {
        flagged: ("flagged", "high"),
        copied: ("flagged", states(ws)[copied][1]),
        clear: ("clear", "clear"),
    }
    assert states(ws)[copied][1] in ("review", "high")
    decide(team, "rosa", "shot010", "approve")
    decide(team, "ravi", "shot020", "escalate")
    assert states(ws)[flagged][0] == "approved"
    assert states(ws)[copied][0] == "escalated"
    # Every reader agrees with the column: the record, the list filter, the queue.
    assert run_json("-w", ws, "show", copied)["review"]["status"] == "escalated"
    listed = run_json("-w", ws, "list", "--status", "escalated")["assets"]
    assert [a["id"] for a in listed] == [copied]
    queue = run_json("-w", ws, "queue", "--status", "escalated")
    assert [e["asset_id"] for e in queue["entries"]] == [copied]
    assert queue["total"] == 1
    # A new asset starts registered and waits for a check; its check moves it on.
    registered = run(
        "-w", ws, "register", fm.SAMPLES / "chelsea.png", "--json", "--by", "arti",
        env={"PROVENANCE_CHECK_ON_REGISTER": "false"},
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    unchecked = json.loads(registered.stdout)["results"][0]["asset"]["id"]
    assert states(ws)[unchecked] == ("registered", None)
    assert [a["id"] for a in run_json("-w", ws, "list", "--verdict", "unchecked")[
        "assets"]] == [unchecked]  # fmt: skip
    assert run("-w", ws, "check", unchecked, "--by", "ada").exit_code == 0
    assert states(ws)[unchecked][0] in ("clear", "flagged")
    assert verify(ws)[0] == 0


def test_an_altered_status_is_found_by_audit_verify(team: dict[str, Any]) -> None:
    ws, copied = team["ws"], team["ids"]["shot020"]
    assert verify(ws)[0] == 0
    sql(ws, f"UPDATE asset_states SET status = 'approved' WHERE asset_id = {copied}")
    code, report = verify(ws)
    assert code == 1
    assert report["message"] == (
        f"asset {copied}'s review status reads 'approved', but its checks and decisions give "
        "'flagged': the status column was altered"
    )
    # Nothing else vouches for the column: the queue trusts it, the verify does not.
    assert copied not in [e["asset_id"] for e in run_json("-w", ws, "queue")["entries"]]


def test_upgrading_fills_the_status_of_every_asset_recorded_before(team: dict[str, Any]) -> None:
    ws = team["ws"]
    decide(team, "rosa", "shot010", "approve")
    decide(team, "ravi", "shot020", "escalate")
    before = states(ws)
    ranks = sql(ws, "SELECT asset_id, rank, strength FROM asset_states ORDER BY asset_id")
    _downgrade(ws, "0007")
    assert run("-w", ws, "db", "upgrade").exit_code == 0
    assert states(ws) == before
    assert sql(ws, "SELECT asset_id, rank, strength FROM asset_states ORDER BY asset_id") == ranks
    assert verify(ws)[0] == 0


def test_an_incremental_verify_reads_only_what_came_since(team: dict[str, Any]) -> None:
    ws = team["ws"]
    code, full = verify(ws)
    assert code == 0
    head = full["events"]
    # Nothing new: nothing to read.
    code, report = verify(ws, "--incremental")
    assert (code, report["events"]) == (0, 0)
    decide(team, "rosa", "shot010", "approve")
    decide(team, "ravi", "shot020", "escalate")
    # A row a new event vouches for, altered before the verify: found, and no checkpoint
    # is made past it.
    sql(ws, "UPDATE reviews SET rationale = 'looked fine' WHERE id = (SELECT max(id) FROM reviews)")
    code, report = verify(ws, "--incremental")
    assert code == 1
    assert "of reviews was altered" in report["message"]
    sql(ws, "UPDATE reviews SET rationale = 'ravi looked' WHERE id = (SELECT max(id) FROM reviews)")
    code, report = verify(ws, "--incremental")
    assert code == 0, report
    assert report["events"] == 2
    assert report["message"].startswith(
        f"2 new events verified since the checkpoint at event {head}"
    )
    # A row added behind the product's back since the checkpoint: found.
    sql(
        ws,
        "INSERT INTO productions (name, created_at) VALUES ('Pirate cut', '2026-12-01 00:00:00')",
    )
    code, report = verify(ws, "--incremental")
    assert code == 1
    assert "of productions has no audit event: it was added outside provenance" in report["message"]
    sql(ws, "DELETE FROM productions WHERE name = 'Pirate cut'")
    assert verify(ws, "--incremental")[0] == 0
    # An old row no new event names is left to the full verify, which finds it.
    sql(ws, f"UPDATE assets SET intended_use = 'ideation' WHERE id = {team['ids']['shot030']}")
    assert verify(ws, "--incremental")[0] == 0
    code, report = verify(ws)
    assert code == 1
    assert "of assets was altered" in report["message"]


def test_a_rewritten_checkpoint_event_fails_the_incremental_verify(team: dict[str, Any]) -> None:
    ws = team["ws"]
    code, full = verify(ws)
    assert code == 0
    at = full["events"]
    decide(team, "rosa", "shot010", "approve")
    sql(ws, f"UPDATE audit_events SET hash = '{'0' * 64}' WHERE id = {at}")
    code, report = verify(ws, "--incremental")
    assert code == 1
    assert report["first_bad_event"] == at
    assert f"event {at}, verified at the checkpoint of" in report["message"]
    assert "the log was rewritten or cut since" in report["message"]
