"""The reviewer pages in a real browser: Debian's Chromium, headless, driven by Playwright,
against `provenance serve`'s application on a real port (SQLite, then PostgreSQL).

Set SCREENSHOT_DIR to keep the asset page's screenshot (the README's picture comes from
here: SCREENSHOT_DIR=docs bash scripts/test.sh -k 'browser and sqlite and reviewer')."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance import Workspace
from provenance.web import pages
from provenance.web.app import create_app
from tests.conftest import run, sql
from tests.serving import serving
from tests.team import HOSTILE_PROMPT, ROLES, build_team

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/system_packages.sh installs it
    if os.environ.get("CI"):
        raise RuntimeError("Debian's chromium is not installed: CI must run the browser tests")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture
def served(db_workspace_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    team = build_team(db_workspace_dir, tmp_path)
    with Workspace.open(db_workspace_dir) as workspace, serving(create_app(workspace)) as url:
        yield {**team, "url": url}


def _normal_scheduling() -> None:
    """Run the browser under the ordinary time-sharing class. A test process that finds
    itself in a real-time class (SCHED_FIFO, seen on the CI machines) would hand it to
    Chromium and Playwright's driver, and a busy-looping real-time child starves both
    cores: the browser tests then hang instead of failing."""
    if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@pytest.fixture
def browser() -> Iterator[Any]:
    _normal_scheduling()
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


def sign_in(
    browser: Any, served: dict[str, Any], who: str, dialogs: list[str] | None = None
) -> Any:
    """A page signed in as ``who``; any dialog a script opens is noted in ``dialogs``."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    seen = dialogs if dialogs is not None else []
    page.on("dialog", lambda dialog: (seen.append(dialog.message), dialog.dismiss()))
    page.goto(served["url"] + "/queue")
    assert page.url.endswith("/signin")  # not signed in yet
    page.fill("#token", served["tokens"][who])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=who]").inner_text() == f"{who} · {ROLES[who]}"
    return page


def test_a_reviewer_works_through_the_queue(browser: Any, served: dict[str, Any]) -> None:
    dialogs: list[str] = []
    page = sign_in(browser, served, "rosa", dialogs)
    assert page.url.startswith(served["url"] + "/queue")
    assert page.locator("[data-testid=total]").inner_text() == "2"
    page.wait_for_load_state("networkidle")
    thumbs = page.eval_on_selector_all(
        "img.thumb", "images => images.map(i => i.complete && i.naturalWidth > 0)"
    )
    assert thumbs == [True, True]

    # Filter the queue to `high`.
    page.select_option("[data-testid=filter-verdict]", "high")
    page.click("[data-testid=apply]")
    page.wait_for_url("**/queue?*verdict=high*")
    rows = page.locator("[data-testid=queue] tbody tr")
    assert rows.count() == 2
    shot = served["ids"]["shot010"]
    page.click(f"tr[data-asset='{shot}'] a")
    page.wait_for_url(f"**/assets/{shot}?*")

    # The generated image and its reference, side by side at the same size.
    pair = page.locator("[data-testid=pair]").first
    generated, reference = (
        pair.locator("[data-testid=generated]"),
        pair.locator("[data-testid=reference]"),
    )
    for image in (generated, reference):
        image.wait_for()
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    frames = pair.locator(".frame")
    left, right = frames.nth(0).bounding_box(), frames.nth(1).bounding_box()
    assert (round(left["width"]), round(left["height"])) == (
        round(right["width"]),
        round(right["height"]),
    )
    assert left["x"] + left["width"] <= right["x"]  # left of it, not below
    assert abs(left["y"] - right["y"]) < 1
    assert "astronaut.jpg" in pair.inner_text()
    assert "fired" in pair.inner_text()

    # The policy's requirements, met and missing.
    requirements = page.locator("[data-testid=requirements]").inner_text()
    assert "missing Similarity review of the high verdict signed off" in requirements
    assert "met Checked against the reference sets" in requirements
    assert "not cleared" in page.locator("[data-testid=cleared]").inner_text().lower()

    # The hostile prompt is shown as text and runs nothing.
    prompt = page.locator("[data-testid=prompt]").inner_text()
    assert "<script>alert(1)</script>" in prompt
    assert page.locator("script:not([src])").count() == 0
    assert dialogs == []
    html = page.content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE_PROMPT not in html

    screenshots = os.environ.get("SCREENSHOT_DIR")
    shot_path = Path(screenshots or served["ws"]) / "asset-page.jpg"
    page.screenshot(path=str(shot_path), type="jpeg", quality=85)
    assert shot_path.stat().st_size > 20_000

    # Approve from the keyboard: `a` chooses, the rationale takes the cursor, Ctrl+Enter.
    page.keyboard.press("a")
    assert page.locator("input[name=decision][value=approve]").is_checked()
    assert page.evaluate("document.activeElement.id") == "rationale"
    page.keyboard.type("Public-domain NASA portrait; the composition is ours.")
    page.keyboard.press("Control+Enter")
    # On to the next asset of the same filtered queue.
    following = served["ids"]["shot020"]
    page.wait_for_url(f"**/assets/{following}?*done=*")
    assert "verdict%3Dhigh" in page.url
    assert "recorded" in page.locator("[data-testid=notice]").inner_text()
    page.click("nav.crumbs >> text=← Queue")
    page.wait_for_url("**/queue?*verdict=high*")
    assert page.locator("[data-testid=total]").inner_text() == "1"
    assert page.locator(f"tr[data-asset='{shot}']").count() == 0

    # The decision is on the asset page, with the rationale.
    page.goto(f"{served['url']}/assets/{shot}")
    decisions = page.locator("[data-testid=decisions]").inner_text()
    assert "approve" in decisions
    assert "rosa (reviewer)" in decisions
    assert "Public-domain NASA portrait" in decisions
    assert page.locator("[data-testid=status]").inner_text().startswith("approved")

    # The audit log verifies after the session, and not after a decision row is altered.
    assert json.loads(run("-w", served["ws"], "audit", "verify", "--json").stdout)["ok"] is True
    sql(served["ws"], "UPDATE reviews SET rationale = 'nothing to see'")
    broken = run("-w", served["ws"], "audit", "verify")
    assert broken.exit_code == 1
    assert "of reviews was altered" in broken.output


