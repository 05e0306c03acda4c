"""The REST API over HTTP (FastAPI's test client on the real app and a real workspace):
every route as every role, error shapes, pagination, conflicts, and the committed schema."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provenance import Workspace, assets, processes
from provenance.clearance import MAX_DOCUMENT_BYTES
from provenance.scoring import nearest_words, score_words
from provenance.web import uploads
from provenance.web.app import create_app, openapi_text
from tests import filemakers as fm
from tests.conftest import run, snapshot, sql
from tests.team import as_user, build_team

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api(workspace_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    team = build_team(workspace_dir, tmp_path)
    admin = as_user(team["tokens"]["ada"])
    assert (
        run("-w", workspace_dir, "users", "add", "amy", "--role", "artist", env=admin).exit_code
        == 0
    )
    team["tokens"]["amy"] = run(
        "-w", workspace_dir, "users", "token", "amy", env=admin
    ).stdout.strip()
    with Workspace.open(workspace_dir) as workspace, TestClient(create_app(workspace)) as client:
        yield {**team, "client": client}


def call(api: dict[str, Any], who: str | None, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {api['tokens'][who]}"} if who else {}
    return api["client"].request(method, path, headers=headers, **kwargs)


# Who may read what. "arti" registered every asset of the team; "amy" is another artist.
READS = [
    ("/api/v1/me", {"arti", "amy", "rosa", "lena", "ada"}),
    ("/api/v1/assets", {"arti", "amy", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}/checks", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}/matches", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}/reviews", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}/history", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}/notes", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/assets/{shot}/status", {"arti", "rosa", "lena", "ada"}),
    ("/api/v1/reference-sets", {"rosa", "lena", "ada"}),
    ("/api/v1/reference-sets/studio-ip", {"rosa", "lena", "ada"}),
    ("/api/v1/queue", {"rosa", "lena", "ada"}),
]
EVERYONE = ("arti", "amy", "rosa", "lena", "ada")


def test_role_matrix(api: dict[str, Any]) -> None:
    """Every route as every role (and without a token): allowed or denied as the rules say."""
    shot = api["ids"]["shot010"]
    routes = {path for path, _ in READS} | {
        "/api/v1/reviews",
        "/api/v1/assets/{shot}/approvals",
        "/api/v1/assets/{shot}/claim",
    }
    assert routes == _api_routes(), "a route is missing from the role matrix"
    for path, allowed in READS:
        url = path.format(shot=shot)
        for who in EVERYONE:
            answer = call(api, who, "GET", url)
            expected = 200 if who in allowed else 403
            assert answer.status_code == expected, (url, who, answer.text)
            assert answer.json()["ok"] is (expected == 200)
        anonymous = call(api, None, "GET", url)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        forged = api["client"].get(url, headers={"Authorization": "Bearer pvt_forged"})
        assert forged.status_code == 401
    # Deciding: the artist, the admin and legal (the asset is flagged, not escalated) are
    # refused and nothing is written; the reviewer's decision is recorded.
    body = {
        "asset_id": shot,
        "decision": "approve",
        "rationale": "ok",
        "previous_decision_id": None,
    }
    before = snapshot(api["ws"])
    for who in ("arti", "amy", "ada", "lena"):
        answer = call(api, who, "POST", "/api/v1/reviews", json=body)
        assert answer.status_code == 403, (who, answer.text)
        assert answer.json()["error"]["type"] == "AccessDenied"
    assert call(api, None, "POST", "/api/v1/reviews", json=body).status_code == 401
    assert snapshot(api["ws"]) == before
    made = call(api, "rosa", "POST", "/api/v1/reviews", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["item"]["outcome"] == "approved"
    # Recording the studio's written approval: legal only.
    approvals = f"/api/v1/assets/{shot}/approvals"
    form = {"approver": "J. Doe, studio", "reference": "email of 2026-11-20"}

    def upload() -> dict[str, Any]:
        return {"document": ("approval.eml", b"From: studio\n\nApproved.\n", "message/rfc822")}

    before = snapshot(api["ws"])
    for who in ("arti", "amy", "rosa", "ada"):
        answer = call(api, who, "POST", approvals, data=form, files=upload())
        assert answer.status_code == 403, (who, answer.text)
        assert answer.json()["error"]["type"] == "AccessDenied"
    assert call(api, None, "POST", approvals, data=form, files=upload()).status_code == 401
    assert snapshot(api["ws"]) == before
    recorded = call(api, "lena", "POST", approvals, data=form, files=upload())
    assert recorded.status_code == 201, recorded.text
    item = recorded.json()["item"]
    assert (item["recorded_by"], item["document_name"]) == ("lena", "approval.eml")
    assert item["covers"]


def _api_routes() -> set[str]:
    schema = json.loads(openapi_text())
    return {
        p.replace("{asset_id}", "{shot}").replace("{name}", "studio-ip") for p in schema["paths"]
    }


def test_artists_see_only_their_own_assets(api: dict[str, Any]) -> None:
    mine = call(api, "arti", "GET", "/api/v1/assets").json()
    assert mine["total"] == 3
    assert call(api, "amy", "GET", "/api/v1/assets").json()["total"] == 0
    denied = call(api, "amy", "GET", f"/api/v1/assets/{api['ids']['shot010']}")
    assert denied.json() == {
        "ok": False,
        "error": {
            "type": "AccessDenied",
            "message": "artists read only the assets they registered",
        },
    }


def test_the_registrant_cannot_sign_off_even_as_a_reviewer(
    api: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "rosas.png"
    fm.jpeg_reencode(fm.sample("coffee.jpg"), 60).save(path)
    registered = run(
        "-w", api["ws"], "register", path, "--json", env=as_user(api["tokens"]["rosa"])
    )
    asset = json.loads(registered.stdout)["results"][0]["asset"]["id"]
    body = {
        "asset_id": asset,
        "decision": "approve",
        "rationale": "mine",
        "previous_decision_id": None,
    }
    answer = call(api, "rosa", "POST", "/api/v1/reviews", json=body)
    assert answer.status_code == 403
    assert "separation of duties" in answer.json()["error"]["message"]
    assert call(api, "ravi", "POST", "/api/v1/reviews", json=body).status_code == 201


def test_a_stale_decision_is_a_conflict(api: dict[str, Any]) -> None:
    shot = api["ids"]["shot020"]
    body = {
        "asset_id": shot,
        "decision": "reject",
        "rationale": "close",
        "previous_decision_id": None,
    }
    first = call(api, "rosa", "POST", "/api/v1/reviews", json=body)
    assert first.status_code == 201
    second = call(api, "ravi", "POST", "/api/v1/reviews", json={**body, "decision": "approve"})
    assert second.status_code == 409
    assert "decided meanwhile" in second.json()["error"]["message"]
    previous = first.json()["item"]["review_id"]
    replaced = call(
        api, "ravi", "POST", "/api/v1/reviews",
        json={**body, "decision": "approve", "previous_decision_id": previous},
    )  # fmt: skip
    assert replaced.status_code == 201
    history = call(api, "lena", "GET", f"/api/v1/assets/{shot}/reviews").json()
    assert [d["decision"] for d in history["items"]] == ["reject", "approve"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("GET", "/api/v1/assets/99999", None, 404, "NotFound"),
        ("GET", "/api/v1/reference-sets/nope", None, 404, "NotFound"),
        ("GET", "/api/v1/assets?limit=0", None, 422, "InvalidInput"),
        ("GET", "/api/v1/assets?limit=501", None, 422, "InvalidInput"),
        ("GET", "/api/v1/assets?offset=100000000000000000000", None, 422, "InvalidInput"),
        ("GET", "/api/v1/assets/99999999999", None, 404, "NotFound"),
        ("GET", "/api/v1/queue?sort=random", None, 422, "InvalidInput"),
        ("GET", "/api/v1/nothing-here", None, 404, "HTTPError"),
        ("POST", "/api/v1/reviews", {"asset_id": 1}, 422, "InvalidInput"),
        ("POST", "/api/v1/reviews", {"asset_id": 1, "decision": "bless", "rationale": "x",
                                     "previous_decision_id": None}, 422, "InvalidInput"),
        ("POST", "/api/v1/reviews", {"asset_id": 1, "decision": "approve", "rationale": "  ",
                                     "previous_decision_id": None}, 422, "InvalidInput"),
        ("POST", "/api/v1/reviews", {"asset_id": 99999, "decision": "approve", "rationale": "x",
                                     "previous_decision_id": None}, 404, "NotFound"),
    ],
)  # fmt: skip
def test_errors_have_one_shape(
    api: dict[str, Any], method: str, path: str, body: Any, status: int, kind: str
) -> None:
    before = snapshot(api["ws"])
    answer = call(api, "rosa", method, path, json=body)
    assert answer.status_code == status, answer.text
    document = answer.json()
    assert document["ok"] is False
    assert document["error"]["type"] == kind
    assert document["error"]["message"]
    assert snapshot(api["ws"]) == before


def test_lists_are_paged(api: dict[str, Any]) -> None:
    first = call(api, "rosa", "GET", "/api/v1/assets?limit=2").json()
    rest = call(api, "rosa", "GET", "/api/v1/assets?limit=2&offset=2").json()
    assert (first["total"], len(first["items"]), len(rest["items"])) == (3, 2, 1)
    ids = [a["id"] for a in first["items"] + rest["items"]]
    assert ids == sorted(set(ids))
    flagged = call(api, "rosa", "GET", "/api/v1/assets?status=flagged").json()
    assert flagged["total"] == 2
    queue = call(api, "rosa", "GET", "/api/v1/queue?verdict=high&limit=1").json()
    assert (queue["total"], len(queue["items"])) == (2, 1)
    matches = call(api, "rosa", "GET", f"/api/v1/assets/{api['ids']['shot010']}/matches").json()
    assert matches["items"][0]["reference_set"] == "studio-ip"


def test_openapi_schema_is_served_and_committed(api: dict[str, Any]) -> None:
    served = api["client"].get("/api/v1/openapi.json").json()
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert served == committed, "regenerate: provenance serve --print-openapi > docs/openapi.json"
    assert run("serve", "--print-openapi").stdout == (ROOT / "docs" / "openapi.json").read_text()


def test_images_are_served_by_content_hash_only(api: dict[str, Any]) -> None:
    client = api["client"]
    sign_in(client, api["tokens"]["rosa"])
    with Workspace.open(api["ws"]) as workspace:
        sha = assets.show(workspace, str(api["ids"]["shot010"]))["sha256"]
    picture = client.get(f"/thumbs/160/{sha}.jpg")
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/jpeg"
    assert picture.content[:2] == b"\xff\xd8"
    cached = api["ws"] / "thumbnails" / "160" / sha[:2] / f"{sha}.jpg"
    assert cached.read_bytes() == picture.content
    for bad in ("../../provenance.toml", "%2e%2e%2fprovenance.toml", "0" * 64, sha[:-1] + "x"):
        assert client.get(f"/thumbs/160/{bad}.jpg").status_code == 404, bad
    assert client.get(f"/thumbs/999/{sha}.jpg").status_code == 404
    # Another artist does not see arti's pictures; arti does.
    with TestClient(client.app) as other:
        sign_in(other, api["tokens"]["amy"])
        assert other.get(f"/thumbs/160/{sha}.jpg").status_code == 404
        sign_in(other, api["tokens"]["arti"])
        assert other.get(f"/thumbs/160/{sha}.jpg").status_code == 200
    with TestClient(client.app) as anonymous:
        refused = anonymous.get(f"/thumbs/160/{sha}.jpg", follow_redirects=False)
        assert (refused.status_code, refused.headers["location"]) == (303, "/signin")


def sign_in(client: TestClient, token: str) -> None:
    nonce = client.get("/signin").cookies.get("provenance_signin")
    signed = client.post("/signin", data={"token": token, "nonce": nonce}, follow_redirects=False)
    assert signed.status_code == 303
    assert "provenance_session" in signed.cookies


def test_a_session_ends_when_its_token_is_replaced_and_forms_need_csrf(
    api: dict[str, Any],
) -> None:
    client = api["client"]
    sign_in(client, api["tokens"]["ravi"])
    assert client.get("/queue").status_code == 200
    shot = api["ids"]["shot010"]
    form = {"decision": "approve", "rationale": "ok", "previous": "", "back": ""}
    before = snapshot(api["ws"])
    refused = client.post(f"/assets/{shot}/review", data={**form, "csrf": "forged"})
    assert refused.status_code == 403
    assert "did not come from this site" in refused.text
    assert snapshot(api["ws"]) == before
    page = client.get(f"/assets/{shot}").text
    csrf = page.split('name="csrf" value="', 2)[2].split('"', 1)[0]  # the sign-off form's
    made = client.post(
        f"/assets/{shot}/review", data={**form, "csrf": csrf}, follow_redirects=False
    )
    assert made.status_code == 303
    # On to the next asset of the reviewer's queue.
    assert made.headers["location"] == f"/assets/{api['ids']['shot020']}?back=&done=1"
    # A forged cookie is no session; a new token for ravi ends the one he had.
    admin = as_user(api["tokens"]["ada"])
    assert run("-w", api["ws"], "users", "token", "ravi", env=admin).exit_code == 0
    gone = client.get("/queue", follow_redirects=False)
    assert (gone.status_code, gone.headers["location"]) == (303, "/signin")
    client.cookies.set("provenance_session", "e30.0000")
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_hostile_cookies_and_form_fields_are_refused_not_crashed(api: dict[str, Any]) -> None:
    client = api["client"]
    shot = api["ids"]["shot010"]
    raw = {"cookie": "provenance_session=e30.\u00e9\u00e9".encode()}  # bytes a browser may send
    assert client.get("/queue", headers=raw, follow_redirects=False).status_code == 303
    sign_in(client, api["tokens"]["rosa"])
    form = {"decision": "approve", "rationale": "ok", "previous": "", "csrf": "\u00e9t\u00e9"}
    assert client.post(f"/assets/{shot}/review", data=form).status_code == 403
    client.cookies.set("provenance_signin", "abc", path="/signin")
    answer = client.post("/signin", data={"token": "x", "nonce": "\u00e9"}, follow_redirects=False)
    assert answer.status_code == 303


@pytest.mark.parametrize(
    ("form", "files", "message"),
    [
        ({"approver": "J", "reference": "r"}, None, "document"),
        ({"reference": "r"}, {"document": ("a.eml", b"x")}, "approver"),
        ({"approver": "J", "reference": "r"}, {"document": ("a.eml", b"")}, "document is empty"),
        ({"approver": "J\x00", "reference": "r"}, {"document": ("a.eml", b"x")}, "NUL"),
        ({"approver": " ", "reference": "r"}, {"document": ("a.eml", b"x")}, "is required"),
    ],
)
def test_a_bad_approval_upload_is_refused_and_writes_nothing(
    api: dict[str, Any], form: dict[str, str], files: dict[str, Any] | None, message: str
) -> None:
    before = snapshot(api["ws"])
    path = f"/api/v1/assets/{api['ids']['shot010']}/approvals"
    answer = call(api, "lena", "POST", path, data=form, files=files)
    assert answer.status_code == 422, answer.text
    assert answer.json()["ok"] is False
    assert message in answer.json()["error"]["message"]
    assert snapshot(api["ws"]) == before


def test_an_oversized_body_is_refused_before_anyone_is_asked_who_they_are(
    api: dict[str, Any],
) -> None:
    """Bodies are small except a signed document's upload; a larger one is a 413 in the API's
    error shape, without a token even, and nothing is written."""
    before = snapshot(api["ws"])
    big = api["client"].post(
        "/api/v1/reviews",
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413
    assert big.json()["ok"] is False
    path = f"/api/v1/assets/{api['ids']['shot010']}/approvals"
    huge = b"\0" * (uploads.UPLOAD_BODY_LIMIT + 1)
    refused = call(api, "lena", "POST", path, data={"approver": "J", "reference": "r"},
                   files={"document": ("big.pdf", huge)})  # fmt: skip
    assert refused.status_code == 413
    assert refused.json()["ok"] is False
    assert snapshot(api["ws"]) == before
    # A document one byte over its limit, in a body the route still reads, is refused too.
    over = call(api, "lena", "POST", path, data={"approver": "J", "reference": "r"},
                files={"document": ("over.pdf", b"\0" * (MAX_DOCUMENT_BYTES + 1))})  # fmt: skip
    assert over.status_code == 422
    assert (
        "over.pdf: document is 104,857,601 bytes, over 100 MiB" in over.json()["error"]["message"]
    )
    assert snapshot(api["ws"]) == before
    # Just under the document limit is taken (and is not refused for its size).
    fits = b"%PDF" + b"\0" * (MAX_DOCUMENT_BYTES - 4)
    taken = call(api, "lena", "POST", path, data={"approver": "J", "reference": "r"},
                 files={"document": ("fits.pdf", fits)})  # fmt: skip
    assert taken.status_code == 201, taken.text[:300]
    assert snapshot(api["ws"]) != before
    assert sql(api["ws"], "SELECT document_name FROM approvals") == [("fits.pdf",)]


def _asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], size: int) -> Any:
    """POST ``size`` bytes to the app straight through ASGI, counting the body bytes the
    app pulls; returns (status, bytes read)."""
    import asyncio

    chunk = b"\0" * 65536
    state = {"sent": 0, "status": None}

    async def receive() -> dict[str, Any]:
        left = size - state["sent"]
        body = chunk[: min(len(chunk), left)]
        state["sent"] += len(body)
        return {"type": "http.request", "body": body, "more_body": state["sent"] < size}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            state["status"] = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        "headers": [
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", str(size).encode()),
            *headers,
        ],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return state["status"], state["sent"]


@pytest.mark.parametrize(
    ("who", "status"), [(None, 401), ("forged", 401), ("rosa", 403), ("arti", 403)]
)
def test_an_upload_from_anyone_but_legal_is_refused_before_its_body_is_read(
    api: dict[str, Any], who: str | None, status: int
) -> None:
    tokens = {**api["tokens"], "forged": "pvt_forged"}
    headers = [(b"authorization", f"Bearer {tokens[who]}".encode())] if who else []
    app = api["client"].app
    for path in (f"/api/v1/assets/{api['ids']['shot010']}/approvals",
                 f"/assets/{api['ids']['shot010']}/approval"):  # fmt: skip
        answer, read = _asgi_post(app, path, headers, 60 * 1024 * 1024)
        expected = status if path.startswith("/api/") or who is None else 401
        assert answer == expected, path
        assert read == 0, f"{read:,} bytes of the 60 MB upload were read"


def test_legals_upload_is_read(api: dict[str, Any]) -> None:
    """The same measurement passes a lawyer's upload on to the route (which reads it)."""
    headers = [(b"authorization", f"Bearer {api['tokens']['lena']}".encode())]
    path = f"/api/v1/assets/{api['ids']['shot010']}/approvals"
    answer, read = _asgi_post(api["client"].app, path, headers, 2 * 1024 * 1024)
    assert read > 0
    assert answer == 400  # the body is no valid form: read, then refused


