"""From registration to "cleared for final" and the export legal hands over, end to end on
a real workspace: tool vetting, check, review, consent, approval, status, record, evidence
pack (its PDF rendered to pixels) and the production's disclosure summary."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pypdfium2
import pytest

from provenance import Workspace, clearance
from provenance.errors import Conflict, ProvenanceError
from provenance.export.record import schema_document
from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot, sql
from tests.team import as_user

TALENT_COLOUR = (255, 0, 140)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def cast(db_workspace_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """Users with tokens, a talent reference set and a documents folder, on SQLite and then
    on PostgreSQL."""
    ws = db_workspace_dir
    tokens = {}
    for name, role in (("ada", "admin"), ("arti", "artist"), ("rosa", "reviewer"),
                       ("lena", "legal"), ("amy", "artist")):  # fmt: skip
        ok(run("-w", ws, "users", "add", name, "--role", role))
    for name in ("ada", "arti", "rosa", "lena", "amy"):
        env = as_user(tokens["ada"]) if tokens else None
        tokens[name] = ok(run("-w", ws, "users", "token", name, env=env)).stdout.strip()
    refs = tmp_path / "cast"
    refs.mkdir()
    (refs / "eileen.jpg").write_bytes((fm.SAMPLES / "astronaut.jpg").read_bytes())
    (refs / "cup.jpg").write_bytes((fm.SAMPLES / "coffee.jpg").read_bytes())
    ok(run("-w", ws, "refs", "add", "cast-faces", "--from", refs, "--rights", "talent",
           "--holder", "Talent agency", env=as_user(tokens["ada"])))  # fmt: skip
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "consent.pdf").write_bytes(b"%PDF-1.4 signed consent of Eileen Collins\n")
    (docs / "approval.eml").write_bytes(b"From: studio@example.com\n\nApproved for final.\n")
    return {"ws": ws, "tokens": tokens, "docs": docs, "tmp": tmp_path}


def cli(cast: dict[str, Any], who: str, *args: Any) -> Any:
    return run("-w", cast["ws"], *args, env=as_user(cast["tokens"][who]))


def register_likeness(cast: dict[str, Any]) -> int:
    picture = cast["tmp"] / "eileen_v003.png"
    # The astronaut portrait, re-encoded, with a strip of a colour no reference has.
    image = fm.jpeg_reencode(fm.sample("astronaut.jpg"), 80)
    image.paste(TALENT_COLOUR, (0, 0, image.width, 24))
    infotext = (
        "portrait of the commander <b>in orbit</b>\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 6, Seed: 7, Size: 512x512, Model: sdxl"
    )
    fm.write_a1111_png(picture, image, infotext)
    result = ok(cli(cast, "arti", "register", picture, "--use", "talent-likeness",
                    "--production", "Nightfall", "--json"))  # fmt: skip
    [registered] = json.loads(result.stdout)["results"]
    assert registered["check"]["verdict"] == "high"
    return int(registered["asset"]["id"])


def missing(cast: dict[str, Any], asset: int) -> set[str]:
    return set(run_json("-w", cast["ws"], "status", asset)["policy"]["missing"])


def test_a_talent_likeness_is_cleared_for_final_and_exported(cast: dict[str, Any]) -> None:
    ws, docs = cast["ws"], cast["docs"]
    ok(cli(cast, "ada", "tools", "add", "automatic1111", "--vendor", "in-house build",
           "--version", "1.6.0", "--stores-inputs", "no", "--trains-on-inputs", "no",
           "--enterprise-secured", "yes", "--terms-url", "https://example.com/terms"))  # fmt: skip
    asset = register_likeness(cast)
    assert missing(cast, asset) == {
        "similarity-review",
        "approval:use:talent-likeness",
        "approval:match:cast-faces#2",
        "approval:final-use",
        "human-revision",
        "consent:talent-named",
    }
    ok(cli(cast, "rosa", "review", asset, "--decision", "approve", "--rationale",
           "The likeness is intended: the commander is played with consent."))  # fmt: skip
    ok(cli(cast, "arti", "revise", asset, "--revised-by", "arti",
           "--how", "Relit the face and repainted the suit patches by hand"))  # fmt: skip
    ok(cli(cast, "arti", "declare", asset, "--talent", "Eileen Collins:likeness"))
    assert "consent:Eileen Collins:likeness" in missing(cast, asset)
    consent = json.loads(ok(cli(
        cast, "lena", "consent", "add", "--talent", "Eileen Collins", "--scope", "likeness",
        "--production", "Nightfall", "--document", docs / "consent.pdf", "--expires",
        "2027-12-31", "--json",
    )).stdout)  # fmt: skip
    assert consent["schema"] == "provenance.consent/1"
    approval = json.loads(ok(cli(
        cast, "lena", "approve", asset, "--approver", "J. Doe (studio)", "--reference",
        "email of 2026-11-20", "--document", docs / "approval.eml", "--json",
    )).stdout)  # fmt: skip
    assert approval["covers"] == ["use:talent-likeness", "match:cast-faces#2", "final-use"]
    status = run_json("-w", ws, "status", asset)
    assert status["policy"]["cleared_for_final"] is True, status["policy"]["missing"]
    assert "CLEARED for final" in run("-w", ws, "status", asset).stdout
    # The documents are in the content store, by hash.
    stored = ws / "store" / consent["document_sha256"][:2] / consent["document_sha256"]
    assert stored.read_bytes() == (docs / "consent.pdf").read_bytes()

    out = cast["tmp"] / "legal"
    ok(run("-w", ws, "export", "asset", asset, "--out", out, "--as-of", "2026-11-22"))
    record = json.loads((out / f"asset-{asset}.json").read_text())
    jsonschema.validate(record, schema_document("record-1"))
    assert record["policy"]["cleared_for_final"] is True
    assert record["tool"]["stores_inputs"] == "no"
    assert [r["decision"] for r in record["reviews"]] == ["approve"]
    assert record["checks"][-1]["matches"][0]["rights_status"] == "talent"
    assert {e["action"] for e in record["audit"]["events"]} >= {
        "asset.registered", "asset.checked", "review.decided", "asset.declared",
        "approval.recorded", "consent.recorded", "tool.vetted", "asset.revised",
    }  # fmt: skip
    assert record["revisions"][0]["revised_by"] == "arti"
    assert record["audit"]["chain"]["ok"] is True

    # Exporting again without changes gives the same bytes: record, page and PDF (unsigned:
    # no studio key here). The audit anchor says when it was made.
    def documents() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in out.iterdir() if p.name != "audit-anchor.json"}

    first = documents()
    assert sorted(first) == [f"asset-{asset}.{kind}" for kind in ("html", "json", "pdf")]
    assert (out / "audit-anchor.json").is_file()
    ok(run("-w", ws, "export", "asset", asset, "--out", out, "--as-of", "2026-11-22"))
    assert documents() == first

    html = (out / f"asset-{asset}.html").read_text()
    assert "portrait of the commander &lt;b&gt;in orbit&lt;/b&gt;" in html
    assert "<b>in orbit" not in html
    check_pdf_page(out / f"asset-{asset}.pdf")
    pictures = os.environ.get("SCREENSHOT_DIR")  # the README's picture of a pack's page
    if pictures:
        first = pypdfium2.PdfDocument(str(out / f"asset-{asset}.pdf"))[0]
        first.render(scale=1.4).to_pil().convert("RGB").save(
            Path(pictures) / "evidence-pack.jpg", quality=85
        )


def check_pdf_page(path: Path) -> None:
    """Render the first page and look at it: A4, text drawn with real glyphs, the asset's
    picture on it (its colour strip), not a blank or broken page."""
    document = pypdfium2.PdfDocument(str(path))
    page = document[0]
    width, height = page.get_size()
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    text = page.get_textpage().get_text_range()
    assert "Evidence pack: asset" in text
    assert "cleared for final" in text
    assert "verified" in text
    pixels = np.asarray(page.render(scale=1.5).to_pil().convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (1263, 893)
    ink = np.any(pixels < 200, axis=2).mean()
    assert 0.05 < ink < 0.7, ink  # text and pictures, not an empty or a solid page
    strip = np.all(np.abs(pixels - np.array(TALENT_COLOUR)) < 40, axis=2).sum()
    assert strip > 500, strip  # the asset's picture is drawn, colours intact
    document.close()


def consented_likeness(cast: dict[str, Any], talent: str, expires: str) -> int:
    """A likeness made with a vetted tool, approved by a reviewer, revised by hand, its
    talent declared (``talent``) and consenting until ``expires``: only legal's approval is
    missing."""
    ok(cli(cast, "ada", "tools", "add", "automatic1111", "--stores-inputs", "no",
           "--trains-on-inputs", "no", "--enterprise-secured", "yes"))  # fmt: skip
    asset = register_likeness(cast)
    ok(cli(cast, "rosa", "review", asset, "--decision", "approve", "--rationale", "intended"))
    ok(cli(cast, "arti", "declare", asset, "--talent", talent))
    ok(cli(cast, "arti", "revise", asset, "--revised-by", "arti", "--how", "relit by hand"))
    ok(cli(cast, "lena", "consent", "add", "--talent", "Eileen Collins", "--scope", "likeness",
           "--document", cast["docs"] / "consent.pdf", "--expires", expires))  # fmt: skip
    return asset


def test_one_status_the_disclosure_the_record_and_the_queue_agree(cast: dict[str, Any]) -> None:
    """A status is worked out three ways: for one asset (its facts read ahead in a few
    queries), in the disclosure (a thousand assets at a time) and in the asset's record
    (its loaded relationships). With talent, a consent and a withdrawn approval, they say
    the same; the queue's entries say what each asset's record says."""
    ws, docs = cast["ws"], cast["docs"]
    approved = consented_likeness(cast, "Eileen Collins:likeness", "2027-12-31")
    approve = ("approve", approved, "--approver", "J. Doe", "--reference", "memo 7",
               "--document", docs / "approval.eml", "--json")  # fmt: skip
    withdrawn = json.loads(ok(cli(cast, "lena", *approve)).stdout)["approval_id"]
    ok(cli(cast, "lena", "withdraw", "approval", withdrawn, "--reason", "recut"))
    # Another production's asset between the two: not in this production's disclosure,
    # though its id lies among theirs.
    fm.sample("rocket.jpg").save(cast["tmp"] / "rocket_v001.png")
    ok(cli(cast, "arti", "register", cast["tmp"] / "rocket_v001.png", "--use", "background",
           "--production", "Daybreak"))  # fmt: skip
    other = run_json("-w", ws, "list", "--production", "Daybreak")["assets"][0]["id"]
    ok(cli(cast, "arti", "revise", other, "--revised-by", "arti", "--how", "regraded"))
    # A copy of the other reference, flagged and not decided: in the queue.
    fm.write_a1111_png(
        cast["tmp"] / "cup_v001.png", fm.jpeg_reencode(fm.sample("coffee.jpg"), 75),
        "a cup on a table\nSteps: 20, Sampler: Euler a, Seed: 3, Size: 512x512, Model: sdxl",
    )  # fmt: skip
    result = ok(cli(cast, "arti", "register", cast["tmp"] / "cup_v001.png", "--use",
                    "background", "--production", "Nightfall", "--json"))  # fmt: skip
    [registered] = json.loads(result.stdout)["results"]
    waiting = registered["asset"]["id"]
    assert registered["check"]["verdict"] in ("review", "high")
    out = cast["tmp"] / "production"
    ok(run("-w", ws, "export", "production", "Nightfall", "--out", out, "--as-of", "2026-11-22"))
    rows = {
        row["asset_id"]: row
        for category in json.loads((out / "disclosure.json").read_text())["categories"]
        for row in category["assets"]
    }
    assert sorted(rows) == sorted([approved, waiting])
    for asset, row in rows.items():
        own = run_json("-w", ws, "status", asset, "--as-of", "2026-11-22")
        record = json.loads((out / "assets" / f"asset-{asset}.json").read_text())
        assert record["policy"] == own["policy"]
        assert (row["tool"], row["verdict"], row["review_status"]) == (
            own["tool"], own["verdict"], own["review_status"],
        )  # fmt: skip
        assert (row["cleared_for_final"], row["missing"]) == (
            own["policy"]["cleared_for_final"], own["policy"]["missing"],
        )  # fmt: skip
        assert [a["approval_id"] for a in row["approvals"]] == [
            a["approval_id"] for a in own["approvals"] if a["withdrawn"] is None
        ]
    own = run_json("-w", ws, "status", approved, "--as-of", "2026-11-22")
    # Reviewed, revised and consented to: only the withdrawn approval's triggers are open.
    assert own["policy"]["missing"] == [
        "approval:use:talent-likeness", "approval:match:cast-faces#2", "approval:final-use",
    ]  # fmt: skip
    assert [(a["approval_id"], a["withdrawn"] is not None) for a in own["approvals"]] == [
        (withdrawn, True)
    ]
    assert [c["talent"] for c in own["consents"]] == ["Eileen Collins"]
    assert own["tool"]["name"] == "automatic1111"
    [entry] = run_json("-w", ws, "queue")["entries"]
    shown = run_json("-w", ws, "show", waiting)
    assert entry["asset_id"] == waiting
    assert (entry["production"], entry["tool"], entry["intended_use"]) == (
        shown["production"], shown["generation"]["fields"]["tool"]["value"],
        shown["intended_use"],
    )  # fmt: skip
    assert entry["tool"] == "automatic1111"
    assert (entry["check_id"], entry["verdict"], entry["checked_at"]) == (
        shown["checks"][-1]["check_id"], shown["checks"][-1]["verdict"],
        shown["checks"][-1]["created_at"],
    )  # fmt: skip
    assert (entry["status"], entry["latest_decision_id"]) == ("flagged", None)
    assert entry["best_reason"] == shown["checks"][-1]["reasons"][0]


def test_withdrawing_the_approval_or_an_expired_consent_reopens(cast: dict[str, Any]) -> None:
    ws, docs = cast["ws"], cast["docs"]
    asset = consented_likeness(cast, "Eileen Collins", "2026-12-31")
    made = json.loads(ok(cli(cast, "lena", "approve", asset, "--approver", "J. Doe",
                             "--reference", "memo 7", "--document", docs / "approval.eml",
                             "--json")).stdout)  # fmt: skip
    assert missing(cast, asset) == set()
    # After the consent's last day, the requirement is missing again.
    later = run_json("-w", ws, "status", asset, "--as-of", "2027-01-01")
    assert later["policy"]["missing"] == ["consent:Eileen Collins:likeness"]
    ok(cli(cast, "lena", "withdraw", "approval", made["approval_id"], "--reason", "recut"))
    assert missing(cast, asset) == {
        "approval:use:talent-likeness",
        "approval:match:cast-faces#2",
        "approval:final-use",
    }
    again = cli(cast, "lena", "withdraw", "approval", made["approval_id"], "--reason", "x")
    assert "withdrawn already" in again.output
    assert run_json("-w", ws, "audit", "verify")["ok"] is True


def test_a_consent_for_a_production_without_assets_must_say_so(cast: dict[str, Any]) -> None:
    """Consents are often signed before anything is generated; a new production name is
    accepted only when marked new, so a typo cannot make a production of its own."""
    ws, docs = cast["ws"], cast["docs"]
    args = ["consent", "add", "--talent", "Eileen Collins", "--scope", "voice",
            "--production", "Daybreak", "--document", docs / "consent.pdf",
            "--expires", "2027-06-30", "--json"]  # fmt: skip
    before = snapshot(ws)
    refused = cli(cast, "lena", *args)
    assert refused.exit_code == 1
    assert "no production named 'Daybreak' (known: none yet)" in refused.stderr
    assert snapshot(ws) == before
    first = json.loads(ok(cli(cast, "lena", *args, "--new-production")).stdout)
    assert first["production"] == "Daybreak"
    # From now on the name is known, and the flag is not needed.
    second = json.loads(ok(cli(cast, "lena", *args)).stdout)
    assert second["production"] == "Daybreak"
    assert second["consent_id"] == first["consent_id"] + 1
    assert run_json("-w", ws, "audit", "verify")["ok"] is True


def test_without_a_token_legal_records_need_a_local_user_with_the_role(
    cast: dict[str, Any],
) -> None:
    """Without a token, an approval, consent, withdrawal or vetting is attributed to the
    local user, who must be an active user with the role: a login name is not enough."""
    ws, docs = cast["ws"], cast["docs"]
    asset = register_likeness(cast)
    approve = ["-w", ws, "approve", asset, "--approver", "J. Doe", "--reference", "memo 9",
               "--document", docs / "approval.eml", "--json"]  # fmt: skip
    vet = ["-w", ws, "tools", "add", "automatic1111", "--stores-inputs", "no",
           "--trains-on-inputs", "no", "--enterprise-secured", "yes"]  # fmt: skip
    before = snapshot(ws)
    for by, message in (
        ("nobody", "'nobody' is not an active user of this workspace"),
        ("rosa", "recording a written approval needs the legal role; 'rosa' is reviewer"),
    ):
        refused = run(*approve, "--by", by)
        assert refused.exit_code == 1
        assert message in refused.stderr
    refused = run(*vet, "--by", "arti")
    assert "vetting a tool needs the admin or legal role; 'arti' is artist" in refused.stderr
    assert snapshot(ws) == before
    ok(run("-w", ws, "users", "disable", "lena", env=as_user(cast["tokens"]["ada"])))
    before = snapshot(ws)
    gone = run(*approve, "--by", "lena")
    assert "'lena' is not an active user" in gone.stderr
    assert snapshot(ws) == before
    ok(run("-w", ws, "users", "add", "leo", "--role", "legal", env=as_user(cast["tokens"]["ada"])))
    made = json.loads(ok(run(*approve, "--by", "leo")).stdout)
    assert made["recorded_by"] == "leo"
    ok(run(*vet, "--by", "ada"))
    assert run_json("-w", ws, "audit", "verify")["ok"] is True


def test_two_withdrawals_of_one_approval_at_once_leave_one(cast: dict[str, Any]) -> None:
    ws, docs = cast["ws"], cast["docs"]
    ok(run("-w", ws, "users", "add", "leo", "--role", "legal", env=as_user(cast["tokens"]["ada"])))
    asset = register_likeness(cast)
    made = json.loads(ok(cli(cast, "lena", "approve", asset, "--approver", "J. Doe",
                             "--reference", "memo 7", "--document", docs / "approval.eml",
                             "--json")).stdout)  # fmt: skip
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def withdraw(position: int, name: str) -> None:
        with Workspace.open(ws) as workspace:
            barrier.wait()
            try:
                clearance.withdraw(
                    workspace, "approval", made["approval_id"], f"recut ({name})", by=name
                )
                outcomes[position] = "withdrawn"
            except ProvenanceError as exc:
                outcomes[position] = exc

    legal = ("lena", "leo")
    threads = [threading.Thread(target=withdraw, args=(i, n)) for i, n in enumerate(legal)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("withdrawn") == 1, outcomes
    [refused] = [o for o in outcomes if o != "withdrawn"]
    assert isinstance(refused, Conflict)
    assert f"approval #{made['approval_id']} is withdrawn already" in str(refused)
    assert sql(ws, "SELECT count(*) FROM withdrawals") == [(1,)]
    assert run_json("-w", ws, "audit", "verify")["ok"] is True


def test_consents_are_listed_with_their_state(cast: dict[str, Any]) -> None:
    ws, docs = cast["ws"], cast["docs"]
    register_likeness(cast)  # makes the production Nightfall
    for talent, scope, production, expires in (
        ("Eileen Collins", "likeness", "Nightfall", "2027-06-30"),
        ("eileen collins", "voice", None, "2026-12-31"),
        ("Sally Ride", "likeness", "Nightfall", "2027-06-30"),
    ):
        where = ["--production", production] if production else []
        ok(cli(cast, "lena", "consent", "add", "--talent", talent, "--scope", scope, *where,
               "--document", docs / "consent.pdf", "--expires", expires))  # fmt: skip
    ok(cli(cast, "lena", "withdraw", "consent", "3", "--reason", "the part was recast"))
    ok(cli(cast, "lena", "consent", "add", "--talent", "Sally Ride", "--scope", "voice",
           "--production", "Daybreak", "--new-production", "--document", docs / "consent.pdf",
           "--expires", "2027-06-30"))  # fmt: skip

    def listed(*args: str) -> list[tuple[int, str]]:
        found = run_json("-w", ws, "consent", "list", "--as-of", "2027-01-01", *args)
        assert found["schema"] == "provenance.consent-list/1"
        return [(c["consent_id"], c["state"]) for c in found["consents"]]

    assert listed() == [(1, "valid"), (2, "expired"), (3, "withdrawn"), (4, "valid")]
    assert listed("--talent", "EILEEN COLLINS") == [(1, "valid"), (2, "expired")]
    assert listed("--talent", "Nobody") == []
    # A production's consents include those for any production, not another production's.
    assert listed("--production", "Nightfall") == [(1, "valid"), (2, "expired"), (3, "withdrawn")]
    assert listed("--production", "Daybreak") == [(2, "expired"), (4, "valid")]
    table = run("-w", ws, "consent", "list", "--as-of", "2026-12-31").stdout
    assert "valid (0 days left)" in table  # its last day still holds
    assert "the part was recast" not in table
    unknown = run("-w", ws, "consent", "list", "--production", "Nightfal")
    assert unknown.exit_code == 1
    assert "no production named 'Nightfal' (known: 'Daybreak', 'Nightfall')" in unknown.stderr


@pytest.mark.parametrize(
    ("who", "args", "message"),
    [
        ("arti", ("consent", "add", "--talent", "X", "--scope", "likeness", "--document",
                  "{docs}/consent.pdf", "--expires", "2027-01-01"), "needs the legal role"),
        ("rosa", ("approve", "{asset}", "--approver", "J", "--reference", "r", "--document",
                  "{docs}/approval.eml"), "needs the legal role"),
        ("arti", ("tools", "add", "x", "--stores-inputs", "no", "--trains-on-inputs", "no",
                  "--enterprise-secured", "no"), "needs the admin or legal role"),
        ("lena", ("consent", "add", "--talent", "X", "--scope", "likeness", "--document",
                  "{docs}/missing.pdf", "--expires", "2027-01-01"), "no such file"),
        ("lena", ("consent", "add", "--talent", "X", "--scope", "likeness", "--document",
                  "{docs}/consent.pdf", "--expires", "next year"), "is not a date"),
        ("lena", ("consent", "add", "--talent", "X\x00", "--scope", "likeness", "--document",
                  "{docs}/consent.pdf", "--expires", "2027-01-01"), "NUL"),
        ("lena", ("consent", "add", "--talent", "X", "--scope", "likeness", "--production",
                  "Nightfal", "--document", "{docs}/consent.pdf", "--expires", "2027-01-01"),
         "no production named 'Nightfal' (known: 'Nightfall'); pass --new-production"),
        ("lena", ("withdraw", "consent", "99", "--reason", "x"), "no consent #99"),
        ("arti", ("declare", "{asset}"), "declare at least one"),
        ("amy", ("declare", "{asset}", "--personal-data", "yes"), "only about the assets they"),
        ("arti", ("declare", "{asset}", "--expires", "31/12/2026"), "is not a date"),
        ("arti", ("declare", "{asset}", "--talent", "Ada\nStar:smell"),
         "--talent 'Ada\\nStar:smell': the scope 'smell' is not one of likeness"),
        ("arti", ("declare", "{asset}", "--talent", ":likeness"), "--talent's name"),
        ("arti", ("status", "9999"), "no asset with id 9999"),
        ("arti", ("export", "production", "Nowhere", "--out", "{tmp}/x"), "no production"),
    ],
)  # fmt: skip
def test_bad_clearance_commands_change_nothing(
    cast: dict[str, Any], who: str, args: tuple[str, ...], message: str
) -> None:
    asset = register_likeness(cast)
    before = snapshot(cast["ws"])
    filled = [a.format(docs=cast["docs"], asset=asset, tmp=cast["tmp"]) for a in args]
    result = cli(cast, who, *filled)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(cast["ws"]) == before
    assert not (cast["tmp"] / "x").exists()


def test_tools_are_listed_with_their_handling(cast: dict[str, Any]) -> None:
    register_likeness(cast)  # automatic1111, first seen here: unknown handling
    [tool] = run_json("-w", cast["ws"], "tools", "list")["tools"]
    assert (tool["name"], tool["vetted"], tool["stores_inputs"], tool["assets"]) == (
        "automatic1111", False, "unknown", 1
    )  # fmt: skip
    ok(cli(cast, "lena", "tools", "add", "AUTOMATIC1111", "--stores-inputs", "yes",
           "--trains-on-inputs", "no", "--enterprise-secured", "no"))  # fmt: skip
    ok(cli(cast, "ada", "tools", "add", "automatic1111", "--stores-inputs", "no",
           "--trains-on-inputs", "no", "--enterprise-secured", "yes"))  # fmt: skip
    shown = run_json("-w", cast["ws"], "tools", "show", "automatic1111")
    assert [h["stores_inputs"] for h in shown["history"]] == ["yes", "no"]
    assert (shown["stores_inputs"], shown["vetted_by"]) == ("no", "ada")
    assert "automatic1111" in run("-w", cast["ws"], "tools", "list").stdout


def test_the_demo_production_has_a_disclosure_summary(tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    ok(run("demo", ws))
    out = tmp_path / "disclosure"
    ok(run("-w", ws, "export", "production", "Demo", "--out", out, "--as-of", "2026-11-22"))
    summary = json.loads((out / "disclosure.json").read_text())
    jsonschema.validate(summary, schema_document("disclosure-1"))
    assert summary["totals"]["assets"] == 11  # ten stills and the animatic
    uses = {c["intended_use"]: c["count"] for c in summary["categories"]}
    assert sum(uses.values()) == 11
    assert uses["ideation"] == 3
    # The summary reads every asset's declarations and approvals in a few queries; each row
    # says what the asset's own status says.
    rows = [row for category in summary["categories"] for row in category["assets"]]
    assert any(row["approvals"] for row in rows)
    for row in rows:
        own = run_json("-w", ws, "status", row["asset_id"], "--as-of", "2026-11-22")
        assert row["missing"] == own["policy"]["missing"]
        assert row["cleared_for_final"] == own["policy"]["cleared_for_final"]
        assert [a["approval_id"] for a in row["approvals"]] == [
            a["approval_id"] for a in own["approvals"] if a["withdrawn"] is None
        ]
    again = tmp_path / "again"
    ok(run("-w", ws, "export", "production", "Demo", "--out", again, "--as-of", "2026-11-22"))
    assert (again / "disclosure.json").read_bytes() == (out / "disclosure.json").read_bytes()
    for record_file in sorted((out / "assets").glob("asset-*.json")):
        jsonschema.validate(json.loads(record_file.read_text()), schema_document("record-1"))
    assert len(list((out / "assets").glob("*.html"))) == 11
    # The composite's pack outlines where the reference was found: the verified polygon.
    [composite] = [
        path
        for path in (out / "assets").glob("asset-*.json")
        if json.loads(path.read_text())["asset"]["original_name"] == "sh050_wall_v001.png"
    ]
    page = composite.with_suffix(".html").read_text()
    assert "outlined: the matched polygon where the strongest reference was found" in page
    assert "Geometric check: the reference appears in the right part: " in page
    text = pypdfium2.PdfDocument(str(out / "disclosure.pdf"))[0].get_textpage().get_text_range()
    assert "Generative AI disclosure: Demo" in text


def test_making_a_pdf_leaves_image_decoding_strict(tmp_path: Path) -> None:
    """WeasyPrint switches Pillow to accept truncated files when imported; decoding must
    still refuse them afterwards (in a server that has exported a pack, for one)."""
    from provenance.errors import CorruptMedia
    from provenance.export.evidence import to_pdf
    from provenance.media import decode_image

    assert to_pdf("<p>x</p>").startswith(b"%PDF")
    path = tmp_path / "cut.jpg"
    fm.sample("coffee.jpg").save(path, quality=90)
    data = path.read_bytes()
    with pytest.raises(CorruptMedia):
        decode_image(data[: len(data) // 2], max_pixels=10**8)


def test_temporary_material_past_its_expiry_is_reported(cast: dict[str, Any]) -> None:
    ws = cast["ws"]
    sketch = cast["tmp"] / "sketch.png"
    fm.sample("chelsea.png").save(sketch)
    result = ok(cli(cast, "arti", "register", sketch, "--use", "ideation", "--json"))
    asset = json.loads(result.stdout)["results"][0]["asset"]["id"]
    assert "expiry-date" in missing(cast, asset)
    ok(cli(cast, "arti", "declare", asset, "--expires", "2026-12-31"))
    assert "expiry-date" not in missing(cast, asset)
    assert run_json("-w", ws, "expired", "--as-of", "2026-12-31")["assets"] == []
    [late] = run_json("-w", ws, "expired", "--as-of", "2027-01-05")["assets"]
    assert (late["asset_id"], late["expires"], late["days_past"]) == (asset, "2026-12-31", 5)
    assert "sketch.png" in run("-w", ws, "expired", "--as-of", "2027-01-05").stdout
    findings = run_json("-w", ws, "status", asset, "--as-of", "2027-01-05")["policy"]["findings"]
    assert "past-expiry" in [f["key"] for f in findings]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE approvals SET approver = 'Someone else'", "row 1 of approvals was altered"),
        ("UPDATE consents SET expires = '2099-12-31'", "row 1 of consents was altered"),
        ("DELETE FROM withdrawals", "row 1 of withdrawals, recorded by audit event"),
        ("UPDATE checks SET verdict = 'clear'", "row 1 of checks was altered"),
        ("UPDATE matches SET score = 0.1", "of matches was altered"),
        ("DELETE FROM matches", "of matches, recorded by audit event"),
    ],
)
def test_audit_verify_catches_tampered_clearance_records(
    cast: dict[str, Any], statement: str, message: str
) -> None:
    ws, docs = cast["ws"], cast["docs"]
    asset = register_likeness(cast)
    ok(cli(cast, "arti", "declare", asset, "--talent", "Eileen Collins"))
    ok(cli(cast, "lena", "consent", "add", "--talent", "Eileen Collins", "--scope", "likeness",
           "--document", docs / "consent.pdf", "--expires", "2027-12-31"))  # fmt: skip
    ok(cli(cast, "lena", "approve", asset, "--approver", "J. Doe", "--reference", "memo",
           "--document", docs / "approval.eml"))  # fmt: skip
    ok(cli(cast, "lena", "withdraw", "approval", "1", "--reason", "recut"))
    assert run_json("-w", ws, "audit", "verify")["ok"] is True
    sql(ws, statement)
    broken = run("-w", ws, "audit", "verify")
    assert broken.exit_code == 1
    assert message in broken.stderr


def test_no_pdf_writes_the_record_and_the_page_only(cast: dict[str, Any]) -> None:
    asset = register_likeness(cast)
    out = cast["tmp"] / "light"
    ok(run("-w", cast["ws"], "export", "asset", asset, "--out", out, "--no-pdf"))
    assert sorted(p.name for p in out.iterdir()) == [
        f"asset-{asset}.html", f"asset-{asset}.json", "audit-anchor.json"
    ]  # fmt: skip
    assert oct((out / f"asset-{asset}.json").stat().st_mode & 0o777) == "0o644"


def register_background(cast: dict[str, Any], name: str, sample: str, tool: str) -> Any:
    """Register a sample picture as arti's background made with ``tool``; its result."""
    picture = cast["tmp"] / name
    fm.sample(sample).save(picture)
    result = ok(cli(cast, "arti", "register", picture, "--use", "background", "--tool", tool,
                    "--json"))  # fmt: skip
    return json.loads(result.stdout)["results"][0]


