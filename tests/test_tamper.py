"""One row edited, inserted or deleted behind provenance's back, in each table legal relies
on: `audit verify` names every one, and names malformed values without a traceback.

The attacker uses sqlite3 directly (foreign keys off, as the sqlite3 shell has them)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from provenance.db.row_audit import COVERED_TABLES
from tests.conftest import run

# One edit per table: the columns the hardening review found unguarded first.
EDITS = {
    "productions": "name = 'Another Show'",
    "tools": "name = 'trusted-tool'",
    "tool_profiles": "trains_on_inputs = 'yes'",
    "users": "role = 'legal'",
    "assets": "intended_use = 'ideation'",
    "generation_records": "prompt = 'an innocent prompt'",
    "fingerprints": "value = '0000000000000000'",
    "declarations": "personal_data = 0",
    "revisions": "how = 'nothing at all'",
    "reference_sets": "rights_status = 'owned'",
    "reference_items": "attribution = 'someone else'",
    "reference_vectors": "vector = x'00'",
    "checks": "verdict = 'clear'",
    "matches": "score = 0.01",
    "reviews": "rationale = 'looked fine'",
    "consents": "expires = '2099-12-31'",
    "approvals": "approver = 'Someone else'",
    "withdrawals": "reason = 'never mind'",
}
# Further edits the review listed, each undetected before.
MORE_EDITS = [
    ("assets", "registered_by = 'rosa'"),
    ("assets", "sha256 = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'"),
    ("assets", "original_name = 'other.png'"),
    ("assets", "production_id = NULL"),
    ("generation_records", "tool_id = NULL"),
    ("users", "token_sha256 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"),
    ("users", "disabled_at = NULL WHERE name = 'temp'"),  # a disabled user re-enabled
]
# What a copy of a row changes so that the table's unique keys let it in.
UNIQUE = {
    "productions": {"name": "name || ' 2'"},
    "tools": {"name": "name || '-2'", "name_key": "name_key || '-2'"},
    "users": {"name": "name || '2'", "token_sha256": "NULL"},
    "assets": {"sha256": "'f' || substr(sha256, 2)"},
    "reference_sets": {"name": "name || '2'"},
    "reference_items": {"sha256": "'f' || substr(sha256, 2)"},
    "reference_vectors": {"spec": "spec || '2'"},
    "reviews": {"seq": "seq + 100"},
    "withdrawals": {"subject_id": "subject_id + 100"},
}


@pytest.fixture(scope="module")
def full_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace plus a consent, a withdrawal and a disabled user: a row in every
    covered table."""
    root = tmp_path_factory.mktemp("tamper") / "demo"
    assert run("demo", root).exit_code == 0
    document = root.parent / "consent.pdf"
    document.write_bytes(b"%PDF-1.4 consent\n")
    for args in (
        ("consent", "add", "--talent", "Ada Star", "--scope", "likeness", "--production",
         "Demo", "--document", document, "--expires", "2027-12-31", "--by", "lena"),
        ("withdraw", "consent", "1", "--reason", "recast", "--by", "lena"),
        ("users", "add", "temp", "--role", "artist"),
        ("users", "disable", "temp"),
    ):  # fmt: skip
        result = run("-w", root, *args)
        assert result.exit_code == 0, result.output
    with sqlite3.connect(root / "provenance.db") as db:
        for table in COVERED_TABLES:
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    assert run("-w", root, "audit", "verify").exit_code == 0
    return root


@pytest.fixture
def copy(full_workspace: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(full_workspace, target)
    return target


def tamper(workspace: Path, *statements: str) -> None:
    db = sqlite3.connect(workspace / "provenance.db")
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def verify_fails(workspace: Path) -> str:
    result = run("-w", workspace, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    return line


def test_every_covered_table_has_a_tamper_case() -> None:
    assert set(EDITS) == set(COVERED_TABLES)


@pytest.mark.parametrize(("table", "change"), [*EDITS.items(), *MORE_EDITS])
def test_an_edited_row_is_named(copy: Path, table: str, change: str) -> None:
    where = "" if " WHERE " in change else f" WHERE id = (SELECT min(id) FROM {table})"
    tamper(copy, f"UPDATE {table} SET {change}{where}")
    assert f"of {table} was altered" in verify_fails(copy)


@pytest.mark.parametrize("table", COVERED_TABLES)
def test_an_inserted_row_is_named(copy: Path, table: str) -> None:
    with sqlite3.connect(copy / "provenance.db") as db:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    overrides = {"id": f"(SELECT max(id) + 1 FROM {table})", **UNIQUE.get(table, {})}
    values = ", ".join(overrides.get(c, c) for c in columns)
    tamper(
        copy,
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {values} FROM {table} WHERE id = (SELECT min(id) FROM {table})",
    )
    line = verify_fails(copy)
    assert f"of {table} has no audit event" in line


@pytest.mark.parametrize("table", COVERED_TABLES)
def test_a_deleted_row_is_named(copy: Path, table: str) -> None:
    tamper(copy, f"DELETE FROM {table} WHERE id = (SELECT max(id) FROM {table})")
    line = verify_fails(copy)
    assert f"of {table}, recorded by audit event" in line
    assert "is missing: it was deleted" in line


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE approvals SET covers = '[]'", "row 1 of approvals was altered"),
        ("UPDATE approvals SET covers = 'null'", "row 1 of approvals was altered"),
        ("UPDATE matches SET score = 'very close' WHERE id = 1", "row 1 of matches"),
        ("UPDATE reviews SET evidence = 'not json {' WHERE id = 1", "row 1 of reviews"),
        ("UPDATE assets SET registered_at = 'last tuesday' WHERE id = 1", "row 1 of assets"),
        ("UPDATE checks SET created_at = 'garbage' WHERE id = 1", "row 1 of checks"),
        ("UPDATE audit_head SET last_event_id = 'ten'", "the audit head row is malformed"),
    ],
)
def test_malformed_rows_are_named_without_a_traceback(
    copy: Path, statement: str, named: str
) -> None:
    tamper(copy, statement)
    assert named in verify_fails(copy)


def test_deleting_every_asset_of_a_workspace_without_reference_sets_is_found(
    workspace_dir: Path, tmp_path: Path
) -> None:
    from tests import filemakers as fm

    for name in ("rocket.jpg", "coffee.jpg"):
        fm.sample(name).save(tmp_path / name.replace(".jpg", ".png"))
    assert run("-w", workspace_dir, "register", tmp_path).exit_code == 0
    assert run("-w", workspace_dir, "audit", "verify").exit_code == 0
    tamper(
        workspace_dir,
        "DELETE FROM fingerprints",
        "DELETE FROM generation_records",
        "DELETE FROM assets",
    )
    line = verify_fails(workspace_dir)
    assert "of assets, recorded by audit event" in line
    assert "(and 7 more)" in line or "more)" in line
