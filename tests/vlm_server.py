"""A fake OpenAI-compatible vision-language model on 127.0.0.1, for tests that need real HTTP.

``VlmServer`` answers ``POST /v1/chat/completions`` from a thread, records every request, and
changes behaviour at runtime through plain attributes::

    with VlmServer() as vlm:
        vlm.mode = "logprobs"
        vlm.reply = "A red leather boot on a wooden floor."
        vlm.token_probs = {"boot": 0.05}     # make one word of the alt text a guess
        ... VlmConfig(url=vlm.url) ...
        assert vlm.requests[-1]["model"] == "llava"

Other test modules can use the ``vlm_server`` fixture via ``pytest_plugins = ["tests.vlm_server"]``
or by wrapping ``VlmServer`` in their own fixture.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

Mode = Literal[
    "logprobs",  # JSON {"alt", "confidence"} plus choices[0].logprobs.content
    "self-rated",  # JSON {"alt", "confidence"}, no logprobs
    "no-confidence",  # JSON {"alt"} only, no logprobs
    "slow",  # self-rated after delay_s (10 s when delay_s is 0)
    "429",  # HTTP 429 with Retry-After: retry_after (when not None)
    "500",  # HTTP 500 with an error object
    "garbage",  # HTTP 200 whose body is not JSON
    "empty",  # JSON {"alt": "", "confidence": ...}
    "no-choices",  # {"choices": []}
    "refusal",  # a plain-text refusal, with logprobs
    "identify",  # JSON naming a person (identify_reply)
    "plain-text",  # reply as plain text, with logprobs
    "fenced-json",  # prose plus a ```json fenced object, self-rated
    "long",  # JSON whose alt text is far too long
]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]

DEFAULT_REPLY = "A red leather boot on a wooden floor."
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def tokenize(text: str) -> list[str]:
    """BPE-like pieces (a word with its leading space, or one punctuation mark) that add up to
    ``text`` exactly, as real servers' logprob tokens do."""
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text
    return tokens


class VlmServer:
    """The fake server; every attribute may be changed between (or during) requests."""

    def __init__(self, mode: Mode = "self-rated") -> None:
        self.mode: Mode = mode
        self.reply = DEFAULT_REPLY
        self.identify_reply = "This is Barack Obama speaking at a podium."
        self.confidence: float | str = 0.9
        """The self-rating written into the JSON answer."""
        self.delay_s = 0.0
        """Seconds to wait before answering (any mode)."""
        self.alt_token_prob = 0.97
        """Probability of each alt-text token in logprobs answers ..."""
        self.token_probs: dict[str, float] = {}
        """... unless the token, stripped of whitespace, is a key here."""
        self.scaffold_prob = 0.999
        """Probability of the JSON scaffolding tokens ({"alt": " etc.)."""
        self.confidence_token_prob = 0.6
        """Probability of the self-rating's digit tokens."""
        self.logprobs: bool | None = None
        """Force logprobs on or off in any answer; ``None`` = as the mode says."""
        self.retry_after: str | None = "7"
        self.model = "test-vlm"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> VlmServer:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in delay_s
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> VlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a ``VlmConfig`` takes (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Forget recorded requests (the behaviour attributes stay)."""
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.paths.clear()

    # --- answers ----------------------------------------------------------------------------

    def _record(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        with self._lock:
            self.paths.append(path)
            self.headers.append(headers)
            self.requests.append(body if isinstance(body, dict) else {"_raw": body})

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for the current mode."""
        mode = self.mode
        self._wait(self.delay_s or (10.0 if mode == "slow" else 0.0))
        json_type = {"Content-Type": "application/json"}
        if mode == "429":
            headers = dict(json_type)
            if self.retry_after is not None:
                headers["Retry-After"] = self.retry_after
            return 429, headers, _dumps({"error": {"message": "rate limited", "code": 429}})
        if mode == "500":
            return 500, json_type, _dumps({"error": {"message": "model crashed", "code": 500}})
        if mode == "garbage":
            return 200, json_type, b"<html><body>502 Bad Gateway</body></html>"
        if mode == "no-choices":
            return (
                200,
                json_type,
                _dumps(
                    {
                        "id": "chatcmpl-x",
                        "object": "chat.completion",
                        "model": self.model,
                        "choices": [],
                    }
                ),
            )
        pieces = self._pieces(mode)
        with_logprobs = self.logprobs
        if with_logprobs is None:
            with_logprobs = mode in ("logprobs", "plain-text", "refusal")
        content = "".join(text for text, _ in pieces)
        logprobs = None
        if with_logprobs:
            logprobs = {"content": [_entry(token, prob) for token, prob in self._tokens(pieces)]}
        return 200, json_type, _dumps(self._completion(content, logprobs))

    def _pieces(self, mode: str) -> list[tuple[str, str]]:
        """The answer's text as (text, kind) pieces; kind is scaffold, alt or digits."""
        reply = {"empty": "", "identify": self.identify_reply, "long": self.reply * 12}.get(
            mode, self.reply
        )
        if mode in ("plain-text", "refusal"):
            text = "I'm sorry, but I can't help with that." if mode == "refusal" else reply
            return [(text, "alt")]
        alt = json.dumps(reply, ensure_ascii=False)[1:-1]  # escaped, without the quotes
        if mode == "no-confidence":
            return [('{"alt": "', "scaffold"), (alt, "alt"), ('"}', "scaffold")]
        pieces = [
            ('{"alt": "', "scaffold"),
            (alt, "alt"),
            ('", "confidence": ', "scaffold"),
            (json.dumps(self.confidence), "digits"),
            ("}", "scaffold"),
        ]
        if mode == "fenced-json":
            pieces = [
                ("Sure! Here is the alt text:\n```json\n", "scaffold"),
                *pieces,
                ("\n```\nLet me know if you need more.", "scaffold"),
            ]
        return pieces

    def _tokens(self, pieces: list[tuple[str, str]]) -> Iterator[tuple[str, float]]:
        for text, kind in pieces:
            for token in tokenize(text):
                if kind == "alt":
                    yield token, self.token_probs.get(token.strip(), self.alt_token_prob)
                elif kind == "digits":
                    yield token, self.confidence_token_prob
                else:
                    yield token, self.scaffold_prob

    def _completion(self, content: str, logprobs: dict[str, Any] | None) -> dict[str, Any]:
        with self._lock:
            number = len(self.requests)
        return {
            "id": f"chatcmpl-test-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 600, "completion_tokens": 20, "total_tokens": 620},
        }


def _entry(token: str, prob: float) -> dict[str, Any]:
    logprob = math.log(prob) if prob > 0 else -9999.0
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
        "top_logprobs": [{"token": token, "logprob": logprob, "bytes": None}],
    }


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: VlmServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that time out hang up on purpose, mid-answer."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not access logs."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        owner = self.server.owner
        owner._record(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"Content-Type": "application/json"}, b'{"error": "not found"}')
            return
        self._send(*owner.answer())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


@pytest.fixture
def vlm_server() -> Iterator[VlmServer]:
    """A running fake VLM for one test."""
    with VlmServer() as server:
        yield server
