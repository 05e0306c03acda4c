"""Users, roles and tokens through the command line, on a real SQLite workspace."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from provenance import Workspace, users
from provenance.domain import UserInfo
from provenance.errors import AccessDenied, InvalidInput, ProvenanceError
from tests.conftest import dump, run, run_json, snapshot, sql


@pytest.fixture
def workspace_dir(db_workspace_dir: Path) -> Path:
    """Every test here runs on SQLite and then on PostgreSQL."""
    return db_workspace_dir


def test_add_list_token_and_disable(workspace_dir: Path) -> None:
    added = run_json(
        "-w", workspace_dir, "users", "add", "rosa", "--role", "reviewer", "--by", "ops"
    )
    assert added["schema"] == "provenance.user/1"
    assert (added["name"], added["role"], added["has_token"]) == ("rosa", "reviewer", False)
    result = run("-w", workspace_dir, "users", "token", "rosa")
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert token.startswith("pvt_")
    assert len(token) > 40
    assert token not in dump(workspace_dir)  # only its hash is kept
    with Workspace.open(workspace_dir) as workspace:
        assert users.authenticate(workspace, token).name == "rosa"
    # A new token retires the old one.
    newer = run("-w", workspace_dir, "users", "token", "rosa").stdout.strip()
    with Workspace.open(workspace_dir) as workspace:
        with pytest.raises(AccessDenied):
            users.authenticate(workspace, token)
        assert users.authenticate(workspace, newer).role == "reviewer"
    listed = run_json("-w", workspace_dir, "users", "list")["users"]
    assert [(u["name"], u["has_token"], u["disabled_at"]) for u in listed] == [("rosa", True, None)]
    assert run("-w", workspace_dir, "users", "disable", "rosa").exit_code == 0
    with Workspace.open(workspace_dir) as workspace, pytest.raises(AccessDenied, match="not valid"):
        users.authenticate(workspace, newer)
    [rosa] = run_json("-w", workspace_dir, "users", "list")["users"]
    assert rosa["disabled_at"] is not None
    assert not rosa["has_token"]
    text = run("-w", workspace_dir, "users", "list").stdout
    assert "rosa" in text
    assert "disabled" in text
    events = run_json("-w", workspace_dir, "audit", "verify")
    assert events["ok"] is True
    actions = [
        a
        for (a,) in sql(
            workspace_dir, "SELECT action FROM audit_events WHERE subject = 'user:rosa' ORDER BY id"
        )
    ]
    assert actions == ["user.added", "user.token_issued", "user.token_issued", "user.disabled"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "add", ".bad", "--role", "artist"), "must be 1-100 letters"),
        (("users", "add", "x" * 101, "--role", "artist"), "must be 1-100 letters"),
        (("users", "add", "<script>", "--role", "admin"), "must be 1-100 letters"),
        (("users", "token", "nobody"), "no user 'nobody'"),
        (("users", "disable", "nobody"), "no user 'nobody'"),
        (("users", "add", "dup", "--role", "legal"), "exists already"),
        (("users", "token", "gone"), "is disabled"),
    ],
)
def test_bad_user_commands_are_one_line_errors_and_change_nothing(
    workspace_dir: Path, args: tuple[str, ...], message: str
) -> None:
    assert run("-w", workspace_dir, "users", "add", "dup", "--role", "artist").exit_code == 0
    assert run("-w", workspace_dir, "users", "add", "gone", "--role", "artist").exit_code == 0
    assert run("-w", workspace_dir, "users", "disable", "gone").exit_code == 0
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(workspace_dir) == before


def test_unknown_role_is_refused_by_the_command(workspace_dir: Path) -> None:
    result = run("-w", workspace_dir, "users", "add", "sam", "--role", "producer")
    assert result.exit_code == 2
    assert "producer" in result.stderr
    assert json.loads(run("-w", workspace_dir, "users", "list", "--json").stdout)["users"] == []


def test_forged_tokens_are_refused(workspace_dir: Path) -> None:
    run("-w", workspace_dir, "users", "add", "ana", "--role", "artist")
    run("-w", workspace_dir, "users", "token", "ana")
    with Workspace.open(workspace_dir) as workspace:
        for forged in ("", "pvt_", "pvt_" + "A" * 43, "not-a-token", "pvt_' OR 1=1 --"):
            with pytest.raises(AccessDenied):
                users.authenticate(workspace, forged)


def _token(workspace_dir: Path, name: str, env: dict[str, str] | None = None) -> str:
    result = run("-w", workspace_dir, "users", "token", name, env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def _actors(workspace_dir: Path) -> list[tuple[str, str]]:
    return [
        tuple(r) for r in sql(workspace_dir, "SELECT actor, action FROM audit_events ORDER BY id")
    ]


def test_once_an_admin_holds_a_token_only_admins_manage_users(workspace_dir: Path) -> None:
    # Setting up: the local user adds the first admin and gives them a token.
    assert run("-w", workspace_dir, "users", "add", "ada", "--role", "admin").exit_code == 0
    ada = {"PROVENANCE_TOKEN": _token(workspace_dir, "ada")}
    before = snapshot(workspace_dir)
    refused = run("-w", workspace_dir, "users", "add", "bob", "--role", "reviewer")
    assert refused.exit_code == 1
    assert "needs an admin's token: set PROVENANCE_TOKEN" in refused.stderr
    assert snapshot(workspace_dir) == before
    added = run("-w", workspace_dir, "users", "add", "bob", "--role", "reviewer", env=ada)
    assert added.exit_code == 0, added.stderr
    bob = {"PROVENANCE_TOKEN": _token(workspace_dir, "bob", env=ada)}
    denied = run("-w", workspace_dir, "users", "add", "eve", "--role", "admin", env=bob)
    assert denied.exit_code == 1
    assert "needs the admin role; 'bob' is reviewer" in denied.stderr
    assert _actors(workspace_dir)[-2:] == [("ada", "user.added"), ("ada", "user.token_issued")]


def test_writes_with_a_token_are_attributed_to_its_user(workspace_dir: Path) -> None:
    from tests import filemakers as fm

    run("-w", workspace_dir, "users", "add", "ana", "--role", "artist")
    ana = {"PROVENANCE_TOKEN": _token(workspace_dir, "ana")}
    done = run("-w", workspace_dir, "register", fm.SAMPLES / "coffee.jpg", env=ana)
    assert done.exit_code == 0, done.stderr
    assert _actors(workspace_dir)[-1] == ("ana", "asset.registered")
    before = snapshot(workspace_dir)
    for env, args, message in (
        (ana, ("--by", "someone-else"), "--by 'someone-else' is not the token's user 'ana'"),
        ({"PROVENANCE_TOKEN": "pvt_forged"}, (), "the token is not valid"),
    ):
        result = run("-w", workspace_dir, "register", fm.SAMPLES / "rocket.jpg", *args, env=env)
        assert result.exit_code == 1
        assert message in result.stderr
        assert snapshot(workspace_dir) == before


def test_admins_adding_the_same_user_at_once_get_one_user_and_clear_errors(
    workspace_dir: Path,
) -> None:
    """On PostgreSQL the name check and the insert of concurrent admins can interleave; the
    unique name decides, and the losers hear "exists already", not a database error."""
    attempts = 6
    barrier = threading.Barrier(attempts)
    outcomes: list[Any] = [None] * attempts

    def add(position: int) -> None:
        with Workspace.open(workspace_dir) as workspace:
            barrier.wait()
            try:
                outcomes[position] = users.add_user(workspace, "mia", "reviewer", by="admin")
            except ProvenanceError as exc:
                outcomes[position] = exc

    threads = [threading.Thread(target=add, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    added = [o for o in outcomes if isinstance(o, UserInfo)]
    refused = [o for o in outcomes if isinstance(o, InvalidInput)]
    assert len(added) == 1, outcomes
    assert len(refused) == attempts - 1, outcomes
    assert all("user 'mia' exists already" in str(e) for e in refused)
    listed = json.loads(run("-w", workspace_dir, "users", "list", "--json").stdout)["users"]
    assert [u["name"] for u in listed] == ["mia"]
    assert sql(workspace_dir, "SELECT count(*) FROM audit_events WHERE action = 'user.added'") == [
        (1,)
    ]
    assert run_json("-w", workspace_dir, "audit", "verify")["ok"] is True
