"""Every geometry parameter against a real server, checked by decoding the output.

kodak/kodim01.png is 768x512 (landscape 3:2), kodak/kodim09.png is 512x768 (portrait).
Lossless PNG output (``fm=png``) is used wherever the pixels are compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvips

from tests.integration.imaging import (
    crop_header,
    decode,
    get,
    mean_abs_diff,
    pixels,
    resized,
    size,
    source,
)
from tests.support import LoupeServer, broken_crop_models

LANDSCAPE = "kodak/kodim01.png"  # 768x512
PORTRAIT = "kodak/kodim09.png"  # 512x768
EXIF6 = "generated/exif_orientation6_kodim08.jpg"  # kodim08 stored rotated, orientation 6

# (query, expected output size) on the 768x512 source.
SIZES = [
    # one side: the other follows the aspect
    ("w=300", (300, 200)),
    ("h=100", (150, 100)),
    # dpr multiplies w and h
    ("w=100&dpr=2", (200, 133)),
    ("w=100&h=50&fit=crop&dpr=3", (300, 150)),
    ("h=40&dpr=2.5", (150, 100)),
    # the four fits inside the source
    ("w=300&h=300", (300, 200)),
    ("w=300&h=300&fit=clip", (300, 200)),
    ("w=300&h=300&fit=crop", (300, 300)),
    ("w=300&h=300&fit=fill", (300, 300)),
    ("w=300&h=300&fit=scale", (300, 300)),
    ("w=400&h=100&fit=scale", (400, 100)),
    # larger than the source, no upscale: never larger than native
    ("w=1000", (768, 512)),
    ("w=500&dpr=2", (768, 512)),
    ("w=1000&h=1000", (768, 512)),
    ("w=1000&h=1000&fit=crop", (512, 512)),  # requested aspect (1:1) at native resolution
    ("w=2000&h=500&fit=crop", (768, 192)),  # 4:1 kept
    ("w=600&h=1200&fit=crop", (256, 512)),  # 1:2 kept
    ("w=1000&h=500&fit=scale", (768, 384)),  # 2:1 kept, shrunk to fit
    ("w=1000&h=1000&fit=fill", (1000, 1000)),  # padded to the exact box
    # upscale=1 allows larger output
    ("w=1000&upscale=1", (1000, 667)),
    ("w=1000&h=1000&upscale=1", (1000, 667)),
    ("w=1000&h=1000&fit=crop&upscale=1", (1000, 1000)),
    ("w=1000&h=500&fit=scale&upscale=1", (1000, 500)),
    ("w=1000&h=1000&fit=fill&upscale=1", (1000, 1000)),
    # upscale=0 spelled out is the default
    ("w=1000&upscale=0", (768, 512)),
    # no size: the source
    ("", (768, 512)),
]


@pytest.mark.parametrize(("query", "expected"), SIZES)
def test_output_dimensions(server: LoupeServer, query: str, expected: tuple[int, int]) -> None:
    image = decode(get(server, LANDSCAPE, query + "&fm=jpeg" if query else "fm=jpeg"))
    assert size(image) == expected


def test_clip_shows_the_whole_source(server: LoupeServer, data_root: Path) -> None:
    response = get(server, LANDSCAPE, "w=300&h=300&fm=png")
    image = decode(response)
    assert mean_abs_diff(image, resized(source(data_root, LANDSCAPE), 300, 200)) < 3
    assert crop_header(response).rect == (0, 0, 768, 512)


def test_scale_stretches_the_whole_source(server: LoupeServer, data_root: Path) -> None:
    image = decode(get(server, LANDSCAPE, "w=200&h=300&fit=scale&fm=png"))
    assert size(image) == (200, 300)
    original = source(data_root, LANDSCAPE)
    assert mean_abs_diff(image, resized(original, 200, 300)) < 3
    # A crop of the same box would look different: the stretch really happened.
    assert mean_abs_diff(image, resized(original.crop(234, 0, 300, 512), 200, 300)) > 15


@pytest.mark.parametrize(
    ("query", "image_box", "offset"),
    [
        ("w=300&h=300", (300, 200), (0, 50)),  # letterbox: bands top and bottom
        ("w=300&h=100", (150, 100), (75, 0)),  # pillarbox: bands left and right
        ("w=1000&h=1000", (768, 512), (116, 244)),  # no upscale: native size, centred
    ],
)
def test_fill_pads_with_bg(
    server: LoupeServer,
    data_root: Path,
    query: str,
    image_box: tuple[int, int],
    offset: tuple[int, int],
) -> None:
    box = tuple(int(part.split("=")[1]) for part in query.split("&"))
    image = decode(get(server, LANDSCAPE, f"{query}&fit=fill&bg=ff0080&fm=png"))
    assert size(image) == box
    assert image.bands == 3
    array = pixels(image)
    left, top = offset
    width, height = image_box
    padded = []
    if top:
        padded += [array[: top - 1], array[top + height + 1 :]]
    if left:
        padded += [array[:, : left - 1], array[:, left + width + 1 :]]
    for band in padded:
        assert band.size
        assert (band.reshape(-1, 3) == (255, 0, 128)).all(), "padding is not the bg colour"
    inner = image.crop(left, top, width, height)
    assert mean_abs_diff(inner, resized(source(data_root, LANDSCAPE), width, height)) < 3


def test_fill_default_bg_is_white(server: LoupeServer) -> None:
    image = decode(get(server, LANDSCAPE, "w=200&h=200&fit=fill&fm=png"))
    assert tuple(pixels(image)[3, 100]) == (255, 255, 255)
    assert tuple(pixels(image)[197, 100]) == (255, 255, 255)


def test_fill_short_bg_notation(server: LoupeServer) -> None:
    image = decode(get(server, LANDSCAPE, "w=200&h=200&fit=fill&bg=0f0&fm=png"))
    assert tuple(pixels(image)[3, 100]) == (0, 255, 0)


def test_rect_is_applied_before_resize(server: LoupeServer, data_root: Path) -> None:
    original = source(data_root, LANDSCAPE)
    response = get(server, LANDSCAPE, "rect=100,50,200,100&fm=png")
    image = decode(response)
    assert size(image) == (200, 100)
    assert mean_abs_diff(image, original.crop(100, 50, 200, 100)) < 0.5
    header = crop_header(response)
    assert header.rect == (100, 50, 200, 100)
    assert header.by == "user"

    response = get(server, LANDSCAPE, "rect=100,50,200,100&w=100&fm=png")
    image = decode(response)
    assert size(image) == (100, 50)
    assert mean_abs_diff(image, resized(original.crop(100, 50, 200, 100), 100, 50)) < 4
    assert crop_header(response).rect == (100, 50, 200, 100)


def test_rect_is_clamped_to_the_source(server: LoupeServer, data_root: Path) -> None:
    response = get(server, LANDSCAPE, "rect=700,400,200,200&fm=png")
    image = decode(response)
    assert size(image) == (68, 112)
    assert crop_header(response).rect == (700, 400, 68, 112)
    assert mean_abs_diff(image, source(data_root, LANDSCAPE).crop(700, 400, 68, 112)) < 0.5


def test_rect_then_crop_stays_inside_the_rect(server: LoupeServer, data_root: Path) -> None:
    response = get(server, LANDSCAPE, "rect=0,0,400,400&w=100&h=50&fit=crop&crop=center&fm=png")
    image = decode(response)
    assert size(image) == (100, 50)
    header = crop_header(response)
    assert header.strategy == "center"
    assert header.rect == (0, 100, 400, 200)
    expected = resized(source(data_root, LANDSCAPE).crop(0, 100, 400, 200), 100, 50)
    assert mean_abs_diff(image, expected) < 4


def _assert_shows_rect(
    image: pyvips.Image, rect: tuple[int, int, int, int], data_root: Path, rel: str
) -> None:
    x, y, w, h = rect
    expected = resized(source(data_root, rel).crop(x, y, w, h), image.width, image.height)
    assert mean_abs_diff(image, expected) < 4, f"pixels do not show rect {rect}"


@pytest.mark.parametrize("strategy", ["center", "attention", "entropy", "focalpoint"])
def test_crop_strategy_header_matches_pixels(
    server: LoupeServer, data_root: Path, strategy: str
) -> None:
    response = get(server, LANDSCAPE, f"w=200&h=200&fit=crop&crop={strategy}&fm=png")
    image = decode(response)
    assert size(image) == (200, 200)
    header = crop_header(response)
    assert header.strategy == strategy
    # Strategies that look at the pixels are the AI's decision; geometric ones the URL's.
    assert header.by == ("ai" if strategy in ("attention", "entropy") else "user")
    assert header.requested is None
    x, y, w, h = header.rect
    assert (w, h) == (512, 512), "the largest square window of a 768x512 source"
    assert 0 <= x <= 768 - w and 0 <= y <= 512 - h
    _assert_shows_rect(image, header.rect, data_root, LANDSCAPE)


def test_crop_center_is_centred(server: LoupeServer) -> None:
    header = crop_header(get(server, LANDSCAPE, "w=200&h=200&fit=crop&crop=center&fm=jpeg"))
    assert header.rect == (128, 0, 512, 512)
    header = crop_header(get(server, PORTRAIT, "w=200&h=200&fit=crop&crop=center&fm=jpeg"))
    assert header.rect == (0, 128, 512, 512)


@pytest.mark.parametrize(
    ("rel", "fp", "expected"),
    [
        (LANDSCAPE, "fp-x=0.05", (0, 0, 512, 512)),  # near the left edge: rect moves left
        (LANDSCAPE, "fp-x=0.95", (256, 0, 512, 512)),  # near the right edge
        (LANDSCAPE, "fp-x=0.4&fp-y=0.5", (51, 0, 512, 512)),  # centred on 307, clamped
        (PORTRAIT, "fp-y=0.1", (0, 0, 512, 512)),
        (PORTRAIT, "fp-x=0.5&fp-y=0.9", (0, 256, 512, 512)),
        (PORTRAIT, "fp-y=0.6", (0, 205, 512, 512)),
    ],
)
def test_focal_point_moves_the_window(
    server: LoupeServer,
    data_root: Path,
    rel: str,
    fp: str,
    expected: tuple[int, int, int, int],
) -> None:
    response = get(server, rel, f"w=160&h=160&fit=crop&crop=focalpoint&{fp}&fm=png")
    header = crop_header(response)
    assert header.strategy == "focalpoint"
    assert header.rect == expected
    _assert_shows_rect(decode(response), expected, data_root, rel)


@pytest.fixture(scope="module")
def blind_server(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    """The crop models refused (wrong bytes in --models-dir): smart and faces fall back."""
    models = broken_crop_models(tmp_path_factory.mktemp("broken-crop-models"))
    running = LoupeServer(
        data_root, tmp_path_factory.mktemp("blind-data"), args=("--models-dir", str(models))
    )
    yield running
    running.stop()


@pytest.mark.parametrize("requested", ["smart", "faces"])
def test_smart_and_faces_fall_back_to_attention(blind_server: LoupeServer, requested: str) -> None:
    server = blind_server
    response = get(server, LANDSCAPE, f"w=240&h=240&fit=crop&crop={requested}&fm=jpeg")
    assert size(decode(response)) == (240, 240)
    header = crop_header(response)
    assert header.strategy == "attention"
    assert header.requested == requested
    assert response.headers["x-loupe-crop"].endswith(f"; requested={requested}")
    attention = crop_header(get(server, LANDSCAPE, "w=240&h=240&fit=crop&crop=attention&fm=jpeg"))
    assert header.rect == attention.rect


def test_default_crop_is_smart_chosen_by_ai(server: LoupeServer) -> None:
    response = get(server, LANDSCAPE, "w=120&h=240&fit=crop&fm=jpeg")
    assert size(decode(response)) == (120, 240)
    header = crop_header(response)
    assert (header.strategy, header.by, header.requested) == ("smart", "ai", None)
    x, y, w, h = header.rect
    assert (w, h) == (256, 512)
    assert 0 <= x <= 768 - 256 and y == 0


def test_crop_header_without_cut_names_the_whole_source(server: LoupeServer) -> None:
    header = crop_header(get(server, LANDSCAPE, "w=300&h=200&fit=crop&fm=jpeg"))
    assert header.rect == (0, 0, 768, 512)


def test_exif_orientation_is_applied(server: LoupeServer, data_root: Path) -> None:
    response = get(server, EXIF6, "w=192&fm=png")
    image = decode(response)
    assert size(image) == (192, 128), "landscape 3:2 once orientation 6 is applied"
    assert crop_header(response).rect == (0, 0, 768, 512)
    reference = resized(source(data_root, "kodak/kodim08.png"), 192, 128)
    right = mean_abs_diff(image, reference)
    assert right < 8
    assert mean_abs_diff(image, reference.rot180()) > 3 * right + 10
    assert mean_abs_diff(image, reference.fliphor()) > 3 * right + 10
    assert mean_abs_diff(image, reference.flipver()) > 3 * right + 10
    # The decoded output carries no orientation that a viewer would apply again.
    fields = image.get_fields()
    assert "orientation" not in fields or int(image.get("orientation")) == 1


def test_exif_rect_is_in_viewer_coordinates(server: LoupeServer, data_root: Path) -> None:
    response = get(server, EXIF6, "rect=0,0,384,256&w=96&fm=png")
    image = decode(response)
    assert size(image) == (96, 64)
    assert crop_header(response).rect == (0, 0, 384, 256)
    reference = source(data_root, "kodak/kodim08.png")
    right = mean_abs_diff(image, resized(reference.crop(0, 0, 384, 256), 96, 64))
    wrong = mean_abs_diff(image, resized(reference.crop(384, 256, 384, 256), 96, 64))
    assert right < 10 < wrong


def test_exif_fit_crop_keeps_orientation(server: LoupeServer, data_root: Path) -> None:
    response = get(server, EXIF6, "w=150&h=100&fit=crop&crop=center&fm=png")
    image = decode(response)
    assert size(image) == (150, 100)
    reference = resized(source(data_root, "kodak/kodim08.png"), 150, 100)
    assert mean_abs_diff(image, reference) < 8
