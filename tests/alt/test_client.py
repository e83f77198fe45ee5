"""The VLM client against a real (fake) OpenAI-compatible server over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import pyvips

from proxy.alt import (
    AltContext,
    AltDraft,
    AltTextError,
    ImageUnreadable,
    VlmBadResponse,
    VlmClient,
    VlmDisabled,
    VlmRateLimited,
    VlmTimeout,
    VlmUnavailable,
    build_messages,
)
from proxy.alt.client import retry_after
from proxy.config import VlmConfig
from tests.support import free_port
from tests.vlm_server import DEFAULT_REPLY, VlmServer

CONTEXT = AltContext(
    folder="shop/shoes",
    filename="red-boot.jpg",
    caption="New season boots",
    title="Autumn collection",
    exif={"date": "2021-05-04 10:11:12", "camera": "Canon EOS 5D"},
)


@pytest.fixture(scope="module")
def image() -> bytes:
    """A 1000x700 PNG: larger than any max_image_side the tests use."""
    xyz = pyvips.Image.xyz(1000, 700)
    png: bytes = (
        (xyz.extract_band(0) / 4)
        .bandjoin([xyz.extract_band(1) / 3, 90])
        .cast("uchar")
        .pngsave_buffer()
    )
    return png


@pytest.fixture
def vlm() -> Iterator[VlmServer]:
    with VlmServer() as server:
        yield server


def describe(
    url: str | None,
    image: bytes,
    context: AltContext = CONTEXT,
    client: httpx.AsyncClient | None = None,
    **settings: Any,
) -> AltDraft:
    async def run() -> AltDraft:
        vlm = VlmClient(VlmConfig(url=url, **settings), client=client)
        try:
            return await vlm.describe(image, context)
        finally:
            await vlm.aclose()

    return asyncio.run(run())


def failure(vlm: VlmServer, image: bytes, **settings: Any) -> AltTextError:
    with pytest.raises(AltTextError) as caught:
        describe(vlm.url, image, **settings)
    return caught.value


# --- success --------------------------------------------------------------------------------


def test_logprobs_answer(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "logprobs"
    vlm.confidence = 0.2  # ignored: logprobs win over the self-rating
    draft = describe(vlm.url, image)
    assert draft.text == DEFAULT_REPLY
    assert draft.confidence_source == "logprobs"
    assert draft.confidence == pytest.approx(0.97)
    assert draft.model == "test-vlm"


def test_logprobs_one_guessed_word_lowers_confidence(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "logprobs"
    vlm.token_probs = {"boot": 0.02}
    draft = describe(vlm.url, image)
    assert draft.confidence < 0.5


def test_logprobs_uniformly_low(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "logprobs"
    vlm.alt_token_prob = 0.4
    vlm.scaffold_prob = 0.9999
    assert describe(vlm.url, image).confidence == pytest.approx(0.4)


def test_logprobs_ignore_scaffolding_and_digits(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "logprobs"
    vlm.scaffold_prob = 0.01
    vlm.confidence_token_prob = 0.01
    assert describe(vlm.url, image).confidence == pytest.approx(0.97)


def test_self_rated_answer(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "self-rated"
    vlm.confidence = 0.55
    draft = describe(vlm.url, image)
    assert (draft.text, draft.confidence, draft.confidence_source) == (
        DEFAULT_REPLY,
        0.55,
        "self-rated",
    )


def test_self_rating_is_clamped(vlm: VlmServer, image: bytes) -> None:
    vlm.confidence = -0.5
    assert describe(vlm.url, image).confidence == 0.0
    vlm.confidence = "1.0"
    assert describe(vlm.url, image).confidence == 1.0


def test_fenced_json_with_prose(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "fenced-json"
    vlm.confidence = 0.8
    draft = describe(vlm.url, image)
    assert (draft.text, draft.confidence, draft.confidence_source) == (
        DEFAULT_REPLY,
        0.8,
        "self-rated",
    )


def test_plain_text_with_logprobs(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "plain-text"
    vlm.reply = "Alt text: a dog asleep on a sofa."
    vlm.alt_token_prob = 0.9
    draft = describe(vlm.url, image)
    assert draft.text == "A dog asleep on a sofa."
    assert draft.confidence_source == "logprobs"
    assert draft.confidence == pytest.approx(0.9)


def test_json_escapes_in_the_alt_text(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "logprobs"
    vlm.reply = 'A sign reading "Caf\u00e9 \u2615" above a door.'
    assert describe(vlm.url, image).text == vlm.reply


# --- unusable answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("no-confidence", "no_confidence"),
        ("garbage", "not_json"),
        ("empty", "empty"),
        ("no-choices", "no_choices"),
        ("refusal", "refusal"),
        ("identify", "identifies_person"),
        ("long", "too_long"),
    ],
)
def test_bad_answers(vlm: VlmServer, image: bytes, mode: Any, reason: str) -> None:
    vlm.mode = mode
    error = failure(vlm, image)
    assert isinstance(error, VlmBadResponse)
    assert error.reason == reason


def test_plain_text_without_logprobs_has_no_confidence(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "plain-text"
    vlm.logprobs = False
    error = failure(vlm, image)
    assert isinstance(error, VlmBadResponse) and error.reason == "no_confidence"


def test_429_is_rate_limited_with_retry_after(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "429"
    error = failure(vlm, image)
    assert isinstance(error, VlmRateLimited)
    assert error.retry_after_s == 7.0 and error.reason == "rate_limited"
    vlm.retry_after = None
    error = failure(vlm, image)
    assert isinstance(error, VlmRateLimited) and error.retry_after_s is None


def test_retry_after_forms() -> None:
    assert retry_after("12") == 12.0
    assert retry_after(" 1.5 ") == 1.5
    assert retry_after("-3") == 0.0
    assert retry_after("soon") is None
    assert retry_after("nan") is None
    assert retry_after(None) is None
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert retry_after("Tue, 14 Nov 2023 22:14:00 GMT", now=now) == pytest.approx(40.0)
    assert retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0


def test_500_is_unavailable(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "500"
    error = failure(vlm, image)
    assert isinstance(error, VlmUnavailable) and error.reason == "http_5xx"
    assert "model crashed" in str(error)


def test_wrong_path_is_unavailable(vlm: VlmServer, image: bytes) -> None:
    with pytest.raises(VlmUnavailable) as caught:
        describe(vlm.url + "/extra", image)
    assert caught.value.reason == "http_error"


def test_connection_refused_is_unavailable(image: bytes) -> None:
    with pytest.raises(VlmUnavailable) as caught:
        describe(f"http://127.0.0.1:{free_port()}/v1", image, timeout_s=5)
    assert caught.value.reason == "connect_error"


def test_timeout_is_honoured(vlm: VlmServer, image: bytes) -> None:
    vlm.mode = "slow"
    vlm.delay_s = 5.0
    started = time.monotonic()
    with pytest.raises(VlmTimeout) as caught:
        describe(vlm.url, image, timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed
    assert caught.value.reason == "timeout"


def test_unreadable_image_sends_nothing(vlm: VlmServer) -> None:
    with pytest.raises(ImageUnreadable):
        describe(vlm.url, b"not an image")
    assert vlm.requests == []


# --- the request ----------------------------------------------------------------------------


def test_request_shape(vlm: VlmServer, image: bytes) -> None:
    describe(vlm.url + "/", image, model="llava:13b", max_tokens=150, max_image_side=320)
    assert vlm.paths == ["/v1/chat/completions"]
    body = vlm.requests[0]
    assert body["model"] == "llava:13b"
    assert body["max_tokens"] == 150
    assert body["temperature"] == 0
    assert body["logprobs"] is True
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    parts = {part["type"]: part for part in user["content"]}
    assert set(parts) == {"text", "image_url"}
    url = parts["image_url"]["image_url"]["url"]
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    jpeg = base64.b64decode(url[len(prefix) :], validate=True)
    assert jpeg[:3] == b"\xff\xd8\xff"
    sent = pyvips.Image.new_from_buffer(jpeg, "")
    assert max(sent.width, sent.height) == 320  # 1000x700 shrunk to fit, never above the limit
    assert sent.get("vips-loader") == "jpegload_buffer"
    assert "authorization" not in vlm.headers[0]


def test_prompt_carries_context_and_rules(vlm: VlmServer, image: bytes) -> None:
    describe(vlm.url, image)
    system, user = vlm.requests[0]["messages"]
    text = next(part["text"] for part in user["content"] if part["type"] == "text")
    for hint in (
        "shop/shoes",
        "red-boot.jpg",
        "New season boots",
        "Autumn collection",
        "2021-05-04 10:11:12",
        "Canon EOS 5D",
    ):
        assert hint in text
    rules = system["content"].lower()
    assert "never identify people" in rules
    assert "no names" in rules and "age" in rules and "ethnicity" in rules
    assert '"alt"' in rules and '"confidence"' in rules and "125 characters" in rules


def test_prompt_without_context() -> None:
    messages = build_messages("data:image/jpeg;base64,AA==", AltContext("", ""))
    text = messages[1]["content"][0]["text"]
    assert "No context" in text
    assert messages[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64,AA=="},
    }


def test_bearer_key_is_sent(vlm: VlmServer, image: bytes) -> None:
    describe(vlm.url, image, api_key="sk-test-123")
    assert vlm.headers[0]["authorization"] == "Bearer sk-test-123"


def test_environment_proxies_are_ignored(
    vlm: VlmServer, image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert describe(vlm.url, image).text == DEFAULT_REPLY


def test_a_passed_client_is_used_and_left_open(vlm: VlmServer, image: bytes) -> None:
    async def run() -> bool:
        async with httpx.AsyncClient(trust_env=False) as http:
            vlm_client = VlmClient(VlmConfig(url=vlm.url), client=http)
            await vlm_client.describe(image, CONTEXT)
            await vlm_client.aclose()
            return http.is_closed

    assert asyncio.run(run()) is False
    assert len(vlm.requests) == 1


# --- disabled ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, "", "   "])
def test_disabled_client_does_no_io(url: str | None) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = VlmClient(VlmConfig(url=url), client=http)
            assert client.enabled is False
            with pytest.raises(VlmDisabled) as caught:
                await client.describe(b"not even an image", CONTEXT)
            assert caught.value.reason == "disabled"

    asyncio.run(run())
    assert calls == []


def test_enabled_property(vlm: VlmServer) -> None:
    assert VlmClient(VlmConfig(url=vlm.url)).enabled is True
