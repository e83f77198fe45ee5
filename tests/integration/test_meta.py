"""``/meta``: source facts and the analysis (real YuNet, u2netp, text and content models),
computed once per perceptual hash."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import diskcache
import httpx
import pytest

from tests.support import LoupeServer, shared_dir


@pytest.fixture(scope="module")
def analysing(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    models = shared_dir() / "models"
    if not (models / "face_detection_yunet_2023mar.onnx").is_file():
        pytest.skip(f"shared models not found at {models}")
    root = tmp_path_factory.mktemp("meta-root")
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "couple.png")
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "reupload.png")
    shutil.copy(data_root / "generated" / "screenshot_ui.png", root / "ui.png")
    shutil.copy(data_root / "kodak" / "kodim10.png", root / "sailing.png")
    running = LoupeServer(
        root, tmp_path_factory.mktemp("meta-data"), args=("--models-dir", str(models))
    )
    yield running
    running.stop()


def test_meta_reports_source_faces_saliency_and_class(analysing: LoupeServer) -> None:
    response = httpx.get(analysing.url + "/meta/couple.png", timeout=60)
    assert response.status_code == 200, response.text
    meta = response.json()
    assert meta["source"] == {
        "width": 768,
        "height": 512,
        "format": "png",
        "bytes": meta["source"]["bytes"],
        "etag": meta["source"]["etag"],
    }
    assert len(meta["phash"]) == 16
    assert meta["content"]["class"] == "photo"
    assert len(meta["faces"]) == 2 and all(face["score"] >= 0.8 for face in meta["faces"])
    box = meta["saliency"]
    for face in meta["faces"]:  # the couple is the salient subject
        assert box["x"] <= face["x"] + face["width"] / 2 <= box["x"] + box["width"]
    assert meta["unavailable"] == {}


def test_screenshot_is_classified_and_has_text(analysing: LoupeServer) -> None:
    meta = httpx.get(analysing.url + "/meta/ui.png", timeout=60).json()
    assert meta["content"]["class"] == "screenshot"
    assert meta["text"]["coverage"] > 0.05 and meta["faces"] == []


def stored_analyses(server: LoupeServer) -> int:
    with diskcache.Cache(str(server.log.parent / "ai" / "analysis")) as stored:
        return len(list(stored.iterkeys()))


def test_a_reupload_reuses_the_analysis(analysing: LoupeServer) -> None:
    first = httpx.get(analysing.url + "/meta/couple.png", timeout=60).json()
    before = stored_analyses(analysing)
    again = httpx.get(analysing.url + "/meta/reupload.png", timeout=60).json()
    assert again["phash"] == first["phash"]
    assert again["faces"] == first["faces"]
    assert stored_analyses(analysing) == before, "same picture, new file: no new analysis"


def test_meta_refuses_bad_parameters_and_missing_sources(analysing: LoupeServer) -> None:
    bad = httpx.get(analysing.url + "/meta/couple.png?fit=crop", timeout=30)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert httpx.get(analysing.url + "/meta/none.png", timeout=30).status_code == 404


def _inside(face: dict[str, float], rect: tuple[int, int, int, int]) -> bool:
    x, y, w, h = rect
    return (
        x <= face["x"]
        and face["x"] + face["width"] <= x + w
        and y <= face["y"]
        and face["y"] + face["height"] <= y + h
    )


def test_meta_ranks_three_crop_candidates(analysing: LoupeServer) -> None:
    meta = httpx.get(analysing.url + "/meta/couple.png?w=300&h=300", timeout=60).json()
    crops = meta["crops"]
    assert 1 <= len(crops) <= 3
    assert [c["score"] for c in crops] == sorted((c["score"] for c in crops), reverse=True)
    top = crops[0]
    assert (top["width"], top["height"]) == (512, 512)
    assert all(_inside(f, (top["x"], top["y"], 512, 512)) for f in meta["faces"])
    assert top["reasons"] and all(isinstance(r, str) for r in top["reasons"])


@pytest.mark.parametrize("crop", ["smart", "faces"])
def test_smart_and_faces_crops_keep_both_people(analysing: LoupeServer, crop: str) -> None:
    faces = httpx.get(analysing.url + "/meta/couple.png", timeout=60).json()["faces"]
    response = httpx.get(
        analysing.url + f"/img/couple.png?w=200&h=400&fit=crop&crop={crop}&fm=png", timeout=60
    )
    header = response.headers["x-loupe-crop"]
    assert header.startswith(f"strategy={crop}; ") and header.endswith("by=ai")
    rect = tuple(int(v) for v in header.split("rect=")[1].split(";")[0].split(","))
    assert rect[2:] == (256, 512)
    assert all(_inside(face, rect) for face in faces)  # type: ignore[arg-type]


def test_small_faces_are_possible_faces_and_smart_crops_keep_them(analysing: LoupeServer) -> None:
    """kodim10: two sailors with 13-14 px faces that YuNet scores 0.7-0.8. They are not
    reported as faces, but a 16:9 smart crop keeps them (a centre crop cuts both)."""
    meta = httpx.get(analysing.url + "/meta/sailing.png", timeout=60).json()
    assert meta["faces"] == []
    possible = meta["possible_faces"]
    assert len(possible) == 2 and all(0.45 <= f["score"] < 0.8 for f in possible)
    assert meta["people"] == []  # the sail is the salient blob, not a body around them
    response = httpx.get(
        analysing.url + "/img/sailing.png?w=512&h=288&fit=crop&crop=smart&fm=png", timeout=60
    )
    header = response.headers["x-loupe-crop"]
    rect = tuple(int(v) for v in header.split("rect=")[1].split(";")[0].split(","))
    assert all(_inside(face, rect) for face in possible), (header, possible)  # type: ignore[arg-type]
    centre = (0, (768 - 288) // 2, 512, 288)
    assert not any(_inside(face, centre) for face in possible)
