"""The reviewers' page ``/admin/`` in a real (system) Chromium against a real server: sign in,
accept and edit alt drafts and pick a crop candidate by keyboard, then check over HTTP that
each decision changed what is served. Screenshots land in tests/reviewer_artifacts/."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for
from tests.vlm_server import VlmServer

TOKEN = "reviewer-page-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "reviewer_artifacts"
HERO = {"fit": "crop", "crop": "smart", "ctx": "hero", "w": "640", "h": "360"}
SQUARE_HERO = {**HERO, "w": "400", "h": "400"}
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
EDITED = "Two straw hats hang on a weathered wall."


@pytest.fixture(scope="module")
def vlm() -> Iterator[VlmServer]:
    with VlmServer(mode="logprobs") as server:
        server.alt_token_prob = 0.3  # every alt text is a doubtful draft for a human
        yield server


@pytest.fixture(scope="module")
def server(
    data_root: Path, vlm: VlmServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("reviewer-root")
    (root / "team").mkdir()
    for name, number in (("couple", "12"), ("hats", "03"), ("window", "08")):
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", root / "team" / f"{name}.png")
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("reviewer-data"),
        env=FAST_LANE,
        args=(
            "--vlm-url",
            vlm.url,
            "--admin-token",
            TOKEN,
            "--models-dir",
            str(shared_dir() / "models"),
        ),
    )
    yield running
    running.stop()


def pending(server: LoupeServer, component: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/admin/api/review", params={"component": component}, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def image(server: LoupeServer, path: str, params: dict[str, str]) -> httpx.Response:
    response = httpx.get(f"{server.url}/img/{path}", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response


def crop_header(response: httpx.Response) -> dict[str, str]:
    parts = response.headers["x-loupe-crop"].split(";")
    return dict(part.strip().split("=", 1) for part in parts)


def item(server: LoupeServer, item_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/admin/api/review/{item_id}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_without_a_session_the_page_is_a_login_form(server: LoupeServer) -> None:
    page = httpx.get(f"{server.url}/admin", follow_redirects=True, timeout=10)
    assert page.status_code == 200 and page.url.path == "/admin/"
    assert page.headers["content-security-policy"].startswith(CSP)
    assert page.headers["cache-control"] == "no-store"
    assert 'type="password"' in page.text and 'name="token"' in page.text
    assert "<script" not in page.text and "style=" not in page.text  # nothing inline

    wrong = httpx.post(
        f"{server.url}/admin/login", data={"token": "nope", "reviewer": "x"}, timeout=10
    )
    assert wrong.status_code == 403
    assert "Wrong admin token" in wrong.text and 'name="token"' in wrong.text
    assert "set-cookie" not in wrong.headers

    login = httpx.post(
        f"{server.url}/admin/login",
        data={"token": TOKEN, "reviewer": "Pat <b>O'Neil</b>"},
        timeout=10,
    )
    assert login.status_code == 303 and login.headers["location"] == "/admin/"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
    assert "secure" not in cookie  # plain http on loopback
    jar = httpx.Cookies(login.cookies)
    shell = httpx.get(f"{server.url}/admin/?component=crop", cookies=jar, timeout=10)
    assert shell.status_code == 200
    assert (
        "<b>" not in shell.text and "Pat b O Neil b" in shell.text
    )  # the name is cleaned, escaped
    csrf = re.search(r'<meta name="loupe-csrf" content="([0-9a-f]+)">', shell.text)
    assert csrf is not None
    script = re.search(r'<script src="(/admin/assets/reviewer\.js\?v=\w+)" defer>', shell.text)
    assert script is not None
    asset = httpx.get(server.url + script.group(1), timeout=10)
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{server.url}/admin/assets/nope.js", timeout=10).status_code == 404

    # a cookie session writes only with the CSRF header (an unknown id: nothing is decided)
    url = f"{server.url}/admin/api/review/999999"
    body = {"action": "accept"}
    no_header = httpx.post(url, json=body, cookies=jar, timeout=10)
    assert no_header.status_code == 403 and "X-Loupe-CSRF" in no_header.json()["detail"]
    headers = {"X-Loupe-CSRF": csrf.group(1)}
    assert httpx.post(url, json=body, cookies=jar, headers=headers, timeout=10).status_code == 404

    out = httpx.post(f"{server.url}/admin/logout", cookies=jar, timeout=10)
    assert out.status_code == 303 and 'loupe_session=""' in out.headers["set-cookie"]


def _page_state(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => {
                const q = document.getElementById('queue');
                const img = document.getElementById('picture');
                return {id: q.dataset.itemId, component: q.dataset.itemComponent,
                        loaded: img.complete && img.naturalWidth > 0,
                        counter: document.getElementById('counter').textContent,
                        message: document.getElementById('message').textContent,
                        focus: document.activeElement && document.activeElement.id,
                        seconds: q.dataset.lastSeconds};
            }"""
        )
    )


