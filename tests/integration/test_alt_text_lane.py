"""Alt text through the background lane, against a loopback OpenAI-compatible VLM over real
HTTP: confident text publishes as machine-generated, doubtful text waits for a human, every
failure leaves it empty and opens a review, and the same picture never costs a second call."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for
from tests.vlm_server import VlmServer

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def vlm() -> Iterator[VlmServer]:
    with VlmServer(mode="logprobs") as server:
        yield server


@pytest.fixture(scope="module")
def root(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("alt-root")
    (folder / "shop").mkdir()
    pictures = ["01", "02", "03", "06", "07", "08", "09", "10"]
    for name, number in zip("abcdefgh", pictures, strict=True):
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", folder / "shop" / f"{name}.png")
    shutil.copy(data_root / "kodak" / "kodim01.png", folder / "shop" / "a-again.png")
    (folder / "shop" / "b.png.json").write_text('{"caption": "Autumn catalogue cover"}')
    return folder


@pytest.fixture(scope="module")
def server(
    root: Path, vlm: VlmServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    env = {**FAST_LANE, "LOUPE_VLM_TIMEOUT_S": "1.5"}
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("alt-data"),
        env=env,
        args=(
            "--vlm-url",
            vlm.url,
            "--vlm-model",
            "llava-test",
            "--admin-token",
            TOKEN,
            "--models-dir",
            str(shared_dir() / "models"),
        ),
    )
    yield running
    running.stop()


def alt_of(server: LoupeServer, path: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/admin/api/alt/{path}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def pending(server: LoupeServer, component: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/admin/api/review", params={"component": component}, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def first_request(server: LoupeServer, path: str, **params: str) -> None:
    response = httpx.get(f"{server.url}/img/{path}", params={"w": "200", **params}, timeout=60)
    assert response.status_code == 200, response.text


def test_confident_text_publishes_as_machine_generated(server: LoupeServer, vlm: VlmServer) -> None:
    vlm.mode, vlm.alt_token_prob = "logprobs", 0.98
    calls = len(vlm.requests)
    first_request(server, "shop/a.png")
    first_request(server, "shop/a.png", w="120")  # another size: the same source, one job
    alt = wait_for(
        lambda: alt_of(server, "shop/a.png")["status"] == "machine" and alt_of(server, "shop/a.png")
    )
    assert alt["text"] == vlm.reply
    assert alt["machine_generated"] is True and alt["model"] == "test-vlm"
    assert alt["confidence"] >= 0.9
    assert len(vlm.requests) == calls + 1
    request = vlm.requests[-1]
    assert request["model"] == "llava-test" and request["logprobs"] is True
    image_part = request["messages"][-1]["content"]
    assert any(part.get("type") == "image_url" for part in image_part)
    meta = httpx.get(f"{server.url}/meta/shop/a.png", timeout=60).json()
    assert meta["alt"]["status"] == "machine" and meta["alt"]["text"] == vlm.reply


def test_a_reupload_with_the_same_phash_reuses_the_text(
    server: LoupeServer, vlm: VlmServer
) -> None:
    wait_for(lambda: alt_of(server, "shop/a.png")["status"] == "machine", what="a.png first")
    calls = len(vlm.requests)
    first_request(server, "shop/a-again.png")
    alt = wait_for(
        lambda: (
            alt_of(server, "shop/a-again.png")["status"] == "machine"
            and alt_of(server, "shop/a-again.png")
        )
    )
    assert alt["reused_from"] == "shop/a.png" and alt["text"] == vlm.reply
    assert len(vlm.requests) == calls  # no model call


def test_context_reaches_the_prompt(server: LoupeServer, vlm: VlmServer) -> None:
    vlm.mode = "logprobs"
    calls = len(vlm.requests)
    first_request(server, "shop/b.png")
    wait_for(lambda: len(vlm.requests) > calls, what="the VLM call")
    prompt = str(vlm.requests[-1]["messages"])
    assert "Autumn catalogue cover" in prompt and "shop" in prompt


def test_low_confidence_is_a_draft_for_review_never_published(
    server: LoupeServer, vlm: VlmServer
) -> None:
    vlm.mode, vlm.alt_token_prob = "logprobs", 0.3
    first_request(server, "shop/c.png")
    item = wait_for(lambda: [i for i in pending(server, "alt") if i["path"] == "shop/c.png"])[0]
    assert item["payload"]["reason"] == "low-confidence"
    assert item["payload"]["draft"] == vlm.reply
    alt = alt_of(server, "shop/c.png")
    assert alt["text"] == "" and alt["draft"] == vlm.reply and alt["machine_generated"] is True
    vlm.alt_token_prob = 0.97


@pytest.mark.parametrize(
    ("path", "mode", "reason"),
    [
        ("shop/d.png", "429", "rate_limited"),
        ("shop/e.png", "slow", "timeout"),
        ("shop/f.png", "garbage", "not_json"),
        ("shop/g.png", "identify", "identifies_person"),
        ("shop/h.png", "500", "http_5xx"),
    ],
)
def test_failures_leave_it_empty_and_open_a_review(
    server: LoupeServer, vlm: VlmServer, path: str, mode: str, reason: str
) -> None:
    vlm.mode = mode  # type: ignore[assignment]
    vlm.delay_s = 3.0 if mode == "slow" else 0.0
    try:
        first_request(server, path)  # the image itself is served regardless
        item = wait_for(
            lambda: [i for i in pending(server, "alt") if i["path"] == path], timeout=30
        )[0]
        assert item["payload"]["reason"] == reason
        alt = alt_of(server, path)
        assert alt["text"] == "" and alt["status"] == "empty"
    finally:
        vlm.mode, vlm.delay_s = "logprobs", 0.0


def test_a_human_text_wins_and_is_never_overwritten(server: LoupeServer, vlm: VlmServer) -> None:
    response = httpx.put(
        f"{server.url}/admin/api/alt/shop/a.png",
        json={"text": "Two red barns under a blue sky."},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "user"
    meta = httpx.get(f"{server.url}/meta/shop/a.png", timeout=60).json()
    assert meta["alt"] == {
        "text": "Two red barns under a blue sky.",
        "status": "user",
        "draft": None,
        "confidence": None,
        "machine_generated": False,
        "model": None,
        "reused_from": None,
    }


def test_a_new_picture_at_the_same_path_gets_new_text(
    server: LoupeServer, vlm: VlmServer, root: Path, data_root: Path
) -> None:
    vlm.mode, vlm.alt_token_prob = "logprobs", 0.98
    target = root / "shop" / "swap.png"
    shutil.copy(data_root / "kodak" / "kodim11.png", target)
    vlm.reply = "A small boat moored at a wooden jetty."
    first_request(server, "shop/swap.png")
    wait_for(lambda: alt_of(server, "shop/swap.png")["text"] == vlm.reply, what="the first text")
    shutil.copy(data_root / "kodak" / "kodim14.png", target)  # overwritten: new bytes, mtime
    vlm.reply = "Four people paddle a raft through white water."
    first_request(server, "shop/swap.png")
    wait_for(lambda: alt_of(server, "shop/swap.png")["text"] == vlm.reply, what="the new text")
    vlm.reply = "A red leather boot on a wooden floor."


def test_a_human_text_under_a_new_picture_goes_back_to_a_human(
    server: LoupeServer, vlm: VlmServer, root: Path, data_root: Path
) -> None:
    target = root / "shop" / "human.png"
    shutil.copy(data_root / "kodak" / "kodim16.png", target)
    first_request(server, "shop/human.png")
    wait_for(lambda: alt_of(server, "shop/human.png")["status"] == "machine", what="machine")
    put = httpx.put(
        f"{server.url}/admin/api/alt/shop/human.png",
        json={"text": "A calm lake at dusk."},
        headers=AUTH,
        timeout=10,
    )
    assert put.status_code == 200
    shutil.copy(data_root / "kodak" / "kodim17.png", target)
    first_request(server, "shop/human.png")
    item = wait_for(
        lambda: [
            i
            for i in pending(server, "alt")
            if i["path"] == "shop/human.png" and i["payload"]["reason"] == "picture-changed"
        ],
        what="a picture-changed review",
    )[0]
    assert item["payload"]["draft"] == "A calm lake at dusk."
    assert alt_of(server, "shop/human.png")["text"] == "A calm lake at dusk."  # never replaced
