"""Hostile sources: each is refused with its own 4xx problem (never a 500, never the bytes
of something outside the root), and the server keeps serving afterwards.

Case -> status (default config unless noted):
  truncated JPEG / PNG ............................ 422 damaged-image
  PNG whose IHDR claims 60000x60000 (~100 KB) ....... 413 source-too-large (pixels)
  GIF with 10,000 frames ........................... 413 source-too-large (frames)
  JPEG + appended ZIP .............................. 415 polyglot-image
  JPEG whose COM segment holds <script> ............ 415 polyglot-image
  HTML named .jpg .................................. 415 unsupported-image
  zero bytes ....................................... 415 unsupported-image
  broken APP1 Exif (six variants) .................. 200, shown as stored (orientation 1)
  SVG, default ..................................... 415; with images.allow_svg: 200
  symlink (file or folder) leaving the root ........ 403 forbidden
  ``..`` in the path (raw or percent-encoded) ...... 403/404, never the bytes
  larger than limits.max_source_bytes .............. 413 source-too-large (bytes)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.integration import nasty
from tests.integration.imaging import NO_MODERN, raw_get
from tests.support import LoupeServer, shared_dir

TIMEOUT = 30.0
SECRET = b"LOUPE-TOP-SECRET-" * 8
SVG = shared_dir() / "data" / "generated" / "vector_rings.svg"


def _secret_image() -> bytes:
    """A perfectly valid JPEG outside the root: if the guard failed, it would be served."""
    return nasty.jpeg(32, 32, seed=99) + b"\xff\xfe\x00\x90" + SECRET[:142]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(_secret_image())
    (outside / "passwd").write_bytes(SECRET)
    files: dict[str, bytes] = {
        "control.jpg": nasty.jpeg(96, 64),
        "truncated.jpg": nasty.truncated(nasty.jpeg(256, 256)),
        "truncated.png": nasty.truncated(nasty.png(256, 256)),
        "bomb.png": nasty.png_dimension_bomb(),
        "frames.gif": nasty.gif_frames(10_000),
        "polyglot.jpg": nasty.jpeg_zip_polyglot(),
        "script-comment.jpg": nasty.jpeg_with_script_comment(),
        "page.jpg": nasty.HTML,
        "empty.jpg": b"",
        "big.png": nasty.png(200, 200),  # ~120 KB of noise
    }
    for name, blob in nasty.broken_exif_variants().items():
        files[f"exif-{name}.jpg"] = blob
    for name, blob in files.items():
        (root / name).write_bytes(blob)
    if SVG.is_file():
        shutil.copy(SVG, root / "rings.svg")
    os.symlink(outside / "secret.jpg", root / "escape.jpg")
    os.symlink(outside, root / "outdir")
    os.symlink("../outside/passwd", root / "relative-escape.png")
    os.symlink("control.jpg", root / "alias.jpg")  # stays inside: allowed
    return base


@pytest.fixture(scope="module")
def hostile(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    running = LoupeServer(layout / "root", tmp_path_factory.mktemp("hostile-data"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lenient(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    """SVG allowed, and a small byte limit."""
    running = LoupeServer(
        layout / "root",
        tmp_path_factory.mktemp("lenient-data"),
        env={"LOUPE_IMAGES_ALLOW_SVG": "true", "LOUPE_LIMITS_MAX_SOURCE_BYTES": "50000"},
    )
    yield running
    running.stop()


def fetch(server: LoupeServer, path: str, query: str = "w=48") -> httpx.Response:
    url = f"{server.url}/img/{path}" + (f"?{query}" if query else "")
    return httpx.get(url, headers=NO_MODERN, timeout=TIMEOUT)


def healthy(server: LoupeServer) -> None:
    assert server.process.poll() is None, "the server died"
    assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200


CASES: list[tuple[str, int, str, str]] = [
    # (file, status, problem slug, a word the detail must contain)
    ("truncated.jpg", 422, "damaged-image", ""),
    ("truncated.png", 422, "damaged-image", ""),
    ("bomb.png", 413, "source-too-large", "60000x60000"),
    ("frames.gif", 413, "source-too-large", "10000 frames"),
    ("polyglot.jpg", 415, "polyglot-image", "ZIP"),
    ("script-comment.jpg", 415, "polyglot-image", "script"),
    ("page.jpg", 415, "unsupported-image", ""),
    ("empty.jpg", 415, "unsupported-image", "empty"),
    ("rings.svg", 415, "unsupported-image", "svg"),
]


@pytest.mark.parametrize(("path", "status", "slug", "word"), CASES, ids=[c[0] for c in CASES])
def test_hostile_source_gets_its_problem(
    hostile: LoupeServer, path: str, status: int, slug: str, word: str
) -> None:
    if path.endswith(".svg") and not SVG.is_file():
        pytest.skip(f"{SVG} not found")
    for method in ("GET", "HEAD"):
        response = httpx.request(
            method, f"{hostile.url}/img/{path}?w=48", headers=NO_MODERN, timeout=TIMEOUT
        )
        assert response.status_code == status, (method, response.status_code, response.text)
        assert response.headers["content-type"].startswith(nasty.PROBLEM)
    body = nasty.is_problem(fetch(hostile, path), status)
    assert body["type"] == f"https://loupe.dev/problems/{slug}", body
    assert word.lower() in str(body["detail"]).lower(), body
    healthy(hostile)


@pytest.mark.parametrize("variant", sorted(nasty.broken_exif_variants()))
def test_broken_exif_is_shown_as_stored(hostile: LoupeServer, variant: str) -> None:
    """Metadata is advisory: browsers show a JPEG whose Exif block is garbage, and so do
    we, as stored (no rotation guessed from garbage), and the garbage is not passed on."""
    response = fetch(hostile, f"exif-{variant}.jpg", "fm=png")
    assert response.status_code == 200, response.text
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert (image.width, image.height) == (64, 40)
    assert "exif-data" not in image.get_fields()
    healthy(hostile)


@pytest.mark.parametrize(
    "path", ["escape.jpg", "outdir/secret.jpg", "outdir/passwd", "relative-escape.png"]
)
def test_symlink_out_of_the_root_is_refused(hostile: LoupeServer, path: str) -> None:
    response = fetch(hostile, path, "")
    nasty.is_problem(response, 403)
    assert SECRET[:16] not in response.content
    assert b"\xff\xd8" not in response.content


@pytest.mark.parametrize(
    "target",
    [
        "/img/../outside/secret.jpg",
        "/img/%2e%2e/outside/secret.jpg",
        "/img/..%2foutside%2fsecret.jpg",
        "/img/outdir/../../outside/secret.jpg",
        "/img/%2E%2E%2Foutside/passwd",
    ],
)
def test_dot_dot_never_leaves_the_root(hostile: LoupeServer, target: str) -> None:
    response = raw_get(hostile, target)
    assert response.status_code in (400, 403, 404), (response.status_code, response.text)
    nasty.is_problem(response)
    assert SECRET[:16] not in response.content
    assert b"\xff\xd8" not in response.content


def test_symlink_inside_the_root_is_served(hostile: LoupeServer) -> None:
    response = fetch(hostile, "alias.jpg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/")


def test_svg_is_served_when_allowed(lenient: LoupeServer) -> None:
    if not SVG.is_file():
        pytest.skip(f"{SVG} not found")
    response = fetch(lenient, "rings.svg", "w=200&fm=png")
    assert response.status_code == 200, response.text
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert (image.width, image.height) == (200, 150)
    assert image.get("vips-loader").startswith("pngload")


def test_source_over_the_byte_limit_is_413(lenient: LoupeServer, layout: Path) -> None:
    assert (layout / "root" / "big.png").stat().st_size > 50_000
    body = nasty.is_problem(fetch(lenient, "big.png"), 413)
    assert body["type"] == "https://loupe.dev/problems/source-too-large"
    assert "50000" in str(body["detail"])
    # Below the limit, the same server serves.
    assert fetch(lenient, "control.jpg").status_code == 200
    healthy(lenient)


@pytest.mark.parametrize("name", ["frames.gif", "bomb.png"])
def test_refusal_is_cheap(hostile: LoupeServer, name: str) -> None:
    """Header checks refuse before decoding: repeating the request stays fast."""
    with httpx.Client(timeout=TIMEOUT) as client:
        for _ in range(5):
            response = client.get(f"{hostile.url}/img/{name}?w=20", headers=NO_MODERN)
            assert response.status_code == 413
            assert response.elapsed.total_seconds() < 2.0


def test_server_is_healthy_after_the_corpus(hostile: LoupeServer) -> None:
    healthy(hostile)
    response = fetch(hostile, "control.jpg", "w=48&fm=jpeg")
    assert response.status_code == 200
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert (image.width, image.height) == (48, 32)
    assert hostile.metric("loupe_requests_total", 'route="/img",status="500"') == 0
    assert "Traceback" not in hostile.log.read_text(errors="replace")