def _wait_item(page: Any, component: str, not_id: str | None = None) -> dict[str, Any]:
    page.wait_for_function(
        """([component, notId]) => {
            const q = document.getElementById('queue');
            const img = document.getElementById('picture');
            return q.dataset.itemComponent === component && q.dataset.itemId
                && q.dataset.itemId !== notId && img.complete && img.naturalWidth > 0;
        }""",
        arg=[component, not_id or ""],
        timeout=20_000,
    )
    return _page_state(page)


def _wait_decided(page: Any, item_id: str) -> dict[str, Any]:
    page.wait_for_function(
        "id => document.getElementById('queue').dataset.itemId !== id",
        arg=item_id,
        timeout=20_000,
    )
    return _page_state(page)


def _boxes_on_image(page: Any) -> list[dict[str, float]]:
    """Each candidate box's place relative to the shown image, as fractions of its size."""
    return list(
        page.evaluate(
            """() => {
                const img = document.getElementById('picture').getBoundingClientRect();
                return [...document.querySelectorAll('#stage .box')].map(box => {
                    const r = box.getBoundingClientRect();
                    return {x: (r.left - img.left) / img.width, y: (r.top - img.top) / img.height,
                            w: r.width / img.width, h: r.height / img.height,
                            imgw: img.width, imgh: img.height};
                });
            }"""
        )
    )


def _assert_aligned(page: Any, crop_item: dict[str, Any]) -> None:
    source = crop_item["payload"]["source"]
    boxes = _boxes_on_image(page)
    assert len(boxes) == len(crop_item["payload"]["candidates"]) == 3
    for box, candidate in zip(boxes, crop_item["payload"]["candidates"], strict=True):
        tolerance = 2.5 / min(box["imgw"], box["imgh"])  # two pixels and a half on screen
        assert abs(box["x"] - candidate["x"] / source["width"]) <= tolerance, box
        assert abs(box["y"] - candidate["y"] / source["height"]) <= tolerance, box
        assert abs(box["w"] - candidate["width"] / source["width"]) <= tolerance, box
        assert abs(box["h"] - candidate["height"] / source["height"]) <= tolerance, box


