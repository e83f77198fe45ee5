"""Property-based fuzzing of one real server: random query strings and mutated image bytes.

Whatever arrives, the answer is a deliberate one: never a 500 (or anything >= 600), every
error is problem+json, every request finishes within a deadline, and at the end the
server is alive with a bounded resident set. Bounded to ~150 examples in all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration import nasty
from tests.support import LoupeServer

DEADLINE_S = 15.0
RSS_LIMIT_KB = 600 * 1024
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
PARAMS = ("w", "h", "dpr", "fit", "crop", "fp-x", "fp-y", "rect", "fm", "q", "policy", "ctx")
NAMES = (*PARAMS, "bg", "upscale", "s", "expires", "W", "width", "", "w[]", "%77", "fm ", "\u00e9")
CROPS = ("smart", "faces", "entropy", "attention", "center", "focalpoint")
POLICIES = ("general", "product", "art", "screenshot", "medical", "legal")
CONTEXTS = ("gallery", "search", "feed", "featured", "social", "hero")
ODD = ("0", "1", "-1", "nan", "inf", "1e309", "0x10", "1.5", "4.0000001", "\u00e9", "abc", "#fff")
SHAPES = ("0,0,10,10", "0,0,0,0", "9999999,1,1,1", "1,1,1", "ffffff", "000")
FORMATS = ("auto", "jpeg", "png", "webp", "avif", "gif")
WORDS = (*CROPS, *POLICIES, *CONTEXTS, *FORMATS, "clip", "crop", "fill", "scale", *ODD, *SHAPES)


def _sources() -> dict[str, bytes]:
    photo = nasty.noise(48, 32, seed=3)
    smooth = nasty.gradient(40, 30)
    frames = pyvips.Image.arrayjoin([smooth, photo.crop(0, 0, 40, 30), smooth], across=1)
    frames = frames.copy()
    frames.set_type(pyvips.GValue.gint_type, "page-height", 30)
    frames.set_type(pyvips.GValue.array_int_type, "delay", [80, 80, 80])
    alpha = smooth.bandjoin(smooth[0])
    return {
        "jpg": bytes(photo.jpegsave_buffer(Q=80, keep="none")),
        "prog.jpg": bytes(smooth.jpegsave_buffer(Q=80, interlace=True, keep="none")),
        "png": bytes(alpha.pngsave_buffer(keep="none")),
        "gif": bytes(frames.gifsave_buffer()),
        "webp": bytes(photo.webpsave_buffer(Q=70, keep="none")),
        "tif": bytes(smooth.tiffsave_buffer(keep="none")),
    }


SOURCES = _sources()


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-root")
    for suffix, blob in SOURCES.items():
        (root / f"good.{suffix}").write_bytes(blob)
    return root


@pytest.fixture(scope="module")
def fuzzed(fuzz_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    running = LoupeServer(
        fuzz_root,
        tmp_path_factory.mktemp("fuzz-data"),
        env={"LOUPE_SERVER_REQUEST_DEADLINE_S": "10"},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=DEADLINE_S) as running:
        yield running


def send(client: httpx.Client, server: LoupeServer, target: str) -> httpx.Response:
    """GET ``target`` byte for byte (no client-side normalisation) within the deadline."""
    request = client.build_request(
        "GET",
        server.url + "/",
        headers={"Accept": "image/avif,image/webp,*/*"},
        extensions={"target": target.encode("ascii")},
    )
    try:
        return client.send(request)
    except httpx.TimeoutException:
        pytest.fail(f"{target!r} took longer than {DEADLINE_S} s")


def check(response: httpx.Response, target: str) -> None:
    status = response.status_code
    assert status != 500 and status < 600, f"{target!r}: {status} {response.text[:300]}"
    if status >= 400:
        nasty.is_problem(response)
    elif status == 200:
        assert response.headers["content-type"].startswith("image/"), target
        assert int(response.headers["content-length"]) == len(response.content)


def encode(text: str) -> str:
    return quote(text, safe="=&;+,/:@!$'()*~-._%")


value = st.one_of(
    st.sampled_from(WORDS),
    st.integers(-3, 400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
structured = st.lists(st.tuples(st.sampled_from(NAMES), value), max_size=6).map(
    lambda pairs: "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)
)
free_text = st.text(max_size=60).map(encode)
# Only in-range values, so the combinations reach the renderer (kept small for speed).
VALID = {
    "w": st.integers(1, 300).map(str),
    "h": st.integers(1, 300).map(str),
    "dpr": st.sampled_from(["1", "1.5", "2"]),
    "fit": st.sampled_from(["clip", "crop", "fill", "scale"]),
    "crop": st.sampled_from(CROPS),
    "fp-x": st.floats(0, 1).map(str),
    "fp-y": st.floats(0, 1).map(str),
    "rect": st.lists(st.integers(0, 60), min_size=4, max_size=4).map(
        lambda r: ",".join(map(str, r))
    ),
    "fm": st.sampled_from(FORMATS),
    "q": st.one_of(st.just("auto"), st.integers(1, 100).map(str)),
    "policy": st.sampled_from(POLICIES),
    "ctx": st.sampled_from(CONTEXTS),
    "bg": st.sampled_from(["fff", "000000", "ff000080", "12ab34"]),
    "upscale": st.sampled_from(["0", "1"]),
}


@st.composite
def in_range(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(sorted(VALID)), max_size=7, unique=True))
    values = {name: draw(VALID[name]) for name in names}
    if "fp-x" in values or "fp-y" in values:  # only meaningful with a focal-point crop
        values["crop"] = "focalpoint"
    return "&".join(f"{name}={value}" for name, value in values.items())


PATHS = st.sampled_from(
    [f"good.{suffix}" for suffix in SOURCES] + ["missing.png", "good.jpg/..", "%00.png"]
)


@settings(FUZZ, max_examples=70)
@given(path=PATHS, query=st.one_of(structured, free_text, in_range()))
def test_random_queries(fuzzed: LoupeServer, client: httpx.Client, path: str, query: str) -> None:
    target = f"/img/{path}?{query}"
    check(send(client, fuzzed, target), target)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(sorted(SOURCES)))
    blob = bytearray(SOURCES[suffix])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "header"]))
        at = draw(st.integers(0, max(0, len(blob) - 1)))
        if kind == "flip" and blob:
            blob[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and blob:
            blob[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del blob[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del blob[at:]
        elif kind == "header" and len(blob) > 48:
            # Hit the header: dimensions, chunk lengths, markers live in the first bytes.
            spot = draw(st.integers(8, 48))
            blob[spot] = draw(st.integers(0, 255))
    return suffix, bytes(blob)


@settings(FUZZ, max_examples=80)
@given(case=mutated(), query=st.sampled_from(["w=24", "w=20&h=20&fit=crop&fm=png", "fm=gif", ""]))
def test_mutated_images(
    fuzzed: LoupeServer,
    client: httpx.Client,
    fuzz_root: Path,
    case: tuple[str, bytes],
    query: str,
) -> None:
    suffix, blob = case
    name = f"m-{hashlib.sha256(blob).hexdigest()[:20]}.{suffix}"
    (fuzz_root / name).write_bytes(blob)
    target = f"/img/{name}" + (f"?{query}" if query else "")
    response = send(client, fuzzed, target)
    check(response, target)
    assert response.status_code in (200, 413, 415, 422), (target, response.text[:300])


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_server_survived(fuzzed: LoupeServer, client: httpx.Client) -> None:
    assert fuzzed.process.poll() is None, "the server died"
    assert client.get(fuzzed.url + "/healthz").status_code == 200
    assert client.get(fuzzed.url + "/img/good.jpg?w=16").status_code == 200
    rss = _rss_kb(fuzzed.process.pid)
    assert rss < RSS_LIMIT_KB, f"server RSS {rss // 1024} MB"
    assert fuzzed.metric("loupe_requests_total", 'route="/img",status="500"') == 0
