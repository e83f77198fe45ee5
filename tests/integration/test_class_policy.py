"""``q=auto`` takes the compression policy of the content class, classified on the request
path when the lane has not done it yet, so the first size asked gets the same policy as every
later one; the URL's ``policy=`` and a fixed quality still win."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from proxy.sources.paths import canonical_path
from proxy.stores import open_store
from tests.support import FAST_LANE, LoupeServer, wait_for


def test_a_screenshot_gets_the_screenshot_policy_from_the_first_request(
    data_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "generated" / "screenshot_ui.png", root / "ui.png")
    server = LoupeServer(root, tmp_path / "data", env=FAST_LANE)
    try:
        first = httpx.get(f"{server.url}/img/ui.png?w=300&fm=webp", timeout=60)
        assert first.headers["x-loupe-policy"] == "screenshot"  # before the lane ran
        assert "policy-from-class:screenshot" in first.headers["x-loupe-note"]

        store = open_store(f"sqlite:///{tmp_path / 'data' / 'loupe.db'}")
        try:

            def classified() -> bool:
                record = store.source(canonical_path("ui.png"))
                return record is not None and record.content_class == "screenshot"

            wait_for(classified, timeout=30, what="the lane to classify the screenshot")
        finally:
            store.close()
        for width in (301, 640, 1200):  # before and after the lane: one policy
            later = httpx.get(f"{server.url}/img/ui.png?w={width}&fm=webp", timeout=60)
            assert later.headers["x-loupe-policy"] == "screenshot", width
        explicit = httpx.get(f"{server.url}/img/ui.png?w=302&fm=webp&policy=general", timeout=60)
        assert explicit.headers["x-loupe-policy"] == "general"
        fixed = httpx.get(f"{server.url}/img/ui.png?w=303&fm=webp&q=70", timeout=60)
        assert fixed.headers["x-loupe-policy"] == "general"  # a fixed q needs no policy
        assert fixed.headers["x-loupe-stage"] == "final"
    finally:
        server.stop()
