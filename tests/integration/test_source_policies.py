"""A policy configured for a folder applies to its sources; ``policy=`` in the URL wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.support import LoupeServer


@pytest.fixture(scope="module")
def medical_kodak(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    running = LoupeServer(
        data_root,
        tmp_path_factory.mktemp("policies"),
        env={"LOUPE_IMAGES_SOURCE_POLICIES": "kodak/=medical,skimage/=product"},
    )
    yield running
    running.stop()


def test_folder_policy_forces_lossless(medical_kodak: LoupeServer) -> None:
    response = httpx.get(medical_kodak.url + "/img/kodak/kodim03.png?w=200&fm=jpeg", timeout=30)
    assert response.status_code == 200
    assert response.headers["x-loupe-policy"] == "medical"
    assert response.headers["content-type"] == "image/png"
    lossless = httpx.get(medical_kodak.url + "/img/kodak/kodim03.png?w=200&fm=png", timeout=30)
    same = pyvips.Image.new_from_buffer(response.content, "")
    reference = pyvips.Image.new_from_buffer(lossless.content, "")
    assert (same - reference).abs().max() == 0


def test_url_policy_beats_the_folder_policy(medical_kodak: LoupeServer) -> None:
    url = medical_kodak.url + "/img/kodak/kodim03.png?w=200&fm=jpeg&policy=general"
    response = httpx.get(url, timeout=30)
    assert response.headers["x-loupe-policy"] == "general"
    assert response.headers["content-type"] == "image/jpeg"


def test_other_folders_follow_their_own_policy(medical_kodak: LoupeServer) -> None:
    response = httpx.get(medical_kodak.url + "/img/skimage/coffee.png?w=200&fm=jpeg", timeout=60)
    assert response.headers["x-loupe-policy"] == "product"
    assert int(response.headers["x-loupe-quality"]) >= 85
    other = httpx.get(medical_kodak.url + "/img/wikipedia/001.png?w=200&fm=jpeg", timeout=60)
    assert other.headers["x-loupe-policy"] == "general"
