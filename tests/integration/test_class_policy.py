"""``q=auto`` takes the compression policy of the content class once the lane has classified
the source; the URL's ``policy=`` and the configured source policies still win."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.support import FAST_LANE, LoupeServer, wait_for


def test_a_screenshot_gets_the_screenshot_policy_once_classified(
    data_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "generated" / "screenshot_ui.png", root / "ui.png")
    server = LoupeServer(root, tmp_path / "data", env=FAST_LANE)
    try:
        first = httpx.get(f"{server.url}/img/ui.png?w=300&fm=webp", timeout=60)
        assert first.headers["x-loupe-policy"] == "general"  # not classified yet

        widths = iter(range(400, 1400))

        def classified() -> httpx.Response | None:
            width = next(widths)  # a new URL each time: a cached answer would not change
            response = httpx.get(f"{server.url}/img/ui.png?w={width}&fm=webp", timeout=60)
            return response if response.headers["x-loupe-policy"] == "screenshot" else None

        later = wait_for(classified, timeout=30, what="the lane to classify the screenshot")
        assert "policy-from-class:screenshot" in later.headers["x-loupe-note"]
        explicit = httpx.get(f"{server.url}/img/ui.png?w=302&fm=webp&policy=general", timeout=60)
        assert explicit.headers["x-loupe-policy"] == "general"
        fixed = httpx.get(f"{server.url}/img/ui.png?w=303&fm=webp&q=70", timeout=60)
        assert fixed.headers["x-loupe-policy"] == "general"  # a fixed q needs no policy
    finally:
        server.stop()
