"""The audit chain catches any edit or deletion made behind the product's back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from tests import filemakers as fm
from tests.conftest import run, run_json, sql


@pytest.fixture
def busy_workspace(db_workspace_dir: Path) -> Path:
    """Three registered assets, on SQLite and then on PostgreSQL."""
    for name in ("coffee.jpg", "rocket.jpg", "chelsea.png"):
        run_json("-w", db_workspace_dir, "register", fm.SAMPLES / name, "--tool", "comfyui")
    return db_workspace_dir


def verify(workspace_dir: Path) -> tuple[int, dict]:
    result = run("-w", workspace_dir, "audit", "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_every_write_is_in_the_chain(busy_workspace: Path) -> None:
    code, report = verify(busy_workspace)
    assert code == 0
    assert report == {
        "schema": "provenance.audit-verify/1",
        "ok": True,
        "events": 5,  # workspace.created, tool.created, 3 x asset.registered
        "first_bad_event": None,
        "message": "5 events verified",
    }
    actions = [row[0] for row in sql(busy_workspace, "SELECT action FROM audit_events ORDER BY id")]
    assert actions == ["workspace.created", "tool.created"] + ["asset.registered"] * 3
    assert (
        "Audit chain OK: 5 events verified." in run("-w", busy_workspace, "audit", "verify").stdout
    )


@pytest.mark.parametrize(
    ("statement", "bad_event", "message"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE id = 3", 3, "event 3 was altered"),
        (
            "UPDATE audit_events SET payload = replace(payload, 'coffee', 'tea') WHERE id = 3",
            3,
            "event 3 was altered",
        ),
        (
            "UPDATE audit_events SET occurred_at = '2020-01-01T00:00:00+00:00' WHERE id = 4",
            4,
            "event 4 was altered",
        ),
        ("DELETE FROM audit_events WHERE id = 3", 3, "event 3 is missing"),
        ("DELETE FROM audit_events WHERE id = 5", 5, "events 5 to 5 are missing"),
    ],
)
def test_tampering_is_named(
    busy_workspace: Path, statement: str, bad_event: int, message: str
) -> None:
    sql(busy_workspace, statement)
    code, report = verify(busy_workspace)
    assert code == 1
    assert report["ok"] is False
    assert report["first_bad_event"] == bad_event
    assert message in report["message"]
    text = run("-w", busy_workspace, "audit", "verify")
    assert text.exit_code == 1
    assert text.stderr.startswith("Error: audit chain broken: ")
    assert message in text.stderr


def test_rewriting_an_event_and_its_hash_breaks_the_next_link(busy_workspace: Path) -> None:
    from provenance.db.audit import event_hash

    [row] = sql(
        busy_workspace,
        "SELECT id, occurred_at, actor, action, subject, payload, prev_hash "
        "FROM audit_events WHERE id = 3",
    )
    names = ("id", "occurred_at", "actor", "action", "subject", "payload", "prev_hash")
    forged = event_hash(dict(zip(names, row, strict=True), actor="mallory"))
    sql(
        busy_workspace,
        "UPDATE audit_events SET actor = 'mallory', hash = :h WHERE id = 3",
        h=forged,
    )
    code, report = verify(busy_workspace)
    assert code == 1
    assert report["first_bad_event"] == 4
    assert "event 4 does not follow event 3" in report["message"]


def test_a_second_chain_cannot_fork_from_the_same_event(busy_workspace: Path) -> None:
    [(prev,)] = sql(busy_workspace, "SELECT prev_hash FROM audit_events WHERE id = 5")
    with pytest.raises(IntegrityError):
        sql(
            busy_workspace,
            "INSERT INTO audit_events (id, occurred_at, actor, action, subject, payload, "
            "prev_hash, hash) VALUES (6, 'x', 'x', 'x', 'x', '{}', :prev, :hash)",
            prev=prev,
            hash="f" * 64,
        )