def test_the_registrant_is_offered_no_sign_off(browser: Any, served: dict[str, Any]) -> None:
    page = sign_in(browser, served, "arti")
    assert page.url.endswith("/mine")
    shot = served["ids"]["shot020"]
    page.goto(f"{served['url']}/assets/{shot}")
    assert page.locator("[data-testid=signoff]").count() == 0
    assert page.locator("[data-testid=submit]").count() == 0
    assert "You registered this asset" in page.locator("[data-testid=no-signoff]").inner_text()
    # The API answers 403 to the same artist.
    answer = page.request.post(
        f"{served['url']}/api/v1/reviews",
        headers={"Authorization": f"Bearer {served['tokens']['arti']}"},
        data={"asset_id": shot, "decision": "approve", "rationale": "mine",
              "previous_decision_id": None},
    )  # fmt: skip
    assert answer.status == 403
    assert answer.json()["ok"] is False
    # Posting the form anyway (without the page's CSRF token) is refused too.
    forged = page.request.post(
        f"{served['url']}/assets/{shot}/review",
        form={"decision": "approve", "rationale": "mine", "csrf": "x", "previous": ""},
        max_redirects=0,
    )
    assert forged.status == 403
    assert run("-w", served["ws"], "show", shot, "--json").stdout.count('"decided_by"') == 0
    # Artists have no queue.
    page.goto(f"{served['url']}/queue")
    assert page.url.endswith("/mine")


def test_signing_in_with_a_bad_token_is_refused(browser: Any, served: dict[str, Any]) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(served["url"] + "/signin")
    page.fill("#token", "pvt_not-a-token")
    page.click("button[type=submit]")
    page.wait_for_url("**/signin?error=token")
    assert "not valid" in page.locator(".error").inner_text()
    page.goto(served["url"] + "/queue")
    assert page.url.endswith("/signin")


def test_a_long_queue_is_paged_and_a_decision_returns_to_its_page(
    browser: Any, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "QUEUE_PAGE", 1)  # the team's two flagged assets: two pages
    page = sign_in(browser, served, "rosa")
    rows = page.locator("[data-testid=queue] tbody tr")
    assert page.locator("[data-testid=total]").inner_text() == "2"
    assert rows.count() == 1
    assert page.locator("[data-testid=showing]").inner_text() == "1–1 of 2"
    assert page.locator("[data-testid=previous]").count() == 0
    first = rows.first.get_attribute("data-asset")
    page.click("[data-testid=next]")
    page.wait_for_url("**/queue?*page=2*")
    assert page.locator("[data-testid=showing]").inner_text() == "2–2 of 2"
    assert page.locator("[data-testid=next]").count() == 0
    second = rows.first.get_attribute("data-asset")
    assert {first, second} == {str(served["ids"]["shot010"]), str(served["ids"]["shot020"])}

    # Deciding the asset on page 2 returns to the queue, whose last page is now page 1.
    page.click(f"tr[data-asset='{second}'] a")
    page.wait_for_url(f"**/assets/{second}?*")
    page.keyboard.press("a")
    page.keyboard.type("Reviewed on the second page.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/queue?*done=*")
    assert "page=2" in page.url
    assert page.locator("[data-testid=showing]").inner_text() == "1–1 of 1"
    assert [rows.nth(i).get_attribute("data-asset") for i in range(rows.count())] == [first]
    # A page number that is not one is refused plainly, not with a traceback.
    answer = page.request.get(f"{served['url']}/queue?page=abc")
    assert answer.status == 422
    assert "query.page" in answer.text()
    assert "Traceback" not in answer.text()


