"""Moderation fails closed: with it on, nothing is served before a scan, a held source answers
451 until a human approves it, and a missing or broken model holds instead of publishing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import LoupeServer, shared_dir

TOKEN = "moderator"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def root(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("moderation-root")
    shutil.copy(data_root / "generated" / "screenshot_ui.png", folder / "ui.png")
    shutil.copy(data_root / "kodak" / "kodim03.png", folder / "hats.png")
    shutil.copy(data_root / "kodak" / "kodim06.png", folder / "boat.png")
    return folder


def serve(root: Path, data: Path, models: Path, **moderation: str) -> LoupeServer:
    env = {"LOUPE_MODERATION_ENABLED": "true"}
    env.update({f"LOUPE_MODERATION_{key.upper()}": value for key, value in moderation.items()})
    return LoupeServer(
        root, data, env=env, args=("--admin-token", TOKEN, "--models-dir", str(models))
    )


def moderation_items(server: LoupeServer, path: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/admin/api/review",
        params={"component": "moderation"},
        headers=AUTH,
        timeout=10,
    )
    return [item for item in response.json()["items"] if item["path"] == path]


@pytest.fixture(scope="module")
def normal(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    running = serve(root, tmp_path_factory.mktemp("moderation-data"), shared_dir() / "models")
    yield running
    running.stop()


def test_a_clear_image_is_scanned_then_served(normal: LoupeServer) -> None:
    response = httpx.get(f"{normal.url}/img/ui.png?w=200", timeout=60)
    assert response.status_code == 200, response.text
    meta = httpx.get(f"{normal.url}/meta/ui.png", timeout=60).json()
    assert meta["moderation"]["status"] == "clear"
    assert 0 <= meta["moderation"]["score"] < 0.4
    assert moderation_items(normal, "ui.png") == []


@pytest.fixture(scope="module")
def strict(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    """Thresholds at 0: every source is 'unsafe', so the hold path runs on ordinary images."""
    running = serve(
        root,
        tmp_path_factory.mktemp("strict-data"),
        shared_dir() / "models",
        unsafe_threshold="0",
        review_threshold="0",
    )
    yield running
    running.stop()


def test_a_held_image_is_451_until_a_human_approves(strict: LoupeServer) -> None:
    held = httpx.get(f"{strict.url}/img/hats.png?w=200", timeout=60)
    assert held.status_code == 451
    assert held.headers["content-type"] == "application/problem+json"
    assert held.json()["status"] == 451
    # every size and cache tier answers the same
    assert httpx.get(f"{strict.url}/img/hats.png?w=120", timeout=60).status_code == 451
    [item] = moderation_items(strict, "hats.png")
    assert item["payload"]["verdict"] == "held"
    approve = httpx.post(
        f"{strict.url}/admin/api/review/{item['id']}",
        json={"action": "accept", "seconds": 3},
        headers=AUTH,
        timeout=10,
    )
    assert approve.status_code == 200, approve.text
    served = httpx.get(f"{strict.url}/img/hats.png?w=200", timeout=60)
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/")


def test_a_rejected_image_stays_held(strict: LoupeServer) -> None:
    assert httpx.get(f"{strict.url}/img/boat.png?w=200", timeout=60).status_code == 451
    [item] = moderation_items(strict, "boat.png")
    reject = httpx.post(
        f"{strict.url}/admin/api/review/{item['id']}",
        json={"action": "reject", "reason": "not for this site"},
        headers=AUTH,
        timeout=10,
    )
    assert reject.status_code == 200
    response = httpx.get(f"{strict.url}/img/boat.png?w=200", timeout=60)
    assert response.status_code == 451 and "rejected" in response.json()["detail"]


def test_a_broken_model_holds_everything(root: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(shared_dir() / "models", models)
    (models / "open-nsfw.onnx").write_bytes(b"not a model at all")
    running = serve(root, tmp_path / "data", models)
    try:
        response = httpx.get(f"{running.url}/img/ui.png?w=200", timeout=60)
        assert response.status_code == 451  # fail closed: never auto-publish unscanned
        [item] = moderation_items(running, "ui.png")
        assert "unavailable" in item["payload"]["reason"]
        assert item["payload"]["score"] is None
    finally:
        running.stop()


def test_reviewers_see_a_held_image_in_the_admin_preview(strict: LoupeServer) -> None:
    assert httpx.get(f"{strict.url}/img/ui.png?w=200", timeout=60).status_code == 451
    preview = f"{strict.url}/admin/api/preview/ui.png"
    assert httpx.get(preview, params={"w": 200}, timeout=60).status_code == 401
    response = httpx.get(preview, params={"w": 200}, headers=AUTH, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/")
    assert response.headers["cache-control"] == "private, no-store"
    assert httpx.get(f"{strict.url}/img/ui.png?w=200", timeout=60).status_code == 451
