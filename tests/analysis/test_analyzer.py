"""The analyzer on the real models: one text search shared with the content features, and
one saliency run per source even when every size of it is asked for at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import pyvips

from proxy.analysis.analyzer import Analyzer
from proxy.detectors import content, text
from proxy.fingerprint import PhashMemo
from tests.support import shared_dir


@pytest.fixture
def analyzer(tmp_path: Path) -> Analyzer:
    models = shared_dir() / "models"
    if not (models / "u2netp.onnx").is_file():
        pytest.skip(f"shared models not found at {models}")
    return Analyzer(models, tmp_path / "analysis", PhashMemo())


def test_concurrent_analyses_of_one_picture_run_saliency_once(
    analyzer: Analyzer, data_root: Path
) -> None:
    blob = (data_root / "kodak" / "kodim12.png").read_bytes()
    runs = 0
    detect = analyzer.saliency.detect
    lock = threading.Lock()

    def counting(image: pyvips.Image) -> object:
        nonlocal runs
        with lock:
            runs += 1
        return detect(image)

    analyzer.saliency.detect = counting  # type: ignore[method-assign]
    barrier = threading.Barrier(4)
    results = []

    def analyse() -> None:
        barrier.wait()
        results.append(analyzer.analyse(blob))

    threads = [threading.Thread(target=analyse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    analyzer.close()
    assert runs == 1
    assert len({result.phash for result in results}) == 1 and len(results) == 4


def test_shared_text_boxes_give_the_classifier_its_trained_features(
    analyzer: Analyzer, data_root: Path
) -> None:
    """The analyzer's shortcut must not change what the classifier sees."""
    small = pyvips.Image.thumbnail_buffer(
        (data_root / "generated" / "screenshot_ui.png").read_bytes(), 640, height=640
    ).copy_memory()  # read three times below, as the analyzer does
    rgb = content.rgb_array(small)
    boxes = text.find_boxes(content.luma_of(rgb))
    assert boxes
    shared = content.features_from_rgb(rgb, boxes)
    alone = content.extract(small)
    assert (shared == alone).all()
    found, label = analyzer._text_and_content(small)
    analyzer.close()
    assert found.regions and label is not None and label[0] == "screenshot"


def _silent_classifier(path: Path) -> content.ContentClassifier:
    """A well-formed classifier whose every answer is all zeros: it loads, then cannot
    answer at run time (as when inference fails or returns no probability mass)."""
    onnx = pytest.importorskip("onnx", reason="building a stand-in model needs onnx")
    helper, tensor = onnx.helper, onnx.TensorProto
    inputs, outputs = len(content.FEATURE_NAMES), len(content.LABELS)
    weights = helper.make_tensor("w", tensor.FLOAT, [inputs, outputs], [0.0] * inputs * outputs)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["probabilities"])],
        "silent",
        [helper.make_tensor_value_info("input", tensor.FLOAT, [None, inputs])],
        [helper.make_tensor_value_info("probabilities", tensor.FLOAT, [None, outputs])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    found = content.ContentClassifier.from_file(path)
    assert found.available, found.reason
    return found


def test_a_classifier_that_cannot_answer_gives_no_class(
    analyzer: Analyzer, data_root: Path, tmp_path: Path
) -> None:
    """No class at all, never the placeholder "unknown": the policy, the store, /meta and
    the admin all read the analysis's class as one of the four."""
    analyzer.content = _silent_classifier(tmp_path / "silent.onnx")
    blob = (data_root / "kodak" / "kodim12.png").read_bytes()
    phash = analyzer.fingerprint(blob)
    assert analyzer.content_of(blob, phash) is None
    found = analyzer.analyse(blob)
    analyzer.close()
    assert found.content is None
    assert found.text_coverage >= 0.0  # the rest of the analysis is still there