def test_legal_records_a_written_approval_on_the_asset_page(
    browser: Any, served: dict[str, Any], tmp_path: Path
) -> None:
    shot = served["ids"]["shot010"]
    letter = tmp_path / "approval-shot010.eml"
    letter.write_bytes(b"From: studio contact\n\nApproved for the final cut.\n")
    # A reviewer sees the missing approval but no form, and a forged upload is refused.
    reviewer = sign_in(browser, served, "rosa")
    reviewer.goto(f"{served['url']}/assets/{shot}")
    assert "missing Written approval" in reviewer.locator("[data-testid=requirements]").inner_text()
    assert reviewer.locator("[data-testid=approval-form]").count() == 0
    csrf = reviewer.locator("form.signoff input[name=csrf]").get_attribute("value")
    forged = reviewer.request.post(
        f"{served['url']}/assets/{shot}/approval",
        multipart={"csrf": csrf, "approver": "me", "reference": "x",
                   "document": {"name": "x.eml", "mimeType": "message/rfc822",
                                "buffer": letter.read_bytes()}},
        max_redirects=0,
    )  # fmt: skip
    assert forged.status == 403
    assert sql(served["ws"], "SELECT count(*) FROM approvals") == [(0,)]

    page = sign_in(browser, served, "lena")
    page.goto(f"{served['url']}/assets/{shot}")
    csrf = page.locator("form.approval input[name=csrf]").get_attribute("value")

    def post(asset: int, approver: str) -> Any:
        return page.request.post(
            f"{served['url']}/assets/{asset}/approval",
            multipart={"csrf": csrf, "approver": approver, "reference": "memo",
                       "document": {"name": "a.eml", "mimeType": "message/rfc822",
                                    "buffer": letter.read_bytes()}},
            max_redirects=0,
        )  # fmt: skip

    blank = post(shot, "   ")
    assert blank.status == 422
    assert "--approver is required" in blank.text()
    assert sql(served["ws"], "SELECT count(*) FROM approvals") == [(0,)]
    page.fill("[data-testid=approval-approver]", "J. Doe, studio")
    page.set_input_files("[data-testid=approval-document]", str(letter))
    page.fill("[data-testid=approval-reference]", "email of 2026-11-20 <b>final</b>")
    page.keyboard.press("Control+Enter")  # submits the form being typed in
    page.wait_for_url(f"**/assets/{shot}?*recorded=*")
    assert "recorded" in page.locator("[data-testid=approval-notice]").inner_text()
    assert page.locator("[data-testid=approval-form]").count() == 0  # nothing left to approve
    requirements = page.locator("[data-testid=requirements]").inner_text()
    assert "missing Written approval" not in requirements
    assert "met Written approval" in requirements
    assert "J. Doe, studio" in requirements
    assert "email of 2026-11-20 <b>final</b>" in requirements  # shown as text
    [approval] = json.loads(run("-w", served["ws"], "status", shot, "--json").stdout)["approvals"]
    assert approval["recorded_by"] == "lena"
    assert approval["document_name"] == "approval-shot010.eml"
    digest = approval["document_sha256"]
    stored = served["ws"] / "store" / digest[:2] / digest
    assert stored.read_bytes() == letter.read_bytes()
    # A form showing a check that is no longer the newest is refused: an approval covers
    # only what its approver saw.
    stale = page.request.post(
        f"{served['url']}/assets/{shot}/approval",
        multipart={"csrf": csrf, "approver": "J. Doe", "reference": "memo", "check_id": "999999",
                   "document": {"name": "a.eml", "mimeType": "message/rfc822",
                                "buffer": letter.read_bytes()}},
        max_redirects=0,
    )  # fmt: skip
    assert stale.status == 409
    assert "look at it again" in stale.text()
    assert sql(served["ws"], "SELECT count(*) FROM approvals") == [(1,)]
    assert json.loads(run("-w", served["ws"], "audit", "verify", "--json").stdout)["ok"] is True


def test_a_cookie_used_after_sign_out_is_refused(browser: Any, served: dict[str, Any]) -> None:
    page = sign_in(browser, served, "rosa")
    queue = page.request.get(f"{served['url']}/queue")
    assert queue.headers["cache-control"] == "no-store"
    copied = page.context.cookies()
    page.locator("form.who button").click()
    page.wait_for_url("**/signin")
    # Someone who copied the cookie before the sign-out gets nowhere with it.
    thief = browser.new_context()
    thief.add_cookies(copied)
    stolen = thief.new_page()
    stolen.goto(f"{served['url']}/queue")
    assert stolen.url.endswith("/signin")
    assert sql(served["ws"], "SELECT count(*) FROM web_sessions") == [(0,)]


