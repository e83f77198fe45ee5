"""Front-end habits (imgix names) against a real server: formats, ar, fit=max/min, blur,
sharp, rot/flip on real pixels, tracking parameters that neither bust the cache nor break a
signature, exact output sizes, and what by= in X-Loupe-Crop says."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from proxy.urls import build_url
from tests.support import LoupeServer

KEY = "front-end-key"
TOKEN = "front"


@pytest.fixture(scope="module")
def server(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("front-root")
    shutil.copy(data_root / "wikipedia" / "001.png", root / "tiger.png")  # 1276x850
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "hats.png")  # 768x512
    # Left half red, right half blue, 200x100: where each half lands shows rot and flip.
    red = pyvips.Image.black(100, 100, bands=3).new_from_image([255, 0, 0])
    blue = pyvips.Image.black(100, 100, bands=3).new_from_image([0, 0, 255])
    red.join(blue, "horizontal").cast("uchar").copy(interpretation="srgb").pngsave(
        str(root / "halves.png")
    )
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("front-data"),
        env={"LOUPE_IMAGES_IGNORED_PARAMS": "fbclid,mc_*"},
        args=("--signing-key", KEY, "--admin-token", TOKEN),
    )
    yield running
    running.stop()


def get(
    server: LoupeServer, path: str, params: dict[str, object], **headers: str
) -> httpx.Response:
    return httpx.get(server.url + build_url(path, params, key=KEY), headers=headers, timeout=60)


def image(response: httpx.Response) -> pyvips.Image:
    assert response.status_code == 200, response.text[:300]
    return pyvips.Image.new_from_buffer(response.content, "")


def size(img: pyvips.Image) -> tuple[int, int]:
    return img.width, img.height


def pixels(img: pyvips.Image) -> np.ndarray:
    return np.ndarray(
        buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands)
    )


def test_jpg_and_progressive_jpeg(server: LoupeServer) -> None:
    plain = get(server, "hats.png", {"w": 200, "fm": "jpg"})
    progressive = get(server, "hats.png", {"w": 200, "fm": "pjpg"})
    assert plain.headers["content-type"] == progressive.headers["content-type"] == "image/jpeg"
    assert b"\xff\xc2" in progressive.content[:2000]  # SOF2: progressive
    assert b"\xff\xc2" not in plain.content[:2000]


def test_auto_format_compress_negotiates(server: LoupeServer) -> None:
    response = get(server, "hats.png", {"w": 200, "auto": "format,compress"}, accept="image/webp")
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["vary"] == "Accept" and response.headers["x-loupe-quality"].isdigit()


def test_ar_with_one_side_and_alone(server: LoupeServer) -> None:
    assert size(image(get(server, "tiger.png", {"ar": "16:9", "fit": "crop", "w": 320}))) == (
        320,
        180,
    )
    square = get(server, "tiger.png", {"ar": "1:1", "fit": "crop", "fm": "jpeg"})
    assert size(image(square)) == (850, 850)


def test_fit_max_and_min_never_enlarge(server: LoupeServer) -> None:
    assert size(image(get(server, "hats.png", {"w": 5000, "fit": "max", "upscale": 1}))) == (
        768,
        512,
    )
    out = image(get(server, "hats.png", {"w": 5000, "h": 1000, "fit": "min", "upscale": 1}))
    assert out.width <= 768 and out.height <= 512 and abs(out.width / out.height - 5) < 0.05


def _detail(img: pyvips.Image) -> float:
    grey = pixels(img.colourspace("b-w")).astype(np.float64)[..., 0]
    return float(np.abs(np.diff(grey, axis=1)).mean())


def test_blur_and_sharp_change_the_detail(server: LoupeServer) -> None:
    base = {"w": 300, "fm": "png"}
    plain = _detail(image(get(server, "hats.png", base)))
    blurred = _detail(image(get(server, "hats.png", {**base, "blur": 3})))
    wide = image(get(server, "hats.png", {**base, "blur": 100}))  # the shrunk-copy path
    sharp = _detail(image(get(server, "hats.png", {**base, "sharp": 80})))
    assert blurred < plain * 0.6 < plain < sharp
    assert size(wide) == (300, 200) and _detail(wide) < blurred


@pytest.mark.parametrize(
    ("turn", "dims", "red_at", "blue_at"),
    [
        ({"rot": 90}, (100, 200), (50, 50), (50, 150)),  # clockwise: the left half goes up
        ({"rot": 270}, (100, 200), (50, 150), (50, 50)),
        ({"rot": 180}, (200, 100), (150, 50), (50, 50)),
        ({"flip": "h"}, (200, 100), (150, 50), (50, 50)),
        ({"flip": "v"}, (200, 100), (50, 50), (150, 50)),
        ({"rot": 90, "flip": "v"}, (100, 200), (50, 150), (50, 50)),
    ],
)
def test_rot_and_flip_turn_the_pixels(
    server: LoupeServer,
    turn: dict[str, object],
    dims: tuple[int, int],
    red_at: tuple[int, int],
    blue_at: tuple[int, int],
) -> None:
    out = image(get(server, "halves.png", {**turn, "fm": "png"}))
    assert size(out) == dims
    data = pixels(out)
    assert tuple(data[red_at[1], red_at[0], :3]) == (255, 0, 0)
    assert tuple(data[blue_at[1], blue_at[0], :3]) == (0, 0, 255)


def test_rot_applies_before_the_size_and_the_crop(server: LoupeServer) -> None:
    turned = get(server, "tiger.png", {"rot": 90, "w": 200, "h": 200, "fit": "crop", "fm": "jpeg"})
    assert size(image(turned)) == (200, 200)
    x, y, w, h = (
        int(v) for v in re.findall(r"rect=([0-9,]+)", turned.headers["x-loupe-crop"])[0].split(",")
    )
    assert w == h == 850 and x + w <= 850 and y + h <= 1276  # in the turned picture


def test_tracking_parameters_neither_bust_the_cache_nor_break_the_signature(
    server: LoupeServer,
) -> None:
    signed = build_url("hats.png", {"w": 150, "fm": "webp"}, key=KEY)
    first = httpx.get(server.url + signed, timeout=60)
    assert first.status_code == 200
    for extra in ("utm_source=news&utm_medium=mail", "ixlib=js-3.8.0", "fbclid=abc", "mc_cid=1"):
        tracked = httpx.get(f"{server.url}{signed}&{extra}", timeout=60)
        assert tracked.status_code == 200, (extra, tracked.text)
        assert tracked.headers["x-loupe-cache"] == "hit" and tracked.content == first.content
    # Tracking parameters inside the signed part are dropped as well: same bytes.
    inside = build_url("hats.png", {"w": 150, "fm": "webp"}, key=KEY).replace(
        "?", "?utm_campaign=x&", 1
    )
    assert httpx.get(server.url + inside, timeout=60).content == first.content


def test_unknown_names_stay_a_400_listing_the_known_ones(server: LoupeServer) -> None:
    response = httpx.get(f"{server.url}/img/hats.png?w=10&rotate=90", timeout=60)
    assert response.status_code in (400, 401)  # unsigned: the parser or the signature refuses
    signed_bad = httpx.get(
        server.url + build_url("hats.png", {"w": 10}, key=KEY) + "&rotate=90", timeout=60
    )
    assert signed_bad.status_code in (400, 403)


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("tiger.png", {"w": 3000, "upscale": 1}, (3000, 1998)),  # was 2999 wide
        ("tiger.png", {"h": 2001, "upscale": 1}, (3004, 2001)),
        ("tiger.png", {"w": 1001}, (1001, 667)),
        ("hats.png", {"w": 2999, "upscale": 1, "dpr": 1.5}, (4498, 2999)),
        ("hats.png", {"w": 777, "h": 333, "fit": "scale", "upscale": 1}, (777, 333)),
        ("hats.png", {"w": 999, "h": 1001, "fit": "crop", "upscale": 1}, (999, 1001)),
    ],
)
def test_any_target_size_comes_out_exact(
    server: LoupeServer, path: str, params: dict[str, object], expected: tuple[int, int]
) -> None:
    assert size(image(get(server, path, {**params, "fm": "jpeg", "q": 40}))) == expected


def test_by_says_who_placed_the_crop(server: LoupeServer) -> None:
    def by(params: dict[str, object]) -> str:
        crop = get(server, "tiger.png", {"fm": "jpeg", "q": 40, **params}).headers["x-loupe-crop"]
        return re.findall(r"by=(\w+)", crop)[0]

    box = {"w": 200, "h": 200, "fit": "crop"}
    assert by(box) == "ai"  # smart, the default
    assert by({**box, "crop": "attention"}) == "ai"
    assert by({**box, "crop": "center"}) == "user"
    assert by({**box, "crop": "focalpoint", "fp-x": 0.2, "fp-y": 0.5}) == "user"
    assert by({"w": 200, "rect": "0,0,400,400"}) == "user"
    assert by({"w": 200}) == "user"  # nothing cut: the URL's own geometry
    put = httpx.put(
        f"{server.url}/admin/api/overrides/tiger.png",
        json={"aspect": "1:1", "rect": [100, 0, 850, 850]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert put.status_code in (200, 201, 204), put.text
    assert by({"w": 210, "h": 210, "fit": "crop"}) == "user"  # an override through the API
