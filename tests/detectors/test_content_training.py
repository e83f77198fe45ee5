"""The content classifier's training script: the split by source image (no leakage), the
labels from the shared MANIFEST.md, the synthetic generators, and a ``--smoke`` run end to
end that writes a loadable ONNX model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from proxy.detectors.content import FEATURE_NAMES, LABELS, ContentClassifier, features_from_rgb
from tests.support import REPO, shared_data

TRAIN = REPO / "models" / "content" / "train.py"


@pytest.fixture(scope="module")
def train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("content_train", TRAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["content_train"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_groups_tie_derived_copies_to_their_original(train: Any) -> None:
    assert train.group_of("kodak/kodim07.png") == "kodak/kodim07"
    assert train.group_of("generated/cmyk_kodim07.jpg") == "kodak/kodim07"
    assert train.group_of("generated/rgb16_kodim07.png") == "kodak/kodim07"
    assert train.group_of("generated/large_6000x4000_flower_upscaled.jpg") == (
        "icinfo/flower_foveon"
    )
    assert train.group_of("wikipedia/007.png") == "wikipedia/007"


def test_split_is_by_group_and_keeps_the_test_images_out(train: Any) -> None:
    labels = {"kodak/kodim03.png": "photo", "kodak/kodim08.png": "photo",
              "generated/screenshot_ui.png": "screenshot", "wikipedia/007.png": "art",
              "generated/chart_matplotlib.png": "diagram"}  # fmt: skip
    recipes = train.build_recipes(labels, smoke=False, synthetic=3)
    groups = sorted({r.group for r in recipes})
    held = train.held_out(groups, smoke=False)
    assert set(train.FORCED_HOLDOUT) & set(groups) <= held
    # Every row of a group lands on the same side: crops, re-encodes and derived art of
    # a held-out photo never reach training.
    for group in groups:
        sides = {r.group in held for r in recipes if r.group == group}
        assert len(sides) == 1
    derived = [r for r in recipes if r.kind == "derived"]
    assert derived and all(r.group == train.group_of(r.source) for r in derived)
    assert {r.label for r in derived} == {"art"}
    # Held-out groups are stable (a hash, not a random draw).
    assert train.held_out(groups, smoke=False) == held


def test_manifest_labels(train: Any) -> None:
    data = shared_data()
    labels = train.manifest_labels(data)
    assert labels["kodak/kodim03.png"] == "photo"
    assert labels["skimage/brick.png"] == "photo"  # texture
    assert labels["kodak/kodim18.png"] == "photo"  # face
    assert labels["generated/screenshot_ui.png"] == "screenshot"
    assert labels["skimage/page.png"] == "screenshot"  # text
    assert labels["generated/vector_rings.svg"] == "diagram"  # vector
    assert labels["wikipedia/027.png"] == "art"  # art+face
    assert "skimage/no_time_for_that_tiny.gif" not in labels  # animated
    assert set(labels.values()) == set(LABELS)


def test_every_generator_draws_a_valid_picture(train: Any) -> None:
    for name, (label, generator) in train.GENERATORS.items():
        pixels = generator(np.random.default_rng(5))
        assert label in LABELS, name
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3, name
        assert min(pixels.shape[:2]) >= 64, name
        assert pixels.std() > 1, f"{name} drew a blank picture"
        features = features_from_rgb(pixels[::2, ::2].copy())
        assert features.shape == (len(FEATURE_NAMES),) and np.isfinite(features).all(), name


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    shared_data()  # skips with a clear reason when ../shared/data is absent
    for module in ("sklearn", "skl2onnx", "onnx"):
        pytest.importorskip(module, reason=f"training needs {module} (the 'test' extra)")
    folder = tmp_path_factory.mktemp("content-train")
    out, metrics = folder / "model.onnx", folder / "metrics.json"
    completed = subprocess.run(
        [sys.executable, str(TRAIN), "--smoke", "--out", str(out), "--metrics-json",
         str(metrics), "--jobs", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out, json.loads(metrics.read_text()), completed.stdout


@pytest.mark.slow
def test_smoke_training_writes_a_loadable_model(
    smoke_run: tuple[Path, dict[str, Any], str],
) -> None:
    out, metrics, stdout = smoke_run
    assert "held-out accuracy" in stdout and "confusion matrix" in stdout
    assert out.is_file() and 0 < out.stat().st_size < 1_000_000
    assert float(metrics["onnx_max_abs_diff"]) < 1e-3
    assert int(metrics["train_rows"]) > 0 and int(metrics["test_rows"]) > 0
    assert set(metrics["held_out_groups"]) >= {"kodak/kodim03", "generated/screenshot_ui"}
    found = ContentClassifier.from_file(out)
    assert found.available, found.reason
    assert found.labels == LABELS
    probabilities = found.probabilities_from_features(np.zeros(len(FEATURE_NAMES), np.float32))
    assert probabilities is not None
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_smoke_model_has_the_documented_signature(
    smoke_run: tuple[Path, dict[str, Any], str],
) -> None:
    import onnxruntime as ort

    out, _, _ = smoke_run
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1] == len(FEATURE_NAMES)
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["labels"] == ",".join(LABELS)
    assert meta["features"] == ",".join(FEATURE_NAMES)
    rows = np.random.default_rng(0).random((3, len(FEATURE_NAMES))).astype(np.float32)
    labels, probabilities = session.run(None, {"input": rows})
    assert np.asarray(labels).shape == (3,)
    assert np.asarray(probabilities).shape == (3, len(LABELS))
