"""Search over what the lane wrote, through the admin API, the reviewers' page and
``loupe search``, on both store backends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FAST_LANE, LoupeServer, postgres_schema, shared_dir, wait_for

TOKEN = "search"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(
    request: pytest.FixtureRequest, data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LoupeServer, str]]:
    root = tmp_path_factory.mktemp("search-root")
    (root / "shop").mkdir()
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "shop" / "hats.png")
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "hats-copy.png")  # a duplicate
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "beach.png")
    data = tmp_path_factory.mktemp("search-data")
    with (
        postgres_schema() if request.param == "postgresql" else _sqlite(data / "loupe.db") as store
    ):
        args = ("--admin-token", TOKEN, "--models-dir", str(shared_dir() / "models"))
        running = LoupeServer(root, data, env=FAST_LANE, args=(*args, "--store", store))
        try:
            yield running, store
        finally:
            running.stop()


class _sqlite:
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *_exc: object) -> None:
        pass


def search(node: LoupeServer, **params: Any) -> httpx.Response:
    return httpx.get(f"{node.url}/admin/api/search", params=params, headers=AUTH, timeout=10)


def results(node: LoupeServer, **params: Any) -> list[dict[str, Any]]:
    response = search(node, **params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["results"]
    return found


def test_what_the_lane_and_reviewers_wrote_is_searchable(node: tuple[LoupeServer, str]) -> None:
    server, _store = node
    for path in ("shop/hats.png", "hats-copy.png", "beach.png"):
        assert httpx.get(f"{server.url}/img/{path}?w=64", timeout=60).status_code == 200
    put = httpx.put(
        f"{server.url}/admin/api/alt/shop/hats.png",
        json={"text": "Colourful felt hats on a wall."},
        headers=AUTH,
        timeout=60,
    )
    assert put.status_code == 200
    [hit] = results(server, q="felt hat")
    assert hit["path"] == "shop/hats.png" and hit["alt"]["text"].startswith("Colourful")
    assert hit["score"] > 0
    assert hit["thumbnail"].startswith("/admin/api/preview/shop/hats.png?")
    thumb = httpx.get(server.url + hit["thumbnail"], headers=AUTH, timeout=60)
    assert thumb.status_code == 200 and thumb.headers["content-type"].startswith("image/")
    # the lane's facts: class and duplicate group, once the fingerprints are in
    wait_for(lambda: len(results(server, q="photo")) == 3, what="the lane's fingerprints")
    groups = {h["path"]: h["duplicate_group"] for h in results(server, q="photo")}
    assert groups["shop/hats.png"] == groups["hats-copy.png"] != groups["beach.png"]
    assert {h["path"] for h in results(server, q=groups["hats-copy.png"])} == {
        "shop/hats.png",
        "hats-copy.png",
    }
    assert [h["path"] for h in results(server, q="", folder="shop")] == ["shop/hats.png"]
    assert {h["path"] for h in results(server, q="", **{"class": "photo"})} == set(groups)
    assert results(server, q="", **{"class": "diagram"}) == []


def test_a_result_opens_the_source_decisions(node: tuple[LoupeServer, str]) -> None:
    server, _store = node
    [hit] = results(server, q="felt")
    decisions = httpx.get(server.url + hit["decisions"], headers=AUTH, timeout=10)
    assert decisions.status_code == 200, decisions.text
    body = decisions.json()
    assert body["path"] == "shop/hats.png" and body["alt"]["status"] == "user"
    missing = httpx.get(f"{server.url}/admin/api/decisions/nothing.png", headers=AUTH, timeout=10)
    assert missing.status_code == 404


def test_bad_search_parameters_are_400(node: tuple[LoupeServer, str]) -> None:
    server, _store = node
    for params in ({"class": "poster"}, {"limit": "0"}, {"limit": "x"}, {"q": "a" * 201}):
        response = search(server, **params)
        assert response.status_code == 400, params
        assert response.headers["content-type"].startswith("application/problem+json")
    assert search(server, q='"; DROP TABLE sources; --').status_code == 200


def test_the_reviewers_page_has_a_search_box(node: tuple[LoupeServer, str]) -> None:
    server, _store = node
    signed = httpx.post(
        server.url + "/admin/login", data={"token": TOKEN, "reviewer": "Ann"}, timeout=10
    )
    cookie = signed.cookies["loupe_session"]
    page = httpx.get(
        server.url + "/admin/?view=search",
        headers={"Cookie": f"loupe_session={cookie}"},
        timeout=10,
    )
    assert page.status_code == 200
    assert 'id="search-form"' in page.text and 'id="source-decisions"' in page.text


def test_loupe_search_from_the_command_line(node: tuple[LoupeServer, str]) -> None:
    _server, store = node
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "search", "felt", "--store", store, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
    )
    assert done.returncode == 0, done.stderr
    [hit] = json.loads(done.stdout)["results"]
    assert hit["path"] == "shop/hats.png"
    plain = subprocess.run(
        [sys.executable, "-m", "proxy", "search", "hats", "--store", store, "--folder", "shop"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
    )
    assert plain.returncode == 0 and "shop/hats.png" in plain.stdout
    assert "hats-copy.png" not in plain.stdout


def test_the_search_box_opens_a_source_s_decisions_in_a_browser(
    node: tuple[LoupeServer, str],
) -> None:
    server, store = node
    if not store.startswith("sqlite"):
        pytest.skip("the page is the same on both backends; one browser run is enough")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip(f"no system Chromium at {chromium} (apt-get install chromium)")
    assert httpx.get(f"{server.url}/img/shop/hats.png?w=64", timeout=60).status_code == 200
    put = httpx.put(
        f"{server.url}/admin/api/alt/shop/hats.png",
        json={"text": "Colourful felt hats on a wall."},
        headers=AUTH,
        timeout=60,
    )
    assert put.status_code == 200
    wait_for(lambda: results(server, q="felt photo"), what="the lane's fingerprint")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.url}/admin/")
            page.fill("#reviewer", "Finder")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.goto(f"{server.url}/admin/?view=search")
            page.fill("#search-q", "felt")
            page.click("#search-form button[type=submit]")
            page.wait_for_selector("body[data-search-results='1']")
            page.click('button[data-path="shop/hats.png"]')
            page.wait_for_selector("body[data-source-open='shop/hats.png']")
            facts = page.inner_text("#source-facts")
            assert "Colourful felt hats" in facts and "photo" in facts
            # the thumbnail comes through the page's CSP and the session cookie
            page.wait_for_function("document.getElementById('source-thumb').naturalWidth > 0")
            assert page.evaluate("document.getElementById('source-thumb').naturalWidth") == 160
            page.goto(f"{server.url}/admin/?view=metrics")  # the purge outbox, as tiles
            page.wait_for_selector("body[data-metrics-loaded=true]")
            assert "CDN purges pending" in page.inner_text("#purges-pending")
            assert page.inner_text("#purges-failed strong") == "0"
        finally:
            browser.close()