def test_digits_are_an_asset_id_never_a_hash_prefix(api: dict[str, Any]) -> None:
    [(sha256,)] = sql(api["ws"], "SELECT sha256 FROM assets WHERE id = 1")
    digits = "".join(c for c in sha256 if c.isdigit())[:8]
    assert call(api, "rosa", "GET", f"/api/v1/assets/{digits}").status_code == 404
    assert call(api, "rosa", "GET", "/api/v1/assets/19999126").status_code == 404
    assert call(api, "rosa", "GET", "/api/v1/assets/99999999999999999999999").status_code == 404
    shown = run("-w", api["ws"], "show", f"sha256:{sha256[:10]}", "--json")
    assert json.loads(shown.stdout)["id"] == 1
    assert "no asset with id 19999126" in run("-w", api["ws"], "show", "19999126").stderr


def test_responses_are_not_cached(api: dict[str, Any]) -> None:
    answer = call(api, "rosa", "GET", "/api/v1/queue")
    assert answer.headers["cache-control"] == "no-store"


def test_each_measure_reads_the_same_on_the_command_line_the_pages_and_the_pack(
    api: dict[str, Any], tmp_path: Path
) -> None:
    client, ws = api["client"], api["ws"]
    sign_in(client, api["tokens"]["rosa"])
    lena = as_user(api["tokens"]["lena"])
    for shot in ("shot010", "shot030"):
        asset_id = api["ids"][shot]
        [check] = call(api, "rosa", "GET", f"/api/v1/assets/{asset_id}/checks").json()["items"]
        shown = run("-w", ws, "show", asset_id).stdout
        page = client.get(f"/assets/{asset_id}").text
        out = tmp_path / shot
        assert (
            run("-w", ws, "export", "asset", asset_id, "--out", out, "--no-pdf", env=lena).exit_code
            == 0
        )
        pack = (out / f"asset-{asset_id}.html").read_text()
        if check["verdict"] == "clear":
            words = nearest_words(check)
            assert words.startswith("nearest studio-ip#")
            assert "(review line " in words
            assert f"Clear: {words}." in page
            assert f"Clear: {words}." in pack
            rechecked = run("-w", ws, "check", asset_id, "--by", "rosa").stdout
            assert f"asset {asset_id}: clear; {words}" in rechecked
            continue
        best = check["reasons"][0]
        words = score_words(best["detector"], best["score"], best["thresholds"]["higher_is_closer"])
        assert words in shown
        assert words in page
        assert words in pack
        assert words in client.get("/queue").text
        # Every score on the page is in a detector's unit: no bare numbers.
        for cell in re.findall(r'data-testid="score">([^<]*)<', page):
            assert re.fullmatch(r"cosine \d\.\d{3}|\d+ bits differ|\d+ matched points", cell)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_notes_claims_and_next_in_the_queue(api: dict[str, Any]) -> None:
    client, ws, ids = api["client"], api["ws"], api["ids"]
    sign_in(client, api["tokens"]["rosa"])
    queue = client.get("/queue").text
    # A reviewer's queue is what reviewers decide: the two flags.
    assert re.findall(r'data-asset="(\d+)"', queue) == [str(ids["shot010"]), str(ids["shot020"])]
    assert 'value="flagged" selected' in queue
    first, second = ids["shot010"], ids["shot020"]
    back = "status=flagged&sort=score"
    page = client.get(f"/assets/{first}", params={"back": back}).text
    assert f'href="/assets/{second}?back=' in page
    assert 'data-testid="position">1 of 2<' in page
    csrf = _csrf(page)
    # A note, a reply to it, and a hostile one shown as text.
    posted = client.post(
        f"/assets/{first}/notes",
        data={"text": "Is the helmet <b>ours</b>?", "csrf": csrf, "back": back},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    note_id = int(posted.headers["location"].rsplit("#note-", 1)[1])
    sign_in(client, api["tokens"]["arti"])
    csrf = _csrf(client.get(f"/assets/{first}").text)
    reply = client.post(
        f"/assets/{first}/notes",
        data={"text": "Yes: licensed, see ticket 12", "reply_to": str(note_id), "csrf": csrf},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    [thread] = assets_notes(ws, first)
    assert (thread["author"], thread["role"], thread["text"]) == (
        "rosa", "reviewer", "Is the helmet <b>ours</b>?"
    )  # fmt: skip
    assert [(r["author"], r["reply_to"]) for r in thread["replies"]] == [("arti", note_id)]
    events = run("-w", ws, "audit", "verify").stdout
    assert "Audit chain OK" in events
    # Claiming: rosa claims, ravi is told who is on it; the queue shows it.
    sign_in(client, api["tokens"]["rosa"])
    page = client.get(f"/assets/{first}", params={"back": back}).text
    assert "Is the helmet &lt;b&gt;ours&lt;/b&gt;?" in page
    claimed = client.post(
        f"/assets/{first}/claim", data={"csrf": _csrf(page), "back": back}, follow_redirects=False
    )
    assert claimed.status_code == 303
    assert "You are on this one" in client.get(f"/assets/{first}").text
    sign_in(client, api["tokens"]["ravi"])
    queue = client.get("/queue").text
    assert '<td data-testid="claimed-by">rosa</td>' in queue
    page = client.get(f"/assets/{first}").text
    assert "<strong>rosa</strong> is on this one" in page
    refused = client.post(f"/assets/{first}/claim", data={"csrf": _csrf(page)})
    assert refused.status_code == 409
    assert "rosa has claimed asset" in refused.text
    # Rosa decides: the claim ends and the page goes on to the next asset of her queue.
    sign_in(client, api["tokens"]["rosa"])
    page = client.get(f"/assets/{first}", params={"back": back}).text
    decided = client.post(
        f"/assets/{first}/review",
        data={
            "decision": "escalate",
            "rationale": "helmet logo",
            "previous": "",
            "check": re.search(r'name="check" value="(\d+)"', page).group(1),
            "csrf": _csrf(page),
            "back": back,
        },
        follow_redirects=False,
    )
    assert decided.status_code == 303
    assert decided.headers["location"].startswith(f"/assets/{second}?")
    assert "status%3Dflagged" in decided.headers["location"]
    following = client.get(decided.headers["location"]).text
    assert "this is the next asset in the queue" in following
    assert '<td data-testid="claimed-by"></td>' in client.get("/queue?status=any").text
    # Legal's queue is the escalation.
    sign_in(client, api["tokens"]["lena"])
    legal = client.get("/queue").text
    assert re.findall(r'data-asset="(\d+)"', legal) == [str(first)]
    assert 'value="escalated" selected' in legal


def assets_notes(ws: Path, asset_id: int) -> list[dict[str, Any]]:
    from provenance import triage

    with Workspace.open(ws) as workspace:
        return [note.to_json() for note in triage.notes(workspace, str(asset_id))]


def test_notes_and_claims_over_the_api(api: dict[str, Any]) -> None:
    shot = api["ids"]["shot010"]
    notes, claim = f"/api/v1/assets/{shot}/notes", f"/api/v1/assets/{shot}/claim"
    before = snapshot(api["ws"])
    refused = call(api, "amy", "POST", notes, json={"text": "not mine"})
    assert refused.status_code == 403  # another artist's asset
    assert call(api, "rosa", "POST", notes, json={"text": ""}).status_code == 422
    assert call(api, "rosa", "POST", notes, json={"text": "x", "reply_to": 1}).status_code == 404
    for who in ("arti", "ada", "lena"):  # registrant, admin, legal on a flag: none decides it
        assert call(api, who, "POST", claim).status_code == 403, who
    assert snapshot(api["ws"]) == before
    asked = call(api, "rosa", "POST", notes, json={"text": "Whose helmet?"})
    assert asked.status_code == 201, asked.text
    answer = call(
        api,
        "arti",
        "POST",
        notes,
        json={"text": "Ours", "reply_to": asked.json()["item"]["note_id"]},
    )
    assert answer.status_code == 201
    [thread] = call(api, "lena", "GET", notes).json()["items"]
    assert [r["author"] for r in thread["replies"]] == ["arti"]
    made = call(api, "rosa", "POST", claim)
    assert made.status_code == 201
    assert made.json()["item"]["claimed_by"] == "rosa"
    taken = call(api, "ravi", "POST", claim)
    assert taken.status_code == 409
    assert "rosa has claimed asset" in taken.json()["error"]["message"]
    assert call(api, "ravi", "DELETE", claim).status_code == 403
    assert call(api, "rosa", "DELETE", claim).status_code == 200
    assert call(api, "ravi", "POST", claim).status_code == 201


def test_a_settled_server_process_keeps_its_start_up_objects_out_of_collections() -> None:
    """`provenance serve` settles its heap once started: what it loaded is frozen, so a
    full garbage collection walks only what requests made."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        processes.settle_long_lived()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000, frozen  # modules, the ORM's mappers, the app's routes
        gc.collect()  # a full collection leaves the frozen objects where they are
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
