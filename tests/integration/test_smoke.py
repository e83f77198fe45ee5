"""The server starts, serves one image and reports health."""

from __future__ import annotations

import httpx
import pyvips

from tests.support import LoupeServer


def test_serves_a_resized_jpeg(server: LoupeServer) -> None:
    response = httpx.get(server.url + "/img/kodak/kodim01.png?w=300&fm=jpeg", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert (image.width, image.height) == (300, 200)


def test_health_and_readiness(server: LoupeServer) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").status_code == 200
