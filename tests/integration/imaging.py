"""Helpers for the integration tests: fetch from a real server, decode with pyvips, compare.

Every image answer is decoded and checked by its pixels, not only by its headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyvips

from tests.support import LoupeServer

TIMEOUT = 60.0
NO_MODERN = {"Accept": "image/jpeg,image/png,*/*;q=0.8"}  # neither AVIF nor WebP
PROBLEM = "application/problem+json"
_CROP = re.compile(
    r"^strategy=(?P<strategy>[a-z]+); rect=(?P<x>\d+),(?P<y>\d+),(?P<w>\d+),(?P<h>\d+); "
    r"by=(?P<by>ai|human|user)(?:; requested=(?P<requested>[a-z]+))?$"
)


def get(
    server: LoupeServer,
    path: str,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> httpx.Response:
    """One request to ``/img/{path}?{query}`` (query sent exactly as written)."""
    url = f"{server.url}/img/{path}" + (f"?{query}" if query else "")
    return httpx.request(method, url, headers=dict(headers or NO_MODERN), timeout=TIMEOUT)


def raw_get(server: LoupeServer, target: str) -> httpx.Response:
    """GET with the request target sent byte for byte (httpx would normalise ``..``)."""
    with httpx.Client(timeout=TIMEOUT) as client:
        request = client.build_request(
            "GET", server.url + "/", extensions={"target": target.encode("ascii")}
        )
        return client.send(request)


def decode(response: httpx.Response) -> pyvips.Image:
    """The body as a pyvips image, all frames of an animation (n=-1) for GIF and WebP."""
    assert response.status_code == 200, f"{response.status_code}: {response.text[:300]}"
    content_type = response.headers["content-type"]
    assert content_type.startswith("image/"), content_type
    options: dict[str, Any] = {}
    if content_type in ("image/gif", "image/webp"):
        options["n"] = -1
    image = pyvips.Image.new_from_buffer(response.content, "", **options)
    return image.copy_memory()


def image_for(server: LoupeServer, path: str, query: str = "", **kwargs: Any) -> pyvips.Image:
    return decode(get(server, path, query, **kwargs))


def loader(image: pyvips.Image) -> str:
    return str(image.get("vips-loader"))


def pages(image: pyvips.Image) -> int:
    return int(image.get("n-pages")) if "n-pages" in image.get_fields() else 1


def frame_height(image: pyvips.Image) -> int:
    fields = image.get_fields()
    return int(image.get("page-height")) if "page-height" in fields else image.height


def size(image: pyvips.Image) -> tuple[int, int]:
    return image.width, image.height


def pixels(image: pyvips.Image) -> np.ndarray:
    """An (h, w, bands) float array; the image must be 8-bit."""
    assert image.format == "uchar", image.format
    array = np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
    return array.astype(np.float64)


def rgb(image: pyvips.Image) -> pyvips.Image:
    """Three 8-bit sRGB bands (alpha dropped, grey expanded)."""
    if image.hasalpha():
        image = image.extract_band(0, n=image.bands - 1)
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image


def mean_abs_diff(a: pyvips.Image, b: pyvips.Image) -> float:
    """Worst per-channel mean absolute difference of two equally sized RGB images."""
    assert size(a) == size(b), (size(a), size(b))
    diff = np.abs(pixels(rgb(a)) - pixels(rgb(b)))
    return float(diff.mean(axis=(0, 1)).max())


def source(data_root: Path, rel: str) -> pyvips.Image:
    """A source as the viewer sees it: orientation applied, 8-bit sRGB."""
    image = pyvips.Image.new_from_file(str(data_root / rel)).autorot()
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb").cast("uchar")
    return image.copy_memory()


def resized(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Resize to exactly ``width`` x ``height``."""
    out = image.resize(width / image.width, vscale=height / image.height)
    if size(out) != (width, height):
        out = out.gravity("centre", width, height, extend="copy")
    return out


@dataclass(frozen=True)
class CropHeader:
    strategy: str
    rect: tuple[int, int, int, int]
    by: str
    requested: str | None


def crop_header(response: httpx.Response) -> CropHeader:
    value = response.headers["x-loupe-crop"]
    found = _CROP.match(value)
    assert found, f"malformed X-Loupe-Crop: {value!r}"
    rect = (int(found["x"]), int(found["y"]), int(found["w"]), int(found["h"]))
    return CropHeader(found["strategy"], rect, found["by"], found["requested"])


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with the given status; returns its body."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body = json.loads(response.content)
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if slug is not None:
        assert body["type"].rstrip("/").rsplit("/", 1)[-1] == slug, body["type"]
    return body
