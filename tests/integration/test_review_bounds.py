"""Anonymous requests have bounded side effects: ``ctx=hero`` (featured, social) with many
odd aspects opens at most one crop review per source, context and common aspect, and the
openings are rate-limited per client (the image is served all the same)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.cropping.overrides import COMMON_ASPECTS, common_aspect
from tests.support import FAST_LANE, LoupeServer, shared_dir

TOKEN = "bounds-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# 45 odd sizes (no two of the same reduced aspect) spread from 1:3.3 to 3.3:1.
SIZES = [(round(200 * 3.3 ** ((2 * n - 44) / 44)) + 1, 201 + n) for n in range(45)]


def start(root: Path, data: Path, **env: str) -> LoupeServer:
    models = shared_dir() / "models"
    if not (models / "face_detection_yunet_2023mar.onnx").is_file():
        pytest.skip(f"the face model is not in {models}: no crop reviews without analysis")
    return LoupeServer(
        root,
        data,
        env={**FAST_LANE, **env},
        args=("--admin-token", TOKEN, "--models-dir", str(models)),
    )


@pytest.fixture(scope="module")
def root(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bounds-root")
    shutil.copy(data_root / "kodak" / "kodim12.png", folder / "couple.png")
    shutil.copy(data_root / "kodak" / "kodim03.png", folder / "hats.png")
    return folder


async def _ask(server: LoupeServer, path: str, ctx: str) -> list[int]:
    limits = httpx.Limits(max_connections=6)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.get(
                    f"{server.url}/img/{path}",
                    params={"w": w, "h": h, "fit": "crop", "ctx": ctx, "fm": "jpeg", "q": "70"},
                )
                for w, h in SIZES
            )
        )
    return [response.status_code for response in responses]


def crop_items(server: LoupeServer) -> list[dict[str, Any]]:
    """The crop review items, once the background writes have settled."""
    previous: list[dict[str, Any]] | None = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = httpx.get(
            f"{server.url}/admin/api/review",
            params={"component": "crop", "limit": 200},
            headers=AUTH,
            timeout=10,
        )
        items = list(listed.json()["items"])
        if previous is not None and items and len(items) == len(previous):
            return items
        previous = items
        time.sleep(1.0)
    raise AssertionError(f"crop reviews never settled: {previous}")


def test_odd_aspects_open_one_review_per_common_aspect(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start(
        root,
        tmp_path_factory.mktemp("bounds-data"),
        LOUPE_ADMIN_REVIEWS_PER_CLIENT_PER_MINUTE="1000",
        LOUPE_ADMIN_REVIEWS_PER_MINUTE="1000",
    )
    try:
        for ctx in ("hero", "social"):
            statuses = asyncio.run(_ask(server, "couple.png", ctx))
            assert statuses == [200] * len(SIZES), statuses
        items = crop_items(server)
        keys = Counter(
            (item["path"], item["payload"]["ctx"], item["payload"]["aspect"]) for item in items
        )
        assert max(keys.values()) == 1, keys
        assert {aspect for _, _, aspect in keys} <= set(COMMON_ASPECTS)
        expected = {common_aspect(w, h) for w, h in SIZES}
        assert len(items) == 2 * len(expected) <= 2 * len(COMMON_ASPECTS), len(items)
        for item in items:  # each item shows candidates for its own (common) aspect
            payload = item["payload"]
            cw, _, ch = payload["aspect"].partition(":")
            assert abs(payload["w"] / payload["h"] - int(cw) / int(ch)) < 0.02, payload
    finally:
        server.stop()


def test_review_openings_are_rate_limited_per_client(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start(
        root,
        tmp_path_factory.mktemp("bounds-limited"),
        LOUPE_ADMIN_REVIEWS_PER_CLIENT_PER_MINUTE="4",
    )
    try:
        statuses = asyncio.run(_ask(server, "hats.png", "featured"))
        assert statuses == [200] * len(SIZES), statuses  # every image is still served
        items = crop_items(server)
        assert 1 <= len(items) <= 4, [item["payload"]["aspect"] for item in items]
    finally:
        server.stop()