def _thumbnails(page: Any) -> list[dict[str, Any]]:
    """The crop thumbnails once loaded: key, place, shown and natural size, caption."""
    page.wait_for_function(
        """() => {
            const imgs = [...document.querySelectorAll('#crops .crop img')];
            return !document.getElementById('crops').hidden && imgs.length > 0
                && imgs.every(img => img.complete && img.naturalWidth > 0);
        }""",
        timeout=20_000,
    )
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('#crops .crop')].map(figure => {
                const img = figure.querySelector('img');
                const r = img.getBoundingClientRect();
                return {key: figure.querySelector('.key').textContent,
                        candidate: figure.dataset.candidate,
                        left: r.left, top: r.top, right: r.right, width: r.width,
                        height: r.height, natural: [img.naturalWidth, img.naturalHeight],
                        src: img.getAttribute('src'),
                        title: figure.querySelector('figcaption strong').textContent,
                        reasons: [...figure.querySelectorAll('.reasons li')]
                            .map(li => li.textContent)};
            })"""
        )
    )


def _assert_thumbnails(page: Any, server: LoupeServer, crop_item: dict[str, Any]) -> None:
    """Each candidate shown as the crop it would serve, at the requested aspect, side by
    side, keyed 1-3, its reasons underneath; the outlines hidden until toggled."""
    payload = crop_item["payload"]
    aspect = int(payload["w"]) / int(payload["h"])
    shown = _thumbnails(page)
    assert [t["key"] for t in shown] == ["1", "2", "3"]
    assert page.evaluate("document.getElementById('queue').dataset.cropView") == "thumbnails"
    assert not page.locator("#stage").is_visible()
    for left, right in itertools.pairwise(shown):
        assert abs(left["top"] - right["top"]) <= 2 and left["right"] <= right["left"], shown
    for thumb, candidate in zip(shown, payload["candidates"], strict=True):
        assert abs(thumb["width"] / thumb["height"] - aspect) <= 0.02 * aspect, thumb
        natural = thumb["natural"][0] / thumb["natural"][1]
        assert abs(natural - aspect) <= 0.02 * aspect, thumb
        rect = ",".join(str(candidate[k]) for k in ("x", "y", "width", "height"))
        assert f"rect={rect.replace(',', '%2C')}" in thumb["src"], thumb
        assert candidate["strategy"] in thumb["title"]
        assert thumb["reasons"] == candidate["reasons"]
    # The pixels are the candidate's crop of the source, not a picture of the whole.
    first = payload["candidates"][0]
    served = httpx.get(f"{server.url}{shown[0]['src']}", headers=AUTH, timeout=60)
    assert served.status_code == 200, served.text
    got = pyvips.Image.new_from_buffer(served.content, "")
    source = pyvips.Image.new_from_file(str(server.root / crop_item["path"]))
    region = source.crop(first["x"], first["y"], first["width"], first["height"])
    expected = region.resize(got.width / region.width, vscale=got.height / region.height)
    whole = source.resize(got.width / source.width, vscale=got.height / source.height)
    assert (got - expected).abs().avg() < 8
    assert (got - whole).abs().avg() > (got - expected).abs().avg() + 8


def _no_horizontal_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide at a 390px viewport"


def test_a_reviewer_works_the_queue_by_keyboard(server: LoupeServer, vlm: VlmServer) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e .[test])"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)

    # 1. work for the humans: two doubtful alt drafts and a hero crop (plus its square twin)
    for path in ("team/hats.png", "team/window.png"):
        image(server, path, {"w": "200"})
    image(server, "team/couple.png", HERO)
    hero_item = wait_for(lambda: pending(server, "crop"), what="the 16:9 hero crop")[0]
    assert hero_item["payload"]["aspect"] == "16:9" and hero_item["payload"]["ctx"] == "hero"
    image(server, "team/couple.png", SQUARE_HERO)
    wait_for(lambda: len(pending(server, "crop")) == 2, what="the 1:1 hero crop")
    wait_for(
        lambda: (
            {i["path"] for i in pending(server, "alt")}
            >= {"team/hats.png", "team/window.png", "team/couple.png"}
        ),
        timeout=30,
        what="three alt drafts",
    )
    before = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()

    shots: list[str] = []

    def shot(page: Any, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        shots.append(name)

    seconds: list[float] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            desktop = browser.new_context(viewport={"width": 1280, "height": 900})
            page = desktop.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            posts: list[str] = []
            page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

            # 2. sign in through the form
            page.goto(f"{server.url}/admin/")
            shot(page, "01-login-1280.png")
            page.fill("#reviewer", "Playwright")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            _wait_item(page, "alt")  # "all" shows the oldest first: an alt draft
            assert page.inner_text("#reviewer-name") == "Playwright"
            assert re.fullmatch(r"\d+ left", _page_state(page)["counter"])
            shot(page, "02-queue-all-1280.png")

            # 3. alt: accept the first draft with "a"
            page.click("a[data-filter=alt]")
            first = _wait_item(page, "alt")
            assert first["counter"] == "3 left"
            assert page.input_value("#draft") == vlm.reply
            shot(page, "03-alt-draft-1280.png")
            accepted_path = item(server, first["id"])["path"]
            page.keyboard.press("a")
            second = _wait_decided(page, first["id"])
            seconds.append(float(second["seconds"]))
            second = _wait_item(page, "alt", first["id"])
            assert second["counter"] == "2 left"

            # ... edit the second with "e", Ctrl+Enter: the page asks for a reason first
            edited_path = item(server, second["id"])["path"]
            page.keyboard.press("e")
            assert _page_state(page)["focus"] == "draft"
            page.keyboard.type(EDITED)
            page.keyboard.press("Control+Enter")
            page.wait_for_function("document.activeElement.id === 'reason'")
            state = _page_state(page)
            assert "reason is required" in state["message"] and state["id"] == second["id"]
            assert not [url for url in posts if url.endswith(f"/review/{second['id']}")]
            shot(page, "04-alt-edit-needs-reason-1280.png")
            page.keyboard.type("the draft described a boot, not hats")
            page.keyboard.press("Control+Enter")
            seconds.append(float(_wait_decided(page, second["id"])["seconds"]))

            # 4. crop: the three candidates on the image; pick 2 with a reason typed first
            page.click("a[data-filter=crop]")
            crop = _wait_item(page, "crop")
            assert crop["id"] == str(hero_item["id"]) and crop["counter"] == "2 left"
            _assert_thumbnails(page, server, hero_item)
            shot(page, "05-crop-thumbnails-1280.png")
            page.keyboard.press("o")  # the outlines on the full image, as a toggle
            assert page.locator("#stage").is_visible() and not page.locator("#crops").is_visible()
            _assert_aligned(page, hero_item)
            shot(page, "05-crop-outlines-1280.png")
            page.keyboard.press("o")
            assert page.locator("#crops").is_visible()
            page.fill("#reason", "candidate 2 keeps both faces and the table")
            page.keyboard.press("Escape")  # leave the field: keys are shortcuts again
            page.keyboard.press("2")
            after_crop = _wait_decided(page, crop["id"])
            seconds.append(float(after_crop["seconds"]))
            _wait_item(page, "crop", crop["id"])
            shot(page, "06-crop-next-1280.png")

            # 5. metrics, drawn as inline SVG
            page.goto(f"{server.url}/admin/?view=metrics")
            page.wait_for_selector("body[data-metrics-loaded=true]")
            assert page.locator("#bars svg rect").count() >= 2
            assert page.locator("#trend svg circle").count() == 1
            # the costs panel: every AI component, the VLM's calls and tokens, per day
            page.wait_for_selector("body[data-costs-loaded=true]")
            costs = httpx.get(f"{server.url}/admin/api/costs", headers=AUTH, timeout=10).json()
            assert page.locator("#cost-table tbody tr").count() == 7
            shown = page.inner_text('#cost-table tr[data-component="vlm"] .inferences')
            assert int(shown) == costs["components"]["vlm"]["inferences"] >= 3
            assert page.locator("#cost-trend svg rect").count() == len(costs["days"]) == 1
            assert "n/a" in page.inner_text("#cost-tiles")  # no prices configured
            # the reliability diagrams: one per calibrated component, the decided bins drawn
            page.wait_for_selector("body[data-calibration-loaded=true]")
            assert page.locator("#reliability svg.reliability").count() == 3
            alt_dots = page.locator('#reliability svg[data-component="alt"] circle').count()
            assert alt_dots >= 1  # two alt drafts were decided above
            assert "n/a" in page.inner_text('#reliability figure[data-component="moderation"]')
            shot(page, "07-metrics-1280.png")
            assert not errors, errors  # no CSP violations, no script errors

            # 6. a phone: the same session, one column, the image fits, boxes stay on it
            phone = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                storage_state=desktop.storage_state(),
            )
            small = phone.new_page()
            small.goto(f"{server.url}/admin/?component=crop")
            _wait_item(small, "crop")
            square = item(server, _page_state(small)["id"])
            thumbs = _thumbnails(small)
            assert len(thumbs) == 3 and all(t["right"] <= 390 for t in thumbs)
            _no_horizontal_overflow(small)
            shot(small, "08-crop-thumbnails-phone-390.png")
            small.keyboard.press("o")
            _assert_aligned(small, square)
            shown = small.locator("#picture").bounding_box()
            assert shown is not None and 0 < shown["width"] <= 390 and shown["height"] > 0
            _no_horizontal_overflow(small)
            shot(small, "08-crop-phone-390.png")
            small.keyboard.press("n")  # skip: the only one left, so the queue offers it again
            small.wait_for_selector("#restart:visible")
            assert "skipped the 1 remaining" in small.inner_text("#empty-text")
            small.click("#restart")
            assert _wait_item(small, "crop")["id"] == str(square["id"])
            small.goto(f"{server.url}/admin/?view=metrics")
            small.wait_for_selector("body[data-metrics-loaded=true]")
            _no_horizontal_overflow(small)
            shot(small, "09-metrics-phone-390.png")
        finally:
            browser.close()

    # 7. what the decisions changed, over HTTP
    meta = httpx.get(f"{server.url}/meta/{accepted_path}", timeout=60).json()
    assert meta["alt"]["status"] == "reviewed" and meta["alt"]["text"] == vlm.reply
    meta = httpx.get(f"{server.url}/meta/{edited_path}", timeout=60).json()
    assert meta["alt"]["status"] == "reviewed" and meta["alt"]["text"] == EDITED
    served = crop_header(image(server, "team/couple.png", HERO))
    assert served["strategy"] == "override" and served["by"] == "human", served
    chosen = hero_item["payload"]["candidates"][1]
    x, y, w, h = (int(v) for v in served["rect"].split(","))
    assert abs(x - chosen["x"]) <= 2 and abs(y - chosen["y"]) <= 2, (served, chosen)
    assert abs(w - chosen["width"]) <= 3 and abs(h - chosen["height"]) <= 3, (served, chosen)
    decided = item(server, str(hero_item["id"]))
    assert decided["status"] == "edited"
    assert decided["decision"]["value"] == {"candidate": 2}

    after = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    components, earlier = after["components"], before["components"]
    assert components["alt"]["reviewed"] == earlier["alt"]["reviewed"] + 2
    assert components["crop"]["reviewed"] == earlier["crop"]["reviewed"] + 1
    assert components["crop"]["override_rate"] == 1.0
    assert after["review_seconds"]["count"] == 3 and all(0 < s < 60 for s in seconds)
    assert after["review_seconds"]["median"] == pytest.approx(statistics.median(seconds), abs=0.01)
    (ARTIFACTS / "timings.json").write_text(
        json.dumps(
            {"seconds": seconds, "median": after["review_seconds"]["median"], "shots": shots},
            indent=2,
        )
    )


def test_a_reviewer_adds_and_removes_an_exception_rule(server: LoupeServer) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)")
    crop = {"w": "300", "h": "300", "fit": "crop"}
    assert "x-loupe-rules" not in image(server, "team/window.png", crop).headers
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.url}/admin/")
            page.fill("#reviewer", "Rule Maker")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.goto(f"{server.url}/admin/?view=rules")
            page.wait_for_selector("body[data-rules-loaded]")
            page.fill("#rule-prefix", "team/")
            page.select_option("#rule-name", "never-crop")
            page.fill("#rule-reason", "the client's photos are never cut")
            page.click("#rule-form button[type=submit]")
            page.wait_for_selector('tr[data-rule="team|never-crop"]')
            page.screenshot(path=str(ARTIFACTS / "10-rules-1280.png"), full_page=True)
            served = image(server, "team/window.png", crop)
            assert served.headers["x-loupe-rules"] == "never-crop"
            assert "strategy=none" in served.headers["x-loupe-crop"]  # padded, not cut
            page.click('tr[data-rule="team|never-crop"] button')
            page.wait_for_selector("body[data-rules-loaded='0']")
        finally:
            browser.close()
    wait_for(
        lambda: "x-loupe-rules" not in image(server, "team/window.png", crop).headers,
        timeout=5,
        what="the rule to go",
    )
