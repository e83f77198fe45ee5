"""The predictor's safety margin: learned as the quantile of its error that keeps 95% of
first answers at the target, stored beside the model it belongs to, and refused for any
other model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from proxy.manifest import sha256_of
from proxy.model_files import BUNDLED
from proxy.quality import margin
from proxy.quality.predictor import QualityPredictor
from proxy.quality.training import load_shipped, predict
from tests.support import constant_predictor

SHIPPED_MODEL = BUNDLED / "quality" / "quality_predictor.onnx"
SHIPPED_ROWS = BUNDLED / "quality" / "quality_dataset.npz"


def test_the_margin_is_the_coverage_quantile_per_format() -> None:
    rng = np.random.default_rng(0)
    minimal = rng.integers(40, 90, size=400).astype(float)
    fmts = np.array(["jpeg", "avif"] * 200)
    error = np.where(fmts == "jpeg", rng.normal(0, 2, 400), rng.normal(0, 8, 400))
    predicted = minimal + error
    learned = margin.learn_margins(predicted, minimal, fmts)
    assert learned["avif"] > learned["jpeg"] >= 0  # the noisier format needs more
    for fmt in ("jpeg", "avif"):
        rows = fmts == fmt
        served = np.rint(predicted[rows]) + learned[fmt]
        assert np.mean(served >= minimal[rows]) >= margin.COVERAGE
        smaller = np.rint(predicted[rows]) + learned[fmt] - 1  # the smallest such margin
        assert learned[fmt] == 0 or np.mean(smaller >= minimal[rows]) < margin.COVERAGE
    assert margin.miss_rate(predicted, minimal, fmts, learned) <= 1 - margin.COVERAGE


def test_the_shipped_calibration_keeps_95_percent_of_held_out_first_answers() -> None:
    calibration = margin.load(SHIPPED_MODEL, sha256_of(SHIPPED_MODEL))
    assert calibration is not None, "quality_predictor.calibration.json must name the model"
    rows = load_shipped(SHIPPED_ROWS)
    test = rows.held_out
    assert test.sum() >= 100
    guess = predict(SHIPPED_MODEL, rows.X[test])
    assert margin.miss_rate(guess, rows.y[test], rows.fmt[test], calibration.margins) <= 0.05
    assert calibration.margins == margin.learn_margins(guess, rows.y[test], rows.fmt[test])


def test_the_predictor_serves_its_guess_plus_its_margin(tmp_path: Path) -> None:
    path = constant_predictor(tmp_path, 60.0, {"jpeg": 3, "webp": 5, "avif": 9})
    predictor = QualityPredictor(path)
    features = np.zeros(12, dtype=np.float32)
    assert predictor.predict(features, "jpeg", 75) == 60
    assert predictor.first_answer(features, "jpeg", 75) == 63
    assert predictor.first_answer(features, "avif", 75) == 69


def test_a_calibration_of_another_model_is_refused(tmp_path: Path) -> None:
    own = constant_predictor(tmp_path / "a", 60.0, {"jpeg": 3, "webp": 3, "avif": 3})
    other = tmp_path / "b" / "quality" / "quality_predictor.onnx"
    other.parent.mkdir(parents=True)
    shutil.copy(SHIPPED_MODEL, other)
    shutil.copy(margin.sidecar(own), margin.sidecar(other))  # names the wrong sha256
    predictor = QualityPredictor(other)
    assert predictor.available and predictor.calibration is None
    assert predictor.margin("jpeg") == margin.DEFAULT_MARGIN
