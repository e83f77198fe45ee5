"""YuNet face detection: the decode on synthetic outputs, real faces (and none) on real
images, the letterbox's coordinate round trip, and a missing, tampered or broken model."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import pyvips

from proxy import model_files
from proxy.detectors import Component
from proxy.detectors.faces import SIDE, STRIDES, Face, FaceDetector, decode, nms
from proxy.manifest import ModelEntry, load, sha256_of
from tests.detectors import empty_models_dir, flat, image, shared_models, tampered_models_dir

ASTRONAUT_FACE = (224.0, 119.0)  # centre, measured and checked by eye (512x512)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    found = FaceDetector(shared_models("yunet"))
    assert found.available, found.reason
    return found


def only_face(faces: list[Face]) -> Face:
    assert len(faces) == 1, faces
    return faces[0]


def near(face: Face, x: float, y: float, tolerance: float) -> bool:
    cx, cy = face.center
    return abs(cx - x) <= tolerance and abs(cy - y) <= tolerance


# --------------------------------------------------------------------------------------
# The decode and NMS, without the model.


def blank_outputs() -> dict[str, np.ndarray]:
    outputs: dict[str, np.ndarray] = {}
    for stride in STRIDES:
        cells = (SIDE // stride) ** 2
        outputs[f"cls_{stride}"] = np.zeros((1, cells, 1), np.float32)
        outputs[f"obj_{stride}"] = np.zeros((1, cells, 1), np.float32)
        outputs[f"bbox_{stride}"] = np.zeros((1, cells, 4), np.float32)
        outputs[f"kps_{stride}"] = np.zeros((1, cells, 10), np.float32)
    return outputs


def test_decode_follows_the_anchor_free_formulas() -> None:
    outputs = blank_outputs()
    stride, row, col = 16, 10, 20
    cell = row * (SIDE // stride) + col
    outputs["cls_16"][0, cell, 0] = 0.81
    outputs["obj_16"][0, cell, 0] = 1.0
    outputs["bbox_16"][0, cell] = [0.5, 0.25, math.log(2), math.log(3)]
    outputs["kps_16"][0, cell] = [0.1, 0.2, 1, 1, 0, 0, -1, 2, 3, -0.5]
    outputs["cls_8"][0, 0, 0] = 0.5  # sqrt(0.5 * 1) = 0.707: under the threshold
    outputs["obj_8"][0, 0, 0] = 1.0
    boxes, scores, marks = decode(outputs, score_threshold=0.8)
    assert scores.tolist() == pytest.approx([0.9])
    cx, cy, w, h = (col + 0.5) * stride, (row + 0.25) * stride, 2 * stride, 3 * stride
    assert boxes[0].tolist() == pytest.approx([cx - w / 2, cy - h / 2, w, h])
    expected = (
        [(col + dx) * stride for dx in (0.1, 1, 0, -1, 3)],
        [(row + dy) * stride for dy in (0.2, 1, 0, 2, -0.5)],
    )
    assert marks[0, :, 0].tolist() == pytest.approx(expected[0])
    assert marks[0, :, 1].tolist() == pytest.approx(expected[1])


def test_decode_clamps_scores_and_handles_no_candidates() -> None:
    outputs = blank_outputs()
    outputs["cls_32"][0, 3, 0] = 1.7  # out of range: clamped to 1, as OpenCV does
    outputs["obj_32"][0, 3, 0] = 0.64
    _, scores, _ = decode(outputs, 0.8)
    assert scores.tolist() == pytest.approx([0.8])
    boxes, scores, marks = decode(blank_outputs(), 0.8)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and marks.shape == (0, 5, 2)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.85, 0.95, 0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.3) == [1, 2]
    assert nms(boxes[:0], scores[:0], 0.3) == []


# --------------------------------------------------------------------------------------
# Real images.


def test_astronaut_has_one_face_where_it_is(detector: FaceDetector) -> None:
    face = only_face(detector.detect(image("skimage/astronaut.png")))
    assert face.score >= 0.9
    assert near(face, *ASTRONAUT_FACE, tolerance=8)
    assert 70 <= face.w <= 120 and 90 <= face.h <= 140
    assert 170 <= face.x <= 190 and 55 <= face.y <= 75
    right_eye, left_eye, nose, mouth_right, mouth_left = face.landmarks
    for x, y in face.landmarks:
        assert face.x <= x <= face.x + face.w and face.y <= y <= face.y + face.h
    assert right_eye[0] < nose[0] < left_eye[0]  # the subject's right eye is on our left
    assert right_eye[1] < nose[1] < mouth_right[1] and left_eye[1] < nose[1] < mouth_left[1]


def test_beach_couple_has_two_faces(detector: FaceDetector) -> None:
    faces = detector.detect(image("kodak/kodim12.png"))
    assert len(faces) == 2, faces
    assert all(face.score >= 0.8 for face in faces)
    assert faces[0].score >= faces[1].score
    assert sorted(round(face.center[0]) for face in faces) == pytest.approx([281, 340], abs=10)
    assert all(face.center[1] < 160 for face in faces)  # heads, not the beach


def test_studio_portrait_has_one_face(detector: FaceDetector) -> None:
    face = only_face(detector.detect(image("wikipedia/038.png")))
    assert face.score >= 0.85
    assert near(face, 590, 202, tolerance=25)


def test_small_sailors_are_possible_faces_not_faces(detector: FaceDetector) -> None:
    """kodim10's helmsman and crew (13-14 px faces, hand-labelled in bench/crops/faces.json)
    score 0.7-0.8: below the face threshold, kept apart as possible faces."""
    found = detector.detect_all(image("kodak/kodim10.png"))
    assert found.faces == [] and detector.detect(image("kodak/kodim10.png")) == []
    assert len(found.possible) == 2
    assert near(found.possible[0], 301, 555, tolerance=6)  # label [294, 546, 14, 18]
    assert near(found.possible[1], 329, 538, tolerance=6)  # label [323, 530, 13, 16]
    assert all(0.45 <= f.score < 0.8 for f in found.possible)


def test_a_possible_face_overlapping_a_face_is_the_same_face(detector: FaceDetector) -> None:
    found = detector.detect_all(image("skimage/astronaut.png"))
    assert len(found.faces) == 1
    assert not any(near(f, *found.faces[0].center, tolerance=60) for f in found.possible)


@pytest.mark.parametrize("relative", ["kodak/kodim01.png", "kodak/kodim21.png"])
def test_no_faces_where_there_are_none(detector: FaceDetector, relative: str) -> None:
    assert detector.detect(image(relative)) == []


def test_flat_and_tiny_images_have_no_faces(detector: FaceDetector) -> None:
    assert detector.detect(flat(640, 480, (128, 128, 128))) == []
    assert detector.detect(flat(1, 1, (0, 0, 0))) == []
    assert detector.detect(flat(3, 700, (255, 255, 255))) == []


# --------------------------------------------------------------------------------------
# The letterbox: any size and shape maps back to the source's pixels.


@pytest.mark.parametrize(
    ("name", "shift"),
    [
        ("crop 300x512 at x=100", (-100, 0)),
        ("crop 300x512 at x=60", (-60, 0)),
        ("pad to 900x512 at x=300", (300, 0)),
        ("pad to 512x900 at y=250", (0, 250)),
        ("crop then pad to 300x1600 at y=600", (-100, 600)),
    ],
)
def test_letterbox_round_trip_shifts(
    detector: FaceDetector, name: str, shift: tuple[int, int]
) -> None:
    astronaut = image("skimage/astronaut.png")
    shaped = {
        "crop 300x512 at x=100": lambda: astronaut.crop(100, 0, 300, 512),
        "crop 300x512 at x=60": lambda: astronaut.crop(60, 0, 300, 512),
        "pad to 900x512 at x=300": lambda: astronaut.embed(300, 0, 900, 512, extend="white"),
        "pad to 512x900 at y=250": lambda: astronaut.embed(0, 250, 512, 900, extend="black"),
        "crop then pad to 300x1600 at y=600": lambda: astronaut.crop(100, 0, 300, 512).embed(
            0, 600, 300, 1600, extend="copy"
        ),
    }[name]()
    face = only_face(detector.detect(shaped))
    assert face.score >= 0.9
    expected = (ASTRONAUT_FACE[0] + shift[0], ASTRONAUT_FACE[1] + shift[1])
    assert near(face, *expected, tolerance=8), (face.center, expected)
    assert face.x >= 0 and face.y >= 0
    assert face.x + face.w <= shaped.width and face.y + face.h <= shaped.height


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0])
def test_letterbox_round_trip_scales(detector: FaceDetector, scale: float) -> None:
    face = only_face(detector.detect(image("skimage/astronaut.png").resize(scale)))
    assert near(face, ASTRONAUT_FACE[0] * scale, ASTRONAUT_FACE[1] * scale, 8 * max(1, scale))
    assert face.w == pytest.approx(91 * scale, rel=0.1)


@pytest.mark.parametrize("convert", ["alpha", "b-w", "rgb16"])
def test_other_pixel_formats(detector: FaceDetector, convert: str) -> None:
    astronaut = image("skimage/astronaut.png")
    variant = astronaut.bandjoin(255) if convert == "alpha" else astronaut.colourspace(convert)
    face = only_face(detector.detect(variant))
    assert face.score >= 0.9
    assert near(face, *ASTRONAUT_FACE, tolerance=8)


def test_one_session_serves_threads(detector: FaceDetector) -> None:
    pictures = [image("skimage/astronaut.png"), image("kodak/kodim12.png")] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(detector.detect, pictures))
    assert [len(faces) for faces in results] == [1, 2] * 4
    assert results[0] == results[2] == results[6]


# --------------------------------------------------------------------------------------
# A missing, tampered or broken model: unavailable, with a reason, and never an error.


def test_missing_model_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_files, "SHIPPED", tmp_path / "no-shipped-models")
    missing = FaceDetector(empty_models_dir(tmp_path, "yunet"))
    assert not missing.available
    assert "missing" in missing.reason and "face_detection_yunet" in missing.reason
    assert missing.detect(flat(64, 64, (0, 0, 0))) == []


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    tampered = FaceDetector(tampered_models_dir(shared_models("yunet"), tmp_path, "yunet"))
    assert not tampered.available
    assert "mismatch" in tampered.reason and "sha256" in tampered.reason
    assert tampered.detect(flat(64, 64, (0, 0, 0))) == []


def test_truncated_model_is_refused(tmp_path: Path) -> None:
    file = load()["yunet"].file
    (tmp_path / file).write_bytes(b"\x08\x01" * 100)
    truncated = FaceDetector(tmp_path)
    assert not truncated.available
    assert "bytes" in truncated.reason


def test_unloadable_model_is_unavailable(tmp_path: Path) -> None:
    """A file the manifest vouches for that onnxruntime cannot read: refused, not raised."""
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not an onnx model")
    entry = ModelEntry("yunet", "broken.onnx", sha256_of(path), path.stat().st_size, "-", "-")
    broken = FaceDetector(tmp_path, manifest={"yunet": entry})
    assert not broken.available
    assert "failed to load" in broken.reason
    assert broken.detect(flat(64, 64, (0, 0, 0))) == []


def test_manifest_without_the_entry(tmp_path: Path) -> None:
    orphan = FaceDetector(tmp_path, manifest={})
    assert not orphan.available
    assert "[yunet]" in orphan.reason


def test_detector_is_a_component(detector: FaceDetector) -> None:
    component: Component = detector
    assert component.available and component.reason == "ready"


def test_undecodable_pixels_are_no_faces(detector: FaceDetector) -> None:
    whole = (Path(str(image("kodak/kodim12.png").filename))).read_bytes()
    truncated = pyvips.Image.new_from_buffer(whole[: len(whole) // 2], "", fail_on="truncated")
    assert detector.detect(truncated) == []