def test_artists_get_no_reference_pictures(browser: Any, served: dict[str, Any]) -> None:
    [(reference,)] = sql(served["ws"], "SELECT sha256 FROM reference_items LIMIT 1")
    [(own,)] = sql(served["ws"], "SELECT sha256 FROM assets WHERE registered_by = 'arti' LIMIT 1")
    artist = sign_in(browser, served, "arti")
    assert artist.request.get(f"{served['url']}/thumbs/160/{own}.jpg").status == 200
    assert artist.request.get(f"{served['url']}/thumbs/160/{reference}.jpg").status == 404
    reviewer = sign_in(browser, served, "rosa")
    assert reviewer.request.get(f"{served['url']}/thumbs/160/{reference}.jpg").status == 200


def test_failed_sign_ins_are_rate_limited(browser: Any, served: dict[str, Any]) -> None:
    context = browser.new_context()
    page = context.new_page()
    for _ in range(10):
        page.goto(served["url"] + "/signin")
        page.fill("#token", "pvt_guess")
        page.click("button[type=submit]")
        page.wait_for_url("**/signin?error=token")
    page.goto(served["url"] + "/signin")
    page.fill("#token", served["tokens"]["rosa"])  # even the right token waits now
    with page.expect_response(lambda r: r.url.endswith("/signin")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 429
    assert "too many failed sign-ins" in page.content()


def test_a_composite_is_outlined_on_both_pictures(browser: Any, served: dict[str, Any]) -> None:
    from tests import filemakers as fm
    from tests.team import as_user

    # Coffee pasted at 25 % of the area of a larger photograph, a little off its centre.
    path = served["shots"] / "wall.png"
    fm.composite_25(fm.sample("coffee.jpg")).save(path)
    registered = run(
        "-w", served["ws"], "register", path, "--json", env=as_user(served["tokens"]["arti"])
    )
    asset_id = json.loads(registered.stdout)["results"][0]["asset"]["id"]
    page = sign_in(browser, served, "rosa")
    page.goto(f"{served['url']}/assets/{asset_id}")
    pair = page.locator("[data-testid=pair]").first
    generated = pair.locator("[data-testid=generated]")
    reference = pair.locator("[data-testid=reference]")
    for image in (generated, reference):
        image.wait_for()
    assert "coffee.jpg" in pair.inner_text()
    assert "the reference appears in the centre: " in pair.inner_text()
    assert "matched points" in pair.inner_text()
    assert pair.locator("[data-testid=region]").count() == 0  # no crop box beside it

    def box_in(image: Any, outline: Any) -> tuple[float, float, float, float]:
        """The outline's box in fractions of the picture it is drawn on."""
        picture, drawn = image.bounding_box(), outline.bounding_box()
        return (
            (drawn["x"] - picture["x"]) / picture["width"],
            (drawn["y"] - picture["y"]) / picture["height"],
            (drawn["x"] + drawn["width"] - picture["x"]) / picture["width"],
            (drawn["y"] + drawn["height"] - picture["y"]) / picture["height"],
        )

    on_asset = pair.locator("[data-testid=asset-outline]")
    on_reference = pair.locator("[data-testid=reference-outline]")
    assert on_asset.is_visible()
    assert on_reference.is_visible()
    # composite_25 pastes a w x h picture at (w/2 + 40, h/2 + 30) of a 2w x 2h scene.
    w, h = fm.sample("coffee.jpg").size
    left, top = (w / 2 + 40) / (2 * w), (h / 2 + 30) / (2 * h)
    assert box_in(generated, on_asset) == pytest.approx(
        (left, top, left + 0.5, top + 0.5), abs=0.02
    )
    # The whole reference is in the asset: its outline is the reference's own frame.
    assert box_in(reference, on_reference) == pytest.approx((0, 0, 1, 1), abs=0.02)

    # The compare viewer redraws the reference where the asset shows it: their difference
    # is dark inside the pasted region and not outside it.
    from PIL import Image, ImageStat

    def region_mean(png: bytes, box: tuple[float, float, float, float]) -> float:
        with Image.open(io.BytesIO(png)) as shot:
            picture = shot.convert("L")
            width, height = picture.size
            crop = picture.crop(
                (
                    int(box[0] * width),
                    int(box[1] * height),
                    int(box[2] * width),
                    int(box[3] * height),
                )
            )
            return float(ImageStat.Stat(crop).mean[0])

    page.wait_for_function(
        "() => [...document.querySelectorAll('section.compare img.layer')]"
        ".every(i => !i.getAttribute('src') || (i.complete && i.naturalWidth > 0))"
    )
    viewport = page.locator("[data-testid=viewport-asset]")
    inside = (left + 0.05, top + 0.05, left + 0.45, top + 0.45)
    outside = (0.02, 0.02, left - 0.02, 0.98)
    plain = viewport.screenshot()
    page.keyboard.press("d")
    page.wait_for_timeout(200)
    differed = viewport.screenshot()
    assert region_mean(differed, inside) < 0.25 * region_mean(plain, inside)
    assert region_mean(differed, outside) == pytest.approx(region_mean(plain, outside), abs=6)


def test_a_movie_shows_its_matching_frame_and_steps_through_the_range(
    browser: Any, served: dict[str, Any]
) -> None:
    from tests import filemakers as fm
    from tests import vfxmakers as vfx
    from tests.team import as_user

    # Frames 0-23: an unrelated photograph; 24-59: the coffee reference pasted into a scene;
    # 60-83: the unrelated photograph again.
    unrelated = fm.sample("rocket.jpg")
    pasted = fm.composite_25(fm.sample("coffee.jpg"))
    path = vfx.write_movie(
        served["shots"] / "take.mp4",
        [unrelated] * 24 + [pasted] * 36 + [unrelated] * 24,
        size=(640, 480),
    )
    registered = run(
        "-w", served["ws"], "register", path, "--json", env=as_user(served["tokens"]["arti"])
    )
    result = json.loads(registered.stdout)["results"][0]
    asset_id, frames = result["asset"]["id"], result["check"]["frames"]
    [found] = [r for r in frames["ranges"] if r["first"] == 24]
    assert found["last"] == 59
    page = sign_in(browser, served, "rosa")
    page.goto(f"{served['url']}/assets/{asset_id}")
    pair = page.locator("[data-testid=pair]").first
    generated = pair.locator("[data-testid=generated]")
    generated.wait_for()
    assert "h264 movie, 84 frames at 24 fps" in page.locator("p.meta").first.inner_text()
    stepper = pair.locator("[data-testid=frames]")
    assert "frames 24-59 match" in stepper.inner_text()
    matching = [int(f) for f in stepper.get_attribute("data-frames").split(",")]
    assert matching == [f for f in frames["sampled"] if 24 <= f <= 59]  # 24 and 48
    shown = int(pair.locator("[data-testid=frame-label]").inner_text().split()[-1])
    assert shown in matching
    # The frame shown is the movie's frame, not its first: the picture loads from it.
    assert generated.get_attribute("src").endswith(f"/frame/{shown}.jpg")
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", generated.element_handle())
    outline = pair.locator("[data-testid=asset-outline]")
    assert outline.is_visible()  # drawn on the verified frame
    pair.locator("[data-testid=next-frame]").click()
    stepped = int(pair.locator("[data-testid=frame-label]").inner_text().split()[-1])
    assert stepped != shown
    assert stepped in matching
    assert generated.get_attribute("src").endswith(f"/frame/{stepped}.jpg")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=generated.element_handle()
    )
    assert not outline.is_visible()  # the outline belongs to the verified frame only
    page.keyboard.press(",")
    assert pair.locator("[data-testid=frame-label]").inner_text() == f"frame {shown}"
    assert outline.is_visible()