def test_a_background_needs_approval_vetting_and_human_revision_to_be_cleared_for_final(
    cast: dict[str, Any],
) -> None:
    """The guidance's own example: background art seen on screen needs written approval
    before it goes into a final deliverable, whatever use was declared."""
    registered = register_background(cast, "sh090_signage_v002.png", "rocket.jpg", "NewGen")
    asset = registered["asset"]["id"]
    assert registered["check"]["verdict"] == "clear"
    status = run_json("-w", cast["ws"], "status", asset)
    assert status["policy"]["cleared_for_final"] is False
    assert {"approval:final-use", "approval:tool:NewGen", "human-revision"} == set(
        status["policy"]["missing"]
    )
    guidelines = {r["key"]: r["guideline"] for r in status["policy"]["requirements"]}
    assert guidelines["approval:final-use"] == "approval-final"
    assert guidelines["human-revision"] == "final-human-input"

    ok(cli(cast, "lena", "tools", "add", "NewGen", "--stores-inputs", "no",
           "--trains-on-inputs", "no", "--enterprise-secured", "yes"))  # fmt: skip
    assert missing(cast, asset) == {"approval:final-use", "human-revision"}
    ok(cli(cast, "arti", "revise", asset, "--revised-by", "arti",
           "--how", "Repainted the signage lettering and regraded the plate"))  # fmt: skip
    assert missing(cast, asset) == {"approval:final-use"}
    assert "NOT cleared" in ok(run("-w", cast["ws"], "status", asset)).stdout
    ok(cli(cast, "lena", "approve", asset, "--approver", "Studio contact",
           "--reference", "email sh090", "--document", cast["docs"] / "approval.eml"))  # fmt: skip
    status = run_json("-w", cast["ws"], "status", asset)
    assert status["policy"]["cleared_for_final"] is True
    assert status["revisions"][0]["how"].startswith("Repainted the signage")
    assert status["approvals"][0]["covers"] == ["final-use"]
    assert status["approvals"][0]["check_id"] == registered["check"]["check_id"]
    ok(run("-w", cast["ws"], "export", "asset", asset, "--out", cast["tmp"] / "out", "--no-pdf"))
    pack = next((cast["tmp"] / "out").rglob("*.html")).read_text(encoding="utf-8")
    assert "Repainted the signage lettering" in pack
    ok(run("-w", cast["ws"], "audit", "verify"))


def test_an_unvetted_tool_can_be_approved_instead_of_vetted(cast: dict[str, Any]) -> None:
    asset = register_background(cast, "sh091_sky.png", "hubble_deep_field.jpg", "cloudgen")[
        "asset"
    ]["id"]
    ok(cli(cast, "amy", "revise", asset, "--revised-by", "amy", "--how", "Re-lit by hand"))
    ok(cli(cast, "lena", "approve", asset, "--approver", "Studio contact",
           "--reference", "email sh091", "--document", cast["docs"] / "approval.eml"))  # fmt: skip
    status = run_json("-w", cast["ws"], "status", asset)
    assert status["approvals"][0]["covers"] == ["final-use", "tool:cloudgen"]
    assert status["policy"]["cleared_for_final"] is True
