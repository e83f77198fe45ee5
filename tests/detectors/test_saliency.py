"""U-2-Net small saliency: the summary of a mask (box, mass, centroid) on synthetic maps,
plausible subjects on real images, an empty answer on flat images, and a missing or
tampered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from proxy import model_files
from proxy.detectors.saliency import MASK_SIDE, Saliency, SaliencyDetector, summarise
from proxy.geometry import Box
from tests.detectors import empty_models_dir, flat, image, shared_models, tampered_models_dir


@pytest.fixture(scope="module")
def detector() -> SaliencyDetector:
    found = SaliencyDetector(shared_models("u2netp"))
    assert found.available, found.reason
    return found


def product_shot() -> pyvips.Image:
    """A red disc (centre 420, 150, radius 70) on white: the typical shop photo."""
    return flat(600, 400, (255, 255, 255)).draw_circle([200, 30, 30], 420, 150, 70, fill=True)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def xywh(box: Box) -> tuple[float, float, float, float]:
    return box.x, box.y, box.w, box.h


def contains(box: tuple[float, ...], x: float, y: float) -> bool:
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh


def assert_plausible(found: Saliency, width: int, height: int) -> None:
    x, y, w, h = xywh(found.box)
    assert found.found and found.confidence >= 0.9
    assert 0 < found.mass < 1
    assert x >= 0 and y >= 0 and w > 0 and h > 0
    assert x + w <= width + 1e-6 and y + h <= height + 1e-6
    assert contains(xywh(found.box), *found.centroid)
    assert found.image_size == (width, height)
    assert found.mask.dtype == np.uint8 and max(found.mask.shape) == MASK_SIDE
    assert found.mask.max() >= 250  # min-max normalised


# --------------------------------------------------------------------------------------
# The summary of a probability map, without the model.


def test_summary_of_a_rectangle() -> None:
    raw = np.zeros((320, 320), np.float32)
    raw[80:160, 40:200] = 1.0  # rows 80-159, columns 40-199
    found = summarise(raw, 640, 480)  # 2 px per column, 1.5 px per row
    assert xywh(found.box) == pytest.approx((80, 120, 320, 120))
    assert found.centroid == pytest.approx((240, 180))
    assert found.mass == pytest.approx(80 * 160 / 320**2)
    assert found.mask.shape == (48, 64)


def test_summary_trims_stray_specks() -> None:
    raw = np.zeros((320, 320), np.float32)
    raw[100:140, 100:140] = 1.0
    raw[300, 5] = 1.0  # a speck far away: 1/1601 of the mass
    found = summarise(raw, 320, 320)
    assert xywh(found.box) == pytest.approx((100, 100, 40, 40))


def test_summary_of_nothing() -> None:
    raw = np.full((320, 320), 0.01, np.float32)
    raw[0, 0] = 0.05  # min-max would blow this up to a "subject"
    found = summarise(raw, 300, 200)
    assert not found.found and found.mass == 0
    assert xywh(found.box) == (0, 0, 300, 200) and found.centroid == (150, 100)
    assert found.confidence == pytest.approx(0.05)


# --------------------------------------------------------------------------------------
# Real images.


def test_astronaut(detector: SaliencyDetector) -> None:
    found = detector.detect(image("skimage/astronaut.png"))
    assert found is not None
    assert_plausible(found, 512, 512)
    assert contains(xywh(found.box), 224, 119)  # her face
    assert 0.3 < found.mass < 0.8


def test_coffee_cup(detector: SaliencyDetector) -> None:
    found = detector.detect(image("skimage/coffee.png"))
    assert found is not None
    assert_plausible(found, 600, 400)
    assert contains(xywh(found.box), 300, 200)  # cup and saucer fill the middle
    assert found.centroid == pytest.approx((280, 210), abs=40)


def test_product_shot(detector: SaliencyDetector) -> None:
    found = detector.detect(product_shot())
    assert found is not None
    assert_plausible(found, 600, 400)
    assert iou(xywh(found.box), (350, 80, 140, 140)) > 0.8
    assert found.centroid == pytest.approx((420, 150), abs=8)
    assert found.mass == pytest.approx(np.pi * 70**2 / (600 * 400), rel=0.25)


def test_small_subject_in_a_big_photo(detector: SaliencyDetector) -> None:
    """An orange on a branch against bokeh: a few percent of the frame."""
    found = detector.detect(image("wikipedia/023.png"))
    assert found is not None
    assert_plausible(found, 1296, 864)
    assert found.mass < 0.1
    assert xywh(found.box)[2] < 1296 / 3 and xywh(found.box)[3] < 864 / 3


@pytest.mark.parametrize("colour", [(128, 128, 128), (255, 255, 255), (0, 0, 0)])
def test_flat_image_is_empty(detector: SaliencyDetector, colour: tuple[int, int, int]) -> None:
    found = detector.detect(flat(400, 300, colour))
    assert found is not None
    assert not found.found and found.mass == 0 and found.confidence < 0.2
    assert xywh(found.box) == (0, 0, 400, 300) and found.centroid == (200, 150)
    assert found.mask.shape == (48, 64)


def test_portrait_mask_and_alpha(detector: SaliencyDetector) -> None:
    shot = product_shot().rot90().bandjoin(255)  # 400x600, with an alpha band
    found = detector.detect(shot)
    assert found is not None
    assert_plausible(found, 400, 600)
    assert found.mask.shape == (64, 43)


def test_tiny_image(detector: SaliencyDetector) -> None:
    found = detector.detect(flat(1, 1, (10, 200, 30)))
    assert found is not None and found.mask.shape == (MASK_SIDE, MASK_SIDE)


# --------------------------------------------------------------------------------------
# A missing or tampered model.


def test_missing_model_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_files, "SHIPPED", tmp_path / "no-shipped-models")
    missing = SaliencyDetector(empty_models_dir(tmp_path, "u2netp"))
    assert not missing.available
    assert "missing" in missing.reason and "u2netp.onnx" in missing.reason
    assert missing.detect(product_shot()) is None


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    tampered = SaliencyDetector(tampered_models_dir(shared_models("u2netp"), tmp_path, "u2netp"))
    assert not tampered.available
    assert "mismatch" in tampered.reason and "sha256" in tampered.reason
    assert tampered.detect(product_shot()) is None