def _mean(png: bytes) -> float:
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as picture:
        return float(sum(ImageStat.Stat(picture.convert("L")).mean))


def _stage_transforms(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "section.compare .stage", "stages => stages.map(s => getComputedStyle(s).transform)"
    )


def test_compare_zooms_both_sides_and_wipes_flickers_and_differences(
    browser: Any, served: dict[str, Any]
) -> None:
    page = sign_in(browser, served, "rosa")
    shot = served["ids"]["shot010"]  # a re-encoded copy of a reference: it verifies
    page.goto(f"{served['url']}/assets/{shot}")
    compare = page.locator("[data-testid=compare]")
    compare.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('section.compare img.layer')]"
        ".every(i => !i.getAttribute('src') || (i.complete && i.naturalWidth > 0))"
    )
    assert "verified match's transform" in page.locator("[data-testid=alignment]").inner_text()
    # The full-size picture, and both sides at the same displayed size.
    natural = page.eval_on_selector("[data-testid=compare-asset]", "i => i.naturalWidth")
    assert natural == 512  # the asset's own width: not a thumbnail
    left = page.locator("[data-testid=viewport-asset]").bounding_box()
    right = page.locator("[data-testid=viewport-reference]").bounding_box()
    assert (round(left["width"]), round(left["height"])) == (
        round(right["width"]),
        round(right["height"]),
    )
    assert left["x"] + left["width"] <= right["x"]
    # Zoom from the keyboard and pan with the mouse: both sides move together.
    page.keyboard.press("+")
    page.keyboard.press("+")
    assert page.locator("[data-testid=zoom-level]").inner_text() == "400 %"
    page.mouse.move(left["x"] + 100, left["y"] + 100)
    page.mouse.down()
    page.mouse.move(left["x"] + 60, left["y"] + 70, steps=4)
    page.mouse.up()
    first, second = _stage_transforms(page)
    assert first == second
    assert first.startswith("matrix(4, 0, 0, 4, ")
    assert first != "matrix(4, 0, 0, 4, 0, 0)"  # panned
    page.keyboard.press("0")
    assert _stage_transforms(page) == ["matrix(1, 0, 0, 1, 0, 0)"] * 2
    viewport = page.locator("[data-testid=viewport-asset]")
    alone = _mean(viewport.screenshot())
    # Difference: a copy aligned on itself is nearly black.
    page.keyboard.press("d")
    assert page.locator("[data-testid=mode-difference]").get_attribute("aria-pressed") == "true"
    assert page.locator("[data-testid=viewport-reference]").is_hidden()
    page.wait_for_timeout(200)
    difference = _mean(viewport.screenshot())
    assert difference < 0.2 * alone, (difference, alone)
    # Wipe: the reference covers the right part, from where the slider (or arrows) put it.
    page.keyboard.press("w")
    assert page.locator("[data-testid=wipe-position]").is_visible()
    overlay = page.locator("[data-testid=compare-overlay]")
    assert overlay.evaluate("o => o.style.clipPath") == "inset(0px 0px 0px 50%)"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert overlay.evaluate("o => o.style.clipPath") == "inset(0px 0px 0px 40%)"
    # Flicker: the reference comes and goes.
    page.keyboard.press("f")
    seen = set()
    for _ in range(8):
        seen.add(overlay.evaluate("o => getComputedStyle(o).visibility"))
        page.wait_for_timeout(150)
    assert seen == {"visible", "hidden"}
    page.keyboard.press("s")
    assert page.locator("[data-testid=viewport-reference]").is_visible()
    # The aligned picture is for reviewing roles only.
    artist = sign_in(browser, served, "arti")
    answer = artist.request.get(f"{served['url']}/assets/{shot}/aligned/studio-ip/1.jpg")
    assert answer.status == 404


