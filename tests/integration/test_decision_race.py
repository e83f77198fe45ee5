"""A render that started before a decision is not stored as the answer after it.

One node with one processing thread: a slow render holds the thread, a hero crop queues
behind it (its decisions already read: no human crop yet), a reviewer picks the crop while
it waits, and only then does it render. The decision generation it was keyed with is
stale by then, so it is not stored; what is served afterwards is the human's crop.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LoupeServer, shared_dir, wait_for

TOKEN = "race"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIG = "big.jpg"
HERO = "w=800&h=450&fit=crop&ctx=hero&fm=webp"  # 16:9, like the review item


@pytest.fixture(scope="module")
def node(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("race-root")
    shutil.copy(data_root / "generated" / "large_6000x4000_flower_upscaled.jpg", root / BIG)
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("race-data"),
        env={"LOUPE_SERVER_PROCESSING_THREADS": "1"},
        args=("--admin-token", TOKEN, "--models-dir", str(shared_dir() / "models")),
    )
    yield running
    running.stop()


def get(node: LoupeServer, query: str) -> httpx.Response:
    response = httpx.get(f"{node.url}/img/{BIG}?{query}", timeout=120)
    assert response.status_code == 200, response.text
    return response


def crop_items(node: LoupeServer) -> list[dict[str, Any]]:
    listed = httpx.get(
        f"{node.url}/admin/api/review", params={"component": "crop"}, headers=AUTH, timeout=10
    )
    return [item for item in listed.json()["items"] if item["path"] == BIG]


def test_a_render_overtaken_by_a_decision_is_not_its_answer(node: LoupeServer) -> None:
    first = get(node, "w=160&h=90&fit=crop&ctx=hero&fm=webp")
    assert "by=ai" in first.headers["x-loupe-crop"]
    [item] = wait_for(lambda: crop_items(node), what="the hero crop's review item")
    answers: dict[str, httpx.Response] = {}

    def fetch(name: str, query: str) -> None:
        answers[name] = get(node, query)

    # A long render (10 MP of WebP at a fixed quality: q=auto first answers are quick now).
    blocker = threading.Thread(target=fetch, args=("blocker", "w=4000&fm=webp&q=90"))
    blocker.start()
    time.sleep(0.3)  # the blocker holds the one processing thread
    racing = threading.Thread(target=fetch, args=("racing", HERO))
    racing.start()
    time.sleep(0.3)  # the hero crop has read its decisions and waits for the thread
    decided = httpx.post(
        f"{node.url}/admin/api/review/{item['id']}",
        json={"action": "accept", "seconds": 2},
        headers=AUTH,
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    assert racing.is_alive(), "the render finished before the decision: no race to test"
    blocker.join()
    racing.join()
    after = get(node, HERO)
    assert "by=human" in after.headers["x-loupe-crop"], after.headers["x-loupe-crop"]
    raced = answers["racing"]
    assert "by=human" in raced.headers["x-loupe-crop"] or "no-store" in raced.headers.get(
        "cache-control", ""
    ), "the overtaken render was answered as if it were current"
