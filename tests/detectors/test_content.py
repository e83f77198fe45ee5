"""The content classifier: its features on any image, the committed model on clear cases
(none of them seen in training), and a missing, tampered, broken or mismatched model."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvips

from proxy.detectors.content import (
    FEATURE_NAMES,
    LABELS,
    MODEL_FILE,
    MODEL_NAME,
    UNKNOWN,
    ContentClassifier,
    extract,
)
from proxy.manifest import ModelEntry, load, sha256_of
from proxy.model_files import BUNDLED
from tests.detectors import flat, image

COMMITTED = BUNDLED / MODEL_FILE


def noise(width: int = 320, height: int = 200) -> pyvips.Image:
    grey = pyvips.Image.gaussnoise(width, height, sigma=40, mean=128, seed=2)
    return grey.bandjoin([grey, grey]).cast("uchar").copy(interpretation="srgb")


def ui_like() -> pyvips.Image:
    canvas = flat(800, 500, (246, 247, 249)).draw_rect([35, 38, 45], 0, 0, 800, 48, fill=True)
    for row in range(8):
        words = pyvips.Image.text(f"Row {row}: requests 1234 cache hit 98.{row}%", dpi=72)
        ink = (255 - words).bandjoin([255 - words, 255 - words]).copy(interpretation="srgb")
        canvas = canvas.insert(ink, 40, 80 + row * 40)
    return canvas.copy_memory()


@pytest.fixture(scope="module")
def classifier() -> ContentClassifier:
    found = ContentClassifier(BUNDLED)
    assert found.available, found.reason
    return found


# --------------------------------------------------------------------------------------
# Features.


@pytest.mark.parametrize(
    "picture",
    [
        noise(),
        flat(64, 64, (255, 0, 0)),
        pyvips.Image.black(1, 1),
        pyvips.Image.black(3, 2, bands=3),
        pyvips.Image.black(2000, 3),
        flat(300, 300, (10, 200, 90)).bandjoin(100),  # RGBA
        (pyvips.Image.xyz(256, 256)[0] * 250).cast("ushort").copy(interpretation="grey16"),
        pyvips.Image.black(50, 40, bands=4).copy(interpretation="cmyk"),
    ],
    ids=["noise", "flat", "1x1", "3x2", "sliver", "rgba", "grey16", "cmyk"],
)
def test_features_of_any_image_are_finite(picture: pyvips.Image) -> None:
    features = extract(picture)
    assert features.shape == (len(FEATURE_NAMES),) and features.dtype == np.float32
    assert np.isfinite(features).all(), dict(zip(FEATURE_NAMES, features, strict=True))


def test_features_tell_rendered_from_optical() -> None:
    """The cues the model leans on move the right way on two synthetic extremes."""
    names = list(FEATURE_NAMES)
    rendered, optical = extract(ui_like()), extract(noise(800, 500))
    assert rendered[names.index("text_coverage")] > 0.05 > optical[names.index("text_coverage")]
    assert rendered[names.index("top1_colour")] > 0.5 > optical[names.index("top1_colour")]
    assert rendered[names.index("flat_pixels")] > optical[names.index("flat_pixels")]


# --------------------------------------------------------------------------------------
# The committed model.


def test_committed_model_is_small_and_in_the_manifest() -> None:
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: run models/content/train.py"
    assert COMMITTED.stat().st_size < 1_000_000
    entry = load()[MODEL_NAME]
    assert entry.file == MODEL_FILE
    assert entry.bytes == COMMITTED.stat().st_size
    assert entry.sha256 == sha256_of(COMMITTED), "retrained? update models/manifest.toml"


def test_probabilities_are_a_distribution(classifier: ContentClassifier) -> None:
    assert classifier.labels == LABELS
    for picture in (noise(), ui_like(), flat(200, 100, (255, 255, 255)), pyvips.Image.black(1, 1)):
        probabilities = classifier.probabilities(picture)
        assert probabilities is not None and set(probabilities) == set(LABELS)
        assert all(0.0 <= p <= 1.0 for p in probabilities.values())
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        label, confidence = classifier.classify(picture)
        assert label in LABELS and confidence == pytest.approx(max(probabilities.values()))


# Every image here is held out of training (train.py FORCED_HOLDOUT).
CLEAR_CASES = [
    ("kodak/kodim03.png", "photo"),
    ("kodak/kodim21.png", "photo"),
    ("skimage/coffee.png", "photo"),
    ("generated/screenshot_ui.png", "screenshot"),
    ("generated/chart_matplotlib.png", "diagram"),
]


@pytest.mark.parametrize(("relative", "expected"), CLEAR_CASES)
def test_clear_cases(classifier: ContentClassifier, relative: str, expected: str) -> None:
    label, confidence = classifier.classify(image(relative))
    assert (label, relative) == (expected, relative)
    assert 0.5 < confidence <= 1.0


@pytest.mark.parametrize(("relative", "expected"), CLEAR_CASES[:2] + CLEAR_CASES[3:])
def test_clear_cases_survive_a_thumbnail(
    classifier: ContentClassifier, relative: str, expected: str
) -> None:
    """Served images are often small: the label holds at 320 px."""
    thumb = image(relative).thumbnail_image(320)
    assert classifier.classify(thumb)[0] == expected


def test_the_models_dir_comes_first(tmp_path: Path) -> None:
    """A copy in ``--models-dir`` is the one loaded (and verified)."""
    (tmp_path / "content").mkdir()
    shutil.copyfile(COMMITTED, tmp_path / MODEL_FILE)
    found = ContentClassifier(tmp_path)
    assert found.available, found.reason
    assert found.model_path == (tmp_path / MODEL_FILE).resolve()


# --------------------------------------------------------------------------------------
# Missing, tampered, broken: unavailable, and "unknown" instead of an exception.


def assert_unavailable(found: ContentClassifier, *words: str) -> None:
    assert not found.available
    assert all(word in found.reason for word in words), found.reason
    assert found.classify(noise()) == (UNKNOWN, 0.0)
    assert found.probabilities(noise()) is None
    assert found.probabilities_from_features(np.zeros(len(FEATURE_NAMES), np.float32)) is None


def entry(file: str, data: bytes) -> dict[str, ModelEntry]:
    return {
        MODEL_NAME: ModelEntry(
            name=MODEL_NAME,
            file=file,
            sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data),
            license="test",
            source="test",
        )
    }


def test_missing_model(tmp_path: Path) -> None:
    absent = entry("content/absent-content-model.onnx", b"x")
    assert_unavailable(ContentClassifier(tmp_path, manifest=absent), "missing")
    assert_unavailable(ContentClassifier.from_file(tmp_path / "nothing.onnx"), "missing")


def test_no_manifest_entry(tmp_path: Path) -> None:
    assert_unavailable(ContentClassifier(tmp_path, manifest={}), "no [content_classifier]")


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    data = bytearray(COMMITTED.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / MODEL_FILE).write_bytes(bytes(data))
    assert_unavailable(ContentClassifier(tmp_path), "mismatch", "sha256")


@pytest.mark.parametrize(
    "content",
    [b"", b"not an onnx model at all", b"\x08\x07\x12\x04junk" + bytes(range(256)) * 4],
    ids=["empty", "text", "truncated-protobuf"],
)
def test_broken_model_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    assert_unavailable(ContentClassifier.from_file(path), "failed to load")


def _tiny_model(path: Path, inputs: int, outputs: int, output_name: str) -> None:
    pytest.importorskip("onnx", reason="building a stand-in model needs onnx")
    from onnx import TensorProto, helper

    weights = helper.make_tensor(
        "w", TensorProto.FLOAT, [inputs, outputs], np.full(inputs * outputs, 0.1).tolist()
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], [output_name], axis=1)],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, inputs])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, outputs])],
        [weights],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize(
    ("inputs", "outputs", "name", "complaint"),
    [
        (len(FEATURE_NAMES) + 3, len(LABELS), "probabilities", "expects one input"),
        (len(FEATURE_NAMES), len(LABELS), "scores", "no 'probabilities' output"),
        (len(FEATURE_NAMES), len(LABELS) + 1, "probabilities", "probabilities for"),
    ],
    ids=["other-features", "other-output", "other-classes"],
)
def test_a_model_of_another_shape_is_refused(
    tmp_path: Path, inputs: int, outputs: int, name: str, complaint: str
) -> None:
    path = tmp_path / "other.onnx"
    _tiny_model(path, inputs, outputs, name)
    assert_unavailable(ContentClassifier.from_file(path), "failed to load", complaint)


def test_a_well_formed_stand_in_model_answers(tmp_path: Path) -> None:
    """The right signature without metadata: loaded, answers with the default labels."""
    path = tmp_path / "stand-in.onnx"
    _tiny_model(path, len(FEATURE_NAMES), len(LABELS), "probabilities")
    found = ContentClassifier.from_file(path)
    assert found.available, found.reason
    label, confidence = found.classify(noise())
    assert label in LABELS and confidence == pytest.approx(0.25)
