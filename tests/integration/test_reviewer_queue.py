"""A reviewer clears a queue of 20+ mixed items (alt drafts, hero crops, moderation checks,
QA samples) with the keyboard alone, in a real Chromium; every decision lands in the store."""

from __future__ import annotations

import shutil
import statistics
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
        yield running
        running.stop()


def pending(server: LoupeServer) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/admin/api/review", params={"limit": 200}, headers=AUTH, timeout=10
    )
    return list(response.json()["items"])


def test_a_mixed_queue_of_twenty_is_cleared_by_keyboard(server: LoupeServer) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)")
    for number in PICTURES:
        assert httpx.get(f"{server.url}/img/k{number}.png?w=200", timeout=60).status_code == 200
    for crop in CROPS:
        params = {"fit": "crop", "crop": "smart", **crop}
        assert httpx.get(f"{server.url}/img/k12.png", params=params, timeout=60).status_code == 200
    expected = {"alt": 6, "crop": 4, "moderation": 6, "sample": 6}

    def queue_ready() -> bool:
        counts: dict[str, int] = {}
        for entry in pending(server):
            counts[entry["component"]] = counts.get(entry["component"], 0) + 1
        return counts == expected

    wait_for(queue_ready, timeout=60, what=f"a queue of {expected}")
    total = sum(expected.values())
    assert total >= 20

    seconds: list[float] = []
    decided: list[tuple[str, str]] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.url}/admin/")
            page.keyboard.press("Tab")  # keyboard only, from the login form on
            page.focus("#reviewer")
            page.keyboard.type("Keyboard Kim")
            page.keyboard.press("Tab")
            page.keyboard.type(TOKEN)
            page.keyboard.press("Enter")
            for n in range(total):
                page.wait_for_function(
                    """() => {
                        const q = document.getElementById('queue');
                        const img = document.getElementById('picture');
                        return q.dataset.itemId && img.complete && img.naturalWidth > 0;
                    }""",
                    timeout=20_000,
                )
                state = page.evaluate(
                    """() => {
                        const q = document.getElementById('queue').dataset;
                        return {id: q.itemId, component: q.itemComponent};
                    }"""
                )
                if state["component"] == "sample" and n % 2:
                    # a sampled output a human finds wanting: r, then the reason, then Enter
                    page.keyboard.press("r")
                    page.wait_for_function("document.activeElement.id === 'reason'")
                    page.keyboard.type("banding in the sky")
                    page.keyboard.press("Enter")
                    decided.append((state["component"], "rejected"))
                elif state["component"] == "crop":
                    page.keyboard.press("1")
                    decided.append((state["component"], "accepted"))
                else:
                    page.keyboard.press("a")
                    decided.append((state["component"], "accepted"))
                page.wait_for_function(
                    "id => document.getElementById('queue').dataset.itemId !== id",
                    arg=state["id"],
                    timeout=20_000,
                )
                last = page.evaluate("document.getElementById('queue').dataset.lastSeconds")
                seconds.append(float(last))
            page.wait_for_function(
                "document.getElementById('counter').textContent === 'Nothing left'"
            )
        finally:
            browser.close()
    assert pending(server) == []
    assert sorted({c for c, _ in decided}) == ["alt", "crop", "moderation", "sample"]
    metrics = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    assert sum(c["reviewed"] for c in metrics["components"].values()) == total
    assert metrics["review_seconds"]["count"] == total
    assert metrics["review_seconds"]["median"] == pytest.approx(
        statistics.median(seconds), abs=0.01
    )
    print(f"\n{total} items, median {statistics.median(seconds):.2f} s per item (scripted keys)")