def test_notes_claims_and_the_next_asset_in_the_browser(
    browser: Any, served: dict[str, Any]
) -> None:
    dialogs: list[str] = []
    first, second = served["ids"]["shot010"], served["ids"]["shot020"]
    page = sign_in(browser, served, "rosa", dialogs)
    page.select_option("[data-testid=filter-verdict]", "high")
    page.click("[data-testid=apply]")
    page.wait_for_url("**/queue?*verdict=high*")
    page.click(f"tr[data-asset='{first}'] a")
    page.wait_for_url(f"**/assets/{first}?*")
    assert page.locator("[data-testid=position]").inner_text() == "1 of 2"
    assert page.locator("[data-testid=previous-asset]").count() == 0
    # `]` goes to the next asset of the same filtered queue, `[` back.
    page.keyboard.press("]")
    page.wait_for_url(f"**/assets/{second}?*")
    assert "verdict%3Dhigh" in page.url
    page.keyboard.press("[")
    page.wait_for_url(f"**/assets/{first}?*")
    # A note with markup stays text; a reply nests under it.
    page.fill("#note", "<img src=x onerror=alert(1)> whose helmet?")
    page.click("[data-testid=add-note]")
    page.wait_for_url(f"**/assets/{first}?*#note-*")
    note = page.locator("[data-testid=note]").first
    assert "<img src=x onerror=alert(1)> whose helmet?" in note.inner_text()
    assert "rosa (reviewer)" in note.inner_text()
    note.locator("[data-testid=reply]").click()
    note.locator("textarea[name=text]").fill("Checking with the art department")
    with page.expect_navigation():
        note.locator("[data-testid=send-reply]").click()
    nested = page.locator("[data-testid=note] [data-testid=note]")
    assert nested.count() == 1
    assert "Checking with the art department" in nested.inner_text()
    # Claim from the keyboard; a second reviewer sees who is on it and cannot claim it.
    with page.expect_navigation():
        page.keyboard.press("c")
    assert "You are on this one" in page.locator("[data-testid=claim]").inner_text()
    other = sign_in(browser, served, "ravi")
    assert (
        other.locator(f"tr[data-asset='{first}'] [data-testid=claimed-by]").inner_text() == "rosa"
    )
    other.goto(f"{served['url']}/assets/{first}")
    assert "rosa is on this one" in other.locator("[data-testid=claim]").inner_text()
    assert other.locator("[data-testid=claim-button]").count() == 0
    # Rosa decides: the claim ends, and the page moves on to the next asset.
    page.keyboard.press("e")
    page.keyboard.type("Helmet logo: legal should look")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/assets/{second}?*done=*")
    other.goto(f"{served['url']}/queue?status=any")
    assert other.locator(f"tr[data-asset='{first}'] [data-testid=claimed-by]").inner_text() == ""
    # Legal's queue opens on the escalation, with the notes beside it.
    legal = sign_in(browser, served, "lena")
    assert [
        r.get_attribute("data-asset") for r in legal.locator("[data-testid=queue] tbody tr").all()
    ] == [str(first)]
    legal.click(f"tr[data-asset='{first}'] a")
    assert legal.locator("[data-testid=note]").count() == 2
    assert dialogs == []
    assert "Audit chain OK" in run("-w", served["ws"], "audit", "verify").stdout


