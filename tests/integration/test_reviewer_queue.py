"""A reviewer clears a queue of 20+ mixed items (alt drafts, hero crops, moderation checks,
QA samples) with the keyboard alone, in a real Chromium; every decision lands in the store,
on the item that was on screen when its keys were pressed."""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for
from tests.vlm_server import VlmServer

TOKEN = "queue-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = Path("/usr/bin/chromium")
PICTURES = ("01", "03", "06", "08", "12", "21")
CROPS = (
    {"w": "640", "h": "360", "ctx": "hero"},
    {"w": "400", "h": "400", "ctx": "social"},
    {"w": "400", "h": "500", "ctx": "featured"},
    {"w": "360", "h": "640", "ctx": "hero"},
)
EXPECTED = {"alt": 6, "crop": 4, "moderation": 6, "sample": 6}
TYPED = "A barn and a cart at dawn"  # "a" in it must never accept anything


@pytest.fixture(scope="module")
def server(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("queue-root")
    for number in PICTURES:
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", root / f"k{number}.png")
    env = {
        **FAST_LANE,
        "LOUPE_QA_SAMPLE_RATE": "1",  # every source is sampled for a human look
        "LOUPE_MODERATION_ENABLED": "true",
        "LOUPE_MODERATION_REVIEW_THRESHOLD": "0",  # served, but every one gets a human look
    }
    with VlmServer(mode="logprobs") as vlm:
        vlm.alt_token_prob = 0.3  # doubtful drafts: all go to review
        running = LoupeServer(
            root,
            tmp_path_factory.mktemp("queue-data"),
            env=env,
            args=(
                "--vlm-url", vlm.url, "--admin-token", TOKEN,
                "--models-dir", str(shared_dir() / "models"),
            ),
        )  # fmt: skip
        for number in PICTURES:
            response = httpx.get(f"{running.url}/img/k{number}.png?w=200", timeout=60)
            assert response.status_code == 200
        for crop in CROPS:
            params = {"fit": "crop", "crop": "smart", **crop}
            response = httpx.get(f"{running.url}/img/k12.png", params=params, timeout=60)
            assert response.status_code == 200
        wait_for(lambda: counts(running) == EXPECTED, timeout=60, what=f"a queue of {EXPECTED}")
        yield running
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module: starting one costs about a second."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def pending(server: LoupeServer, component: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 200}
    if component:
        params["component"] = component
    response = httpx.get(f"{server.url}/admin/api/review", params=params, headers=AUTH, timeout=10)
    return list(response.json()["items"])


def counts(server: LoupeServer) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in pending(server):
        found[entry["component"]] = found.get(entry["component"], 0) + 1
    return found


def review(server: LoupeServer, item_id: int | str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/admin/api/review/{item_id}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def sign_in(browser: Any, server: LoupeServer, query: str = "") -> Any:
    """Keyboard only: the name, Tab, the token in the password field, Enter."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/admin/{query}")
    page.focus("#reviewer")
    page.keyboard.type("Keyboard Kim")
    page.keyboard.press("Tab")
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    if query:
        page.wait_for_url("**/admin/")
        page.goto(f"{server.url}/admin/{query}")
    return page


def _shown(page: Any, not_id: str = "") -> dict[str, Any]:
    """Wait until an item is on screen, its pictures loaded, and say which."""
    page.wait_for_function(
        """notId => {
            const q = document.getElementById('queue');
            const img = document.getElementById('picture');
            return q.dataset.itemId && q.dataset.itemId !== notId
                && img.complete && img.naturalWidth > 0;
        }""",
        arg=not_id,
        timeout=20_000,
    )
    return dict(
        page.evaluate(
            """() => {
                const q = document.getElementById('queue').dataset;
                return {id: q.itemId, component: q.itemComponent,
                        focus: document.activeElement && document.activeElement.id,
                        draft: document.getElementById('draft').value};
            }"""
        )
    )


def test_a_then_e_opens_the_editor_on_the_next_item_and_typing_stays_in_it(
    server: LoupeServer, browser: Any
) -> None:
    """The bug: after a, e acted on the item being left, the next item then took the focus
    away, and the letters typed next went to the page as shortcuts: "a" accepted it."""
    alts = pending(server, "alt")
    assert len(alts) == EXPECTED["alt"]
    page = sign_in(browser, server, "?component=alt")
    try:
        first = _shown(page)
        assert first["id"] == str(alts[0]["id"])
        page.keyboard.press("a")  # no waiting from here on: a reviewer's fingers
        page.keyboard.press("e")
        page.keyboard.type(TYPED)
        second = _shown(page, first["id"])
        assert second["id"] == str(alts[1]["id"])
        page.wait_for_function(
            "typed => document.getElementById('draft').value === typed", arg=TYPED, timeout=5000
        )
        state = _shown(page, first["id"])
        assert state["focus"] == "draft" and state["draft"] == TYPED, state
        assert review(server, alts[0]["id"])["status"] == "accepted"
        time.sleep(0.3)  # a stray "a" would have posted by now
        assert review(server, alts[1]["id"])["status"] == "pending"
        assert len(pending(server, "alt")) == EXPECTED["alt"] - 1
    finally:
        page.close()


def _keys_for(component: str, n: int) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """What a reviewer types for the n-th item, and what the store must then say of it:
    ("press" | "type", keys), every other item overriding the AI with a typed reason."""
    override = n % 2 == 1
    if component == "alt" and override:
        keys = [("press", "e"), ("type", TYPED), ("press", "Control+Enter")]
        keys += [("type", "the draft missed the cart"), ("press", "Enter")]
        return keys, {"status": "edited", "value": {"text": TYPED}}
    if component == "crop" and override:
        keys = [("press", "2"), ("type", "candidate 2 keeps the faces"), ("press", "Enter")]
        return keys, {"status": "edited", "value": {"candidate": 2}}
    if component in ("moderation", "sample") and override:
        keys = [("press", "r"), ("type", "banding in the sky"), ("press", "Enter")]
        return keys, {"status": "rejected", "value": None}
    return [("press", "1" if component == "crop" else "a")], {"status": "accepted"}


def test_a_mixed_queue_of_twenty_is_worked_by_keyboard_without_waiting_between_keys(
    server: LoupeServer, browser: Any
) -> None:
    queue = pending(server)
    total = len(queue)
    assert total >= 20 and {i["component"] for i in queue} == set(EXPECTED)
    before = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    page = sign_in(browser, server)
    waited: list[float] = []
    planned: dict[str, dict[str, Any]] = {}
    shown_id = ""
    pressed_at = 0.0
    try:
        for n in range(total):
            page.wait_for_function(
                "id => { const r = document.getElementById('queue').dataset.ready;"
                " return r && r !== id; }",
                arg=shown_id,
                timeout=20_000,
            )
            if pressed_at:
                waited.append(time.perf_counter() - pressed_at)
            shown = page.evaluate(
                "() => { const q = document.getElementById('queue').dataset;"
                " return {id: q.ready, component: q.itemComponent}; }"
            )
            shown_id = shown["id"]
            keys, expect = _keys_for(shown["component"], n)
            planned[shown_id] = expect
            for how, text in keys:  # a burst: no waiting on the page between keys
                if how == "press":
                    page.keyboard.press(text)
                else:
                    page.keyboard.type(text)
            pressed_at = time.perf_counter()
        page.wait_for_function(
            "() => document.getElementById('counter').textContent === 'Nothing left'",
            timeout=20_000,
        )
        held = page.evaluate("document.getElementById('queue').dataset.held || '0'")
        assert held == "0"
    finally:
        page.close()
    assert pending(server) == []
    assert sorted(planned) == sorted(str(i["id"]) for i in queue)  # each shown once
    for item_id, expect in planned.items():
        decided = review(server, item_id)
        assert decided["status"] == expect["status"], (item_id, decided, expect)
        if "value" in expect:
            assert decided["decision"]["value"] == expect["value"], (item_id, decided)
    after = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    reviewed = sum(c["reviewed"] for c in after["components"].values())
    assert reviewed - sum(c["reviewed"] for c in before["components"].values()) == total
    assert after["review_seconds"]["count"] - before["review_seconds"]["count"] == total
    median = statistics.median(waited)
    print(
        f"\n{total} items by keyboard: median {median:.3f} s waiting on the page per item "
        f"(max {max(waited):.3f} s)"
    )
    assert median < 0.3, waited
