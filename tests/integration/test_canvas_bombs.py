"""Animated canvas bombs: a few KB whose frames are tiny but whose canvas is huge. libvips
composites every frame onto the whole canvas, so the animation budget counts canvas pixels
times frames, from the header, and refuses with 413 before any pixel is decoded: fast, and
with no render thread left burning CPU after the answer.

Case -> status (default limits unless noted):
  GIF, 9000x11000 screen, 1 full frame + 119 frames of 1x1 (~42 KB) ....... 413
  WebP, 9500x10000 VP8X canvas, 90 ANMF frames of 1x1 (~3 KB) ........... 413
  the same as a still (fm=jpeg): one frame decoded ........................ 200
  multi-page TIFF / multi-image AVIF over a lowered budget ................ 413
  a small real animation .................................................. 200, animated
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.integration import nasty
from tests.support import LoupeServer, shared_dir

TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ANIMATED_ACCEPT = {"Accept": "image/webp,*/*"}
TINY_GIF = shared_dir() / "data" / "skimage" / "no_time_for_that_tiny.gif"


def _pages(width: int, height: int, pages: int) -> pyvips.Image:
    ramp = pyvips.Image.xyz(width, height * pages)[0] % 256
    image = ramp.bandjoin([ramp, 255 - ramp]).cast("uchar").copy(interpretation="srgb")
    image.set_type(pyvips.GValue.gint_type, "page-height", height)
    return image


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bombs")
    (folder / "screen.gif").write_bytes(nasty.gif_canvas_bomb(9000, 11000, 120))
    (folder / "canvas.webp").write_bytes(nasty.webp_canvas_bomb(9500, 10000, 90))
    (folder / "pages.tif").write_bytes(_pages(700, 500, 4).tiffsave_buffer(compression="deflate"))
    avif = _pages(640, 480, 4).heifsave_buffer(compression="av1", effort=0, Q=30)
    (folder / "sequence.avif").write_bytes(avif)
    small = TINY_GIF.read_bytes() if TINY_GIF.is_file() else _pages(40, 30, 6).gifsave_buffer()
    (folder / "small.gif").write_bytes(small)
    return folder


@pytest.fixture(scope="module")
def server(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    running = LoupeServer(root, tmp_path_factory.mktemp("bombs-data"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tight(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    """A lowered canvas budget (1 MP), so multi-page fixtures stay cheap to build."""
    env = {"LOUPE_LIMITS_MAX_ANIMATION_CANVAS_PIXELS": "1000000"}
    running = LoupeServer(root, tmp_path_factory.mktemp("tight-data"), env=env)
    yield running
    running.stop()


def cpu_seconds(server: LoupeServer) -> float:
    """User + system CPU of the server process so far (every thread)."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wait_until_idle(server: LoupeServer, limit_s: float = 60.0) -> None:
    """Let the lane finish what earlier 200s queued (fingerprint, analysis), so the CPU
    measured after the 413 is this request's alone."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(server)
        time.sleep(0.5)
        if cpu_seconds(server) - before < 0.05:
            return
    raise AssertionError(f"the server never went idle within {limit_s:.0f} s")


def assert_refused_and_idle(server: LoupeServer, path: str, query: str) -> None:
    wait_until_idle(server)
    started = time.monotonic()
    response = httpx.get(
        f"{server.url}/img/{path}?{query}", headers=ANIMATED_ACCEPT, timeout=TIMEOUT
    )
    answered = time.monotonic() - started
    body = nasty.is_problem(response, 413)
    assert body["type"] == "https://loupe.dev/problems/source-too-large", body
    assert "canvas" in str(body["detail"]), body
    assert answered < 1.0, f"413 after {answered:.2f} s"
    # Nothing keeps decoding behind the answer: the pool is empty and the process idles.
    assert server.metric("loupe_renders_in_flight") == 0
    before = cpu_seconds(server)
    time.sleep(1.0)
    burnt = cpu_seconds(server) - before
    assert burnt < 0.3, f"the server burnt {burnt:.2f} s of CPU in the second after its 413"


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("screen.gif", "w=64&fm=gif"),
        ("screen.gif", "w=48"),  # fm=auto, WebP accepted: an animated WebP
        ("canvas.webp", "w=64&fm=webp"),
        ("canvas.webp", "w=32&h=32&fit=crop&fm=gif"),
    ],
)
def test_a_canvas_bomb_is_refused_from_its_header(
    server: LoupeServer, path: str, query: str
) -> None:
    assert_refused_and_idle(server, path, query)


def test_a_still_of_the_canvas_bomb_decodes_one_frame(server: LoupeServer) -> None:
    response = httpx.get(f"{server.url}/img/canvas.webp?w=40&fm=png", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert "animation-dropped" in response.headers["x-loupe-note"]


@pytest.mark.parametrize("path", ["pages.tif", "sequence.avif"])
def test_every_multi_page_format_counts_its_pages(tight: LoupeServer, path: str) -> None:
    assert_refused_and_idle(tight, path, "w=50&fm=webp")
    still = httpx.get(f"{tight.url}/img/{path}?w=50&fm=jpeg", timeout=TIMEOUT)
    assert still.status_code == 200, still.text


def test_a_real_animation_under_the_budget_is_served_animated(server: LoupeServer) -> None:
    url = f"{server.url}/img/small.gif?w=32"
    response = httpx.get(url, headers=ANIMATED_ACCEPT, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    decoded = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    assert int(decoded.get("n-pages")) > 1