def test_admins_and_legal_manage_users_sets_tools_and_consents(
    browser: Any, served: dict[str, Any], tmp_path: Path
) -> None:
    from tests import filemakers as fm

    ws = served["ws"]
    admin = sign_in(browser, served, "ada")
    admin.click("[data-testid=manage]")
    admin.wait_for_url("**/manage/users")
    # Users: add one, issue their token (shown once, and it works), disable another.
    admin.fill("[data-testid=user-name]", "nia")
    admin.select_option("[data-testid=user-role]", "reviewer")
    admin.click("[data-testid=add-user-submit]")
    admin.wait_for_url("**/manage/users?done=*")
    assert "Added nia (reviewer)" in admin.locator("[data-testid=notice]").inner_text()
    with admin.expect_navigation():
        admin.click("tr[data-user='nia'] [data-testid=issue-token]")
    token = admin.locator("[data-testid=token]").inner_text()

    def me(token: str) -> int:
        answer = admin.request.get(
            f"{served['url']}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        return int(answer.status)

    assert me(token) == 200
    admin.goto(f"{served['url']}/manage/users")
    assert admin.locator("[data-testid=token]").count() == 0  # shown once only
    admin.click("tr[data-user='ravi'] [data-testid=disable]")
    admin.wait_for_url("**/manage/users?done=*")
    assert me(served["tokens"]["ravi"]) == 401
    assert "disabled" in admin.locator("tr[data-user='ravi']").inner_text()

    # Reference sets: one from uploaded pictures, one from a folder on the server.
    admin.click("[data-testid=tab-reference-sets]")
    admin.wait_for_url("**/manage/reference-sets")
    admin.fill("[data-testid=set-name]", "posters")
    admin.select_option("[data-testid=set-rights]", "licensed")
    admin.set_input_files(
        "[data-testid=set-files]", [str(fm.SAMPLES / "rocket.jpg"), str(fm.SAMPLES / "chelsea.png")]
    )
    staged = set(Path(tempfile.gettempdir()).glob("provenance-upload-*"))
    admin.click("[data-testid=create-set-submit]")
    admin.wait_for_url("**/manage/reference-sets?done=*")
    assert "Created posters: 2 pictures" in admin.locator("[data-testid=notice]").inner_text()
    assert set(Path(tempfile.gettempdir()).glob("provenance-upload-*")) == staged
    folder = tmp_path / "talent-refs"
    folder.mkdir()
    (folder / "hubble.jpg").write_bytes((fm.SAMPLES / "hubble_deep_field.jpg").read_bytes())
    admin.fill("[data-testid=set-name]", "talent-refs")
    admin.select_option("[data-testid=set-rights]", "talent")
    admin.fill("[data-testid=set-folder]", str(folder))
    admin.click("[data-testid=create-set-submit]")
    admin.wait_for_url("**/manage/reference-sets?done=*")
    sets = {
        s["name"]: s
        for s in json.loads(run("-w", ws, "refs", "list", "--json").stdout)["reference_sets"]
    }
    assert (sets["posters"]["items"], sets["posters"]["rights_status"]) == (2, "licensed")
    assert sets["posters"]["source"] == "uploaded through the web pages (2 files)"
    assert (sets["talent-refs"]["items"], sets["talent-refs"]["rights_status"]) == (1, "talent")
    # A bad request changes nothing and says why.
    before = json.loads(run("-w", ws, "refs", "list", "--json").stdout)
    admin.fill("[data-testid=set-name]", "empty")
    with admin.expect_navigation():
        admin.click("[data-testid=create-set-submit]")
    assert "give either pictures to upload or a folder" in admin.content()
    assert json.loads(run("-w", ws, "refs", "list", "--json").stdout) == before

    # Legal: a tool vetting and a consent with its signed release.
    legal = sign_in(browser, served, "lena")
    legal.click("[data-testid=manage]")
    legal.wait_for_url("**/manage/tools")
    assert legal.locator("[data-testid=tab-users]").count() == 0
    legal.fill("[data-testid=tool-name]", "automatic1111")
    legal.select_option("[data-testid=tool-stores_inputs]", "no")
    legal.select_option("[data-testid=tool-trains_on_inputs]", "no")
    legal.select_option("[data-testid=tool-enterprise_secured]", "yes")
    legal.click("[data-testid=vet-tool-submit]")
    legal.wait_for_url("**/manage/tools?done=*")
    assert "by lena" in legal.locator("tr[data-tool='automatic1111']").inner_text()
    tool = json.loads(run("-w", ws, "tools", "show", "automatic1111", "--json").stdout)
    assert (tool["stores_inputs"], tool["enterprise_secured"], tool["vetted_by"]) == (
        "no",
        "yes",
        "lena",
    )
    release = tmp_path / "release.pdf"
    release.write_bytes(b"%PDF-1.4 signed release of Mara Quinn\n")
    legal.click("[data-testid=tab-consents]")
    legal.wait_for_url("**/manage/consents")
    legal.fill("[data-testid=consent-talent]", "Mara Quinn")
    legal.select_option("[data-testid=consent-scope]", "likeness")
    legal.fill("[data-testid=consent-production]", "Nightfall")
    legal.fill("[data-testid=consent-expires]", "2027-06-30")
    legal.set_input_files("[data-testid=consent-document]", str(release))
    legal.click("[data-testid=add-consent-submit]")
    legal.wait_for_url("**/manage/consents?done=*")
    row = legal.locator("[data-testid=consents] tbody tr").first.inner_text()
    assert "Mara Quinn" in row
    assert "release.pdf" in row
    [consent] = json.loads(run("-w", ws, "consent", "list", "--json").stdout)["consents"]
    assert (consent["talent"], consent["production"], consent["recorded_by"]) == (
        "Mara Quinn",
        "Nightfall",
        "lena",
    )

    # A reviewer has no management pages; every change above is in the audit chain.
    reviewer = sign_in(browser, served, "rosa")
    assert reviewer.locator("[data-testid=manage]").count() == 0
    assert reviewer.request.get(f"{served['url']}/manage/users").status == 403
    assert reviewer.request.get(f"{served['url']}/manage/consents").status == 403
    verified = json.loads(run("-w", ws, "audit", "verify", "--json").stdout)
    assert verified["ok"] is True


@pytest.fixture
def sso_served(
    db_workspace_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The team's workspace served with single sign-on through a local identity provider."""
    from tests import oidc_provider

    with oidc_provider.running() as idp:
        monkeypatch.setenv("PROVENANCE_OIDC_ISSUER", idp.issuer)
        monkeypatch.setenv("PROVENANCE_OIDC_CLIENT_ID", oidc_provider.CLIENT_ID)
        monkeypatch.setenv("PROVENANCE_OIDC_CLIENT_SECRET", oidc_provider.CLIENT_SECRET)
        team = build_team(db_workspace_dir, tmp_path)
        with Workspace.open(db_workspace_dir) as workspace, serving(create_app(workspace)) as url:
            yield {**team, "url": url, "idp": idp}


def _sso(browser: Any, served: dict[str, Any], username: str) -> Any:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(served["url"] + "/signin")
    page.click("[data-testid=sso]")
    page.wait_for_url(served["idp"].issuer + "/authorize?*")
    assert "code_challenge_method=S256" in page.url
    page.fill("#idp-user", username)
    page.click("#idp-submit")
    page.wait_for_load_state()
    return page


def test_single_sign_on_through_the_studio_identity_provider(
    browser: Any, sso_served: dict[str, Any]
) -> None:
    served = sso_served
    page = _sso(browser, served, "rosa")
    page.wait_for_url(served["url"] + "/queue")
    assert page.locator("[data-testid=who]").inner_text() == "rosa · reviewer"
    assert page.locator("[data-testid=total]").inner_text() == "2"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["provenance_session"]["httpOnly"] is True
    # The session works like a token's: a decision is recorded as rosa's.
    shot = served["ids"]["shot010"]
    page.goto(f"{served['url']}/assets/{shot}")
    page.keyboard.press("a")
    page.keyboard.type("Signed in through the studio's identity provider.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    decisions = json.loads(run("-w", served["ws"], "show", shot, "--json").stdout)
    assert decisions["review"]["decisions"][-1]["decided_by"] == "rosa"
    # Replaying the provider's answer (the same state and code) opens nothing.
    replay = page.context.request.get(
        f"{served['url']}/signin/sso/callback?state=used&code=used", max_redirects=0
    )
    assert replay.status == 303
    assert "error=sso" in replay.headers["location"]
    # Signing out ends it, and disabling the user ends their single sign-on sessions too.
    again = _sso(browser, served, "ravi")
    again.wait_for_url(served["url"] + "/queue")
    admin = {"PROVENANCE_TOKEN": served["tokens"]["ada"]}
    assert run("-w", served["ws"], "users", "disable", "ravi", env=admin).exit_code == 0
    again.goto(served["url"] + "/queue")
    assert again.url.endswith("/signin")


@pytest.mark.parametrize(
    ("mode", "username", "reason"),
    [
        ("forge", "rosa", "the ID token's signature does not verify"),
        ("audience", "rosa", "the ID token does not hold"),
        ("nonce", "rosa", "the ID token does not hold"),
        ("expired", "rosa", "the ID token does not hold"),
        ("honest", "mallory", "'mallory' is not an active user of this workspace"),
    ],
)
def test_a_forged_or_foreign_id_token_signs_no_one_in(
    browser: Any, sso_served: dict[str, Any], mode: str, username: str, reason: str
) -> None:
    served = sso_served
    served["idp"].mode = mode
    page = _sso(browser, served, username)
    page.wait_for_url(served["url"] + "/signin?*")
    assert reason in page.locator("[data-testid=sso-error]").inner_text()
    assert "provenance_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(served["url"] + "/queue")
    assert page.url.endswith("/signin")
