"""Moderation cannot be sidestepped: a verdict belongs to the bytes it judged.

- New bytes at an approved path are scanned again before they are served (451 here).
- The same bytes under another path keep their verdict: a rejected picture copied elsewhere
  stays rejected.
- ``/meta`` of a held or rejected image answers 451 like ``/img``.
- An image a human has yet to review is served with a short ``max-age``.
- The lane's moderation job scans a known path again when its bytes changed.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.config import ModerationConfig
from proxy.curation.review import Decision, decide
from proxy.detectors.nsfw import NsfwDetector
from proxy.lane.reading import SourceBytes
from proxy.lane.tasks.moderate import ModerateTask
from proxy.moderation import Moderator
from proxy.sources.local import LocalSource
from proxy.stores import open_store
from proxy.stores.base import Job
from tests.support import LoupeServer, shared_dir

TOKEN = "content"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def pictures(data_root: Path) -> dict[str, Path]:
    return {
        "hats": data_root / "kodak" / "kodim03.png",
        "boat": data_root / "kodak" / "kodim06.png",
        "ui": data_root / "generated" / "screenshot_ui.png",
    }


def serve(root: Path, data: Path, **moderation: str) -> LoupeServer:
    env = {"LOUPE_MODERATION_ENABLED": "true"}
    env.update({f"LOUPE_MODERATION_{key.upper()}": value for key, value in moderation.items()})
    return LoupeServer(
        root,
        data,
        env=env,
        args=("--admin-token", TOKEN, "--models-dir", str(shared_dir() / "models")),
    )


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    """Every scan holds: whatever is served, a human approved those very bytes."""
    running = serve(
        tmp_path_factory.mktemp("content-root"),
        tmp_path_factory.mktemp("content-data"),
        unsafe_threshold="0",
        review_threshold="0",
    )
    yield running
    running.stop()


def pending(server: LoupeServer, path: str) -> list[dict[str, Any]]:
    listed = httpx.get(
        f"{server.url}/admin/api/review",
        params={"component": "moderation", "limit": 200},
        headers=AUTH,
        timeout=10,
    )
    return [item for item in listed.json()["items"] if item["path"] == path]


def decide_on(server: LoupeServer, path: str, action: str) -> None:
    [item] = pending(server, path)
    body = {"action": action, "reason": "checked by a person"}
    decided = httpx.post(
        f"{server.url}/admin/api/review/{item['id']}", json=body, headers=AUTH, timeout=10
    )
    assert decided.status_code == 200, decided.text


def status(server: LoupeServer, route: str, path: str) -> int:
    return httpx.get(f"{server.url}/{route}/{path}?w=120", timeout=60).status_code


def replace_bytes(target: Path, source: Path) -> None:
    """A new file at the same path (another picture), as a deploy would leave it."""
    staged = target.with_suffix(".new")
    shutil.copy(source, staged)
    staged.replace(target)


def test_new_bytes_at_an_approved_path_are_scanned_again(
    strict: LoupeServer, pictures: dict[str, Path]
) -> None:
    shutil.copy(pictures["hats"], strict.root / "a.png")
    assert status(strict, "img", "a.png") == 451
    assert httpx.get(f"{strict.url}/meta/a.png", timeout=60).status_code == 451
    decide_on(strict, "a.png", "accept")
    assert status(strict, "img", "a.png") == 200
    assert httpx.get(f"{strict.url}/meta/a.png", timeout=60).status_code == 200
    replace_bytes(strict.root / "a.png", pictures["boat"])
    time.sleep(0.01)
    assert status(strict, "img", "a.png") == 451, "other bytes rode on the approval"
    assert status(strict, "meta", "a.png") == 451
    assert len(pending(strict, "a.png")) == 1, "the new bytes wait for a human"


def test_the_same_bytes_elsewhere_keep_their_verdict(
    strict: LoupeServer, pictures: dict[str, Path]
) -> None:
    shutil.copy(pictures["ui"], strict.root / "b.png")
    assert status(strict, "img", "b.png") == 451
    decide_on(strict, "b.png", "reject")
    assert status(strict, "img", "b.png") == 451
    shutil.copy(pictures["ui"], strict.root / "b-copy.png")  # the rejected picture, renamed
    response = httpx.get(f"{strict.url}/img/b-copy.png?w=120", timeout=60)
    assert response.status_code == 451 and "rejected" in response.json()["detail"]
    assert status(strict, "meta", "b-copy.png") == 451


def test_an_image_under_review_gets_a_short_max_age(
    pictures: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(pictures["hats"], root / "hats.png")
    running = serve(root, tmp_path / "data", unsafe_threshold="1", review_threshold="0")
    try:
        response = httpx.get(f"{running.url}/img/hats.png?w=100", timeout=60)
        assert response.status_code == 200
        # Under review and provisional (q=auto): the shorter of the two caps.
        assert response.headers["cache-control"] == "public, max-age=60"
        decide_on(running, "hats.png", "accept")
        response = httpx.get(f"{running.url}/img/hats.png?w=100&q=80", timeout=60)
        assert "max-age=31536000" in response.headers["cache-control"]
        response = httpx.get(f"{running.url}/img/hats.png?w=100", timeout=60)
        expected = (
            "max-age=300"
            if response.headers["x-loupe-stage"] == "provisional"
            else ("max-age=31536000")
        )
        assert expected in response.headers["cache-control"]
    finally:
        running.stop()


def test_the_lane_scans_a_known_path_again_when_its_bytes_changed(
    pictures: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(pictures["hats"], root / "a.png")
    store = open_store(f"sqlite:///{tmp_path / 'loupe.db'}")
    config = ModerationConfig(enabled=True, unsafe_threshold=0, review_threshold=0)
    moderator = Moderator(store, NsfwDetector(shared_dir() / "models"), config)
    task = ModerateTask(moderator, SourceBytes(LocalSource(root), 10**8, root))
    job = Job(1, "moderation", "a.png", {}, "running", 1, 0.0)
    try:
        asyncio.run(task(job))
        [item] = store.reviews(component="moderation")
        decide(store, item, Decision("accept", None, "", None, "reviewer"))
        record = store.source(item.path)
        assert record is not None and record.moderation_status == "approved"
        replace_bytes(root / "a.png", pictures["boat"])
        asyncio.run(task(job))  # the same job again, as a new version queues it
        record = store.source(item.path)
        assert record is not None and record.moderation_status == "held"
        assert len(store.reviews(component="moderation")) == 1  # the new bytes' item
    finally:
        store.close()
