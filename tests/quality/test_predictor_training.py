"""The quality predictor: its training script end to end on a tiny subset, the committed
model, and a missing or corrupt model file (``available`` False, ``predict`` None)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips

from proxy.quality.features import FEATURE_NAMES, FORMATS, extract, model_input
from proxy.quality.predictor import QualityPredictor
from tests.support import REPO, shared_data

TRAIN = REPO / "models" / "quality" / "train.py"
COMMITTED = REPO / "models" / "quality" / "quality_predictor.onnx"
TARGETS = (75.0, 80.0, 85.0)
N_INPUTS = len(FEATURE_NAMES) + len(FORMATS) + 1
PROBE_IMAGES = (
    "kodak/kodim01.png",
    "skimage/coffee.png",
    "generated/chart_matplotlib.png",
    "wikipedia/004.png",
)


def some_features() -> np.ndarray:
    """Features of a synthetic image: no shared data needed."""
    noise = pyvips.Image.gaussnoise(320, 200, sigma=30, mean=128, seed=3)
    image = noise.bandjoin([noise, noise]).cast("uchar").copy(interpretation="srgb")
    return extract(image)


def feature_rows(data: Path) -> list[np.ndarray]:
    rows = []
    for relative in PROBE_IMAGES:
        if (data / relative).is_file():
            for width in (320, 640):
                thumb = pyvips.Image.thumbnail(str(data / relative), width, height=10_000_000)
                rows.append(extract(thumb))
    return rows


# --------------------------------------------------------------------------------------
# Missing, corrupt, absent: the search falls back to the policy's default quality.


def test_no_model_configured() -> None:
    predictor = QualityPredictor(None)
    assert not predictor.available
    assert predictor.predict(some_features(), "jpeg", 75) is None


def test_missing_model_file(tmp_path: Path) -> None:
    predictor = QualityPredictor(tmp_path / "quality_predictor.onnx")
    assert not predictor.available
    assert "missing" in predictor.reason
    assert predictor.predict(some_features(), "webp", 80) is None


@pytest.mark.parametrize(
    "content",
    [b"", b"not an onnx model at all", b"\x08\x07\x12\x04junk" + bytes(range(256)) * 4],
    ids=["empty", "text", "truncated-protobuf"],
)
def test_corrupt_model_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "quality_predictor.onnx"
    path.write_bytes(content)
    predictor = QualityPredictor(path)
    assert not predictor.available
    assert "failed to load" in predictor.reason
    assert predictor.predict(some_features(), "avif", 85) is None


def test_committed_model_loads_and_answers() -> None:
    """The model the server ships with: loads, takes the documented input, answers 1-100."""
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: run models/quality/train.py"
    assert COMMITTED.stat().st_size < 1_000_000, "the committed model should stay small"
    predictor = QualityPredictor(COMMITTED)
    assert predictor.available, predictor.reason
    assert predictor.session is not None
    (inp,) = predictor.session.get_inputs()
    assert inp.name == "input"
    assert inp.shape[1] == N_INPUTS
    features = some_features()
    for fmt in FORMATS:
        for target in TARGETS:
            value = predictor.predict(features, fmt, target)
            assert value is not None and 1 <= value <= 100


# --------------------------------------------------------------------------------------
# The training script, end to end.


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    shared_data()  # skips with a clear reason when ../shared/data is absent
    for module in ("sklearn", "skl2onnx", "onnx"):
        pytest.importorskip(module, reason=f"training needs {module} (the 'test' extra)")
    folder = tmp_path_factory.mktemp("quality-train")
    out, metrics = folder / "model.onnx", folder / "metrics.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(TRAIN),
            "--smoke",
            "--out",
            str(out),
            "--cache-dir",
            str(folder / "cache"),
            "--metrics-json",
            str(metrics),
            "--jobs",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "held-out" in completed.stdout
    return out, json.loads(metrics.read_text())


@pytest.mark.slow
def test_training_writes_a_loadable_model(smoke_model: tuple[Path, dict[str, object]]) -> None:
    out, metrics = smoke_model
    assert out.is_file() and 0 < out.stat().st_size < 1_000_000
    assert float(str(metrics["onnx_max_abs_diff"])) < 0.05
    assert int(str(metrics["test_rows"])) > 0 and int(str(metrics["train_rows"])) > 0
    # Split by image: no held-out image appears among the training rows.
    assert metrics["held_out_images"]
    predictor = QualityPredictor(out)
    assert predictor.available, predictor.reason


@pytest.mark.slow
def test_trained_predictions_in_range_and_rise_with_target(
    smoke_model: tuple[Path, dict[str, object]],
) -> None:
    out, _ = smoke_model
    predictor = QualityPredictor(out)
    rows = feature_rows(shared_data())
    assert rows
    by_target: dict[float, list[int]] = {t: [] for t in TARGETS}
    for features in rows:
        for fmt in FORMATS:
            for target in TARGETS:
                value = predictor.predict(features, fmt, target)
                assert value is not None and 1 <= value <= 100, (fmt, target, value)
                by_target[target].append(value)
    means = [float(np.mean(by_target[t])) for t in TARGETS]
    # A higher target needs a higher quality, on average (a tiny model may tie).
    assert means[0] <= means[1] + 0.5 and means[1] <= means[2] + 0.5, means
    assert means[2] > means[0], means


@pytest.mark.slow
def test_smoke_model_matches_model_input_layout(
    smoke_model: tuple[Path, dict[str, object]],
) -> None:
    """The ONNX file takes exactly the row ``model_input`` builds."""
    import onnxruntime as ort

    out, _ = smoke_model
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1] == N_INPUTS
    row = model_input(some_features(), "jpeg", 75)
    assert row.shape == (1, N_INPUTS) and row.dtype == np.float32
    (output,) = session.run(None, {"input": np.repeat(row, 3, axis=0)})[:1]
    assert np.asarray(output).reshape(-1).shape == (3,)
