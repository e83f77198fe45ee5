"""Face detection with YuNet (``face_detection_yunet_2023mar.onnx``) on onnxruntime.

The model takes one 640x640 BGR image, 0-255 floats, NCHW. The source is letterboxed:
resized keeping its aspect ratio so that its long side is 640, placed at the top-left
corner, the rest padded black. Its twelve outputs are anchor-free predictions on three
grids (strides 8, 16, 32; 80x80, 40x40 and 20x20 cells), row-major:

- ``cls_S``, ``obj_S`` [1, N, 1]: class and objectness; score = sqrt(cls * obj), both
  clamped to [0, 1] first (as OpenCV's ``FaceDetectorYN`` does);
- ``bbox_S`` [1, N, 4]: cx = (col + b0) * S, cy = (row + b1) * S, w = exp(b2) * S,
  h = exp(b3) * S;
- ``kps_S`` [1, N, 10]: five landmarks, x = (col + k) * S, y = (row + k') * S: right eye,
  left eye, nose tip, right and left mouth corners (the subject's right and left).

Boxes scoring at least ``score_threshold`` (default 0.8: a motorcycle headlight scores
about 0.6) go through greedy NMS (IoU 0.3) and are mapped back to source pixels. Boxes
between ``possible_threshold`` (0.45) and it are kept apart as *possible* faces: YuNet
scores small real faces (8-20 px: sailors, a woman at a door, rafters in profile) at
0.45-0.8, so cropping keeps them when it costs nothing, but they are never reported as
faces. About 15-20 ms per image on one core, most of it the network.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
import pyvips

from proxy.detectors.base import F32, OnnxComponent
from proxy.geometry import Box
from proxy.imaging import resize_to, rgb8, to_array
from proxy.manifest import ModelEntry
from proxy.providers import CPU_ONLY

log = logging.getLogger(__name__)

SIDE = 640
MAX_SKIPPED_UPSCALE = 1.25  # sources from 512 px up are fed at their own size
STRIDES = (8, 16, 32)
OUTPUTS = tuple(f"{head}_{stride}" for head in ("cls", "obj", "bbox", "kps") for stride in STRIDES)
TOP_K = 5000  # candidates kept before NMS, as OpenCV does


@dataclass(frozen=True)
class Face(Box):
    """A face in the source image's pixel coordinates: its box and its five landmarks."""

    landmarks: tuple[tuple[float, float], ...] = ()  # right eye, left eye, nose, mouth r, l


@dataclass(frozen=True)
class Letterbox:
    """Where the source sits in the 640x640 input: ``input = source * scale``."""

    scale_x: float
    scale_y: float
    width: int  # the resized source, at the top-left of the input
    height: int


def letterbox(image: pyvips.Image, side: int = SIDE) -> tuple[F32, Letterbox]:
    """The network input [1, 3, side, side] (BGR, 0-255) and how to map boxes back.
    A copy just under ``side`` is padded, not upsampled: libvips' upsampling costs ~9 ms
    at this size, and YuNet finds the same faces at 512-640 px."""
    scale = side / max(image.width, image.height)
    if 1.0 < scale <= MAX_SKIPPED_UPSCALE:
        scale = 1.0
    width = min(side, max(1, round(image.width * scale)))
    height = min(side, max(1, round(image.height * scale)))
    resized = rgb8(resize_to(image, width, height))
    padded = resized.embed(0, 0, side, side, extend="black")
    rgb = to_array(padded)
    blob = np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
    box = Letterbox(width / image.width, height / image.height, width, height)
    return blob, box


def _grid(stride: int, side: int = SIDE) -> tuple[F32, F32]:
    cells = side // stride
    rows, cols = np.divmod(np.arange(cells * cells, dtype=np.float32), np.float32(cells))
    return cols, rows


def decode(
    outputs: Mapping[str, F32], score_threshold: float, side: int = SIDE
) -> tuple[F32, F32, F32]:
    """Raw outputs -> (boxes [n, 4] x1 y1 w h, scores [n], landmarks [n, 5, 2]), input pixels."""
    boxes, scores, marks = [], [], []
    for stride in STRIDES:
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= score_threshold)
        if keep.size == 0:
            continue
        cols, rows = _grid(stride, side)
        cols, rows = cols[keep], rows[keep]
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
        cx = (cols + bbox[:, 0]) * stride
        cy = (rows + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, w, h], axis=1))
        scores.append(score[keep])
        marks.append(
            np.stack([(kps[:, :, 0] + cols[:, None]), (kps[:, :, 1] + rows[:, None])], axis=2)
            * stride
        )
    if not boxes:
        empty = np.zeros((0,), np.float32)
        return empty.reshape(0, 4), empty, empty.reshape(0, 5, 2)
    return (
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(marks).astype(np.float32),
    )


def nms(boxes: F32, scores: F32, iou_threshold: float, top_k: int = TOP_K) -> list[int]:
    """Greedy non-maximum suppression over x1 y1 w h boxes; indices, best first."""
    order = np.argsort(-scores, kind="stable")[:top_k]
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = np.maximum(boxes[:, 2], 0) * np.maximum(boxes[:, 3], 0)
    kept: list[int] = []
    while order.size:
        best = int(order[0])
        kept.append(best)
        rest = order[1:]
        inter_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        inter_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = inter_w * inter_h
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[iou <= iou_threshold]
    return kept


@dataclass(frozen=True)
class Detections:
    faces: list[Face]  # at least score_threshold, best first
    possible: list[Face]  # possible_threshold .. score_threshold, best first


class FaceDetector(OnnxComponent):
    """``detect(image)`` -> faces, best first; ``[]`` when unavailable or on any failure.
    ``detect_all`` adds the possible faces."""

    model_name: ClassVar[str] = "yunet"
    kind: ClassVar[str] = "face detector"

    def __init__(
        self,
        models_dir: Path,
        *,
        score_threshold: float = 0.8,
        possible_threshold: float = 0.45,
        nms_iou: float = 0.3,
        manifest: Mapping[str, ModelEntry] | None = None,
        providers: Sequence[str] = CPU_ONLY,
    ) -> None:
        self.score_threshold = score_threshold
        self.possible_threshold = min(possible_threshold, score_threshold)
        self.nms_iou = nms_iou
        self.input_name = "input"
        super().__init__(models_dir, manifest=manifest, providers=providers)

    def _accept(self, session: ort.InferenceSession) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape) != [1, 3, SIDE, SIDE]:
            raise ValueError(f"expected one [1, 3, {SIDE}, {SIDE}] input")
        names = {output.name for output in session.get_outputs()}
        if missing := [name for name in OUTPUTS if name not in names]:
            raise ValueError(f"outputs {', '.join(missing)} missing")
        self.input_name = inputs[0].name

    def detect(self, image: pyvips.Image) -> list[Face]:
        return self.detect_all(image).faces

    def detect_all(self, image: pyvips.Image) -> Detections:
        if self.session is None:
            return Detections([], [])
        try:
            found = self._detect(self.session, image)
        except Exception as exc:  # libvips and onnxruntime errors alike: no faces, not a 500
            log.warning("face detection failed: %s", exc)
            return Detections([], [])
        return Detections(
            [f for f in found if f.score >= self.score_threshold],
            [f for f in found if f.score < self.score_threshold],
        )

    def _detect(self, session: ort.InferenceSession, image: pyvips.Image) -> list[Face]:
        """Everything from ``possible_threshold`` up, through one NMS (a possible box that
        overlaps a confident one is the same face, and is dropped)."""
        blob, box = letterbox(image)
        raw = session.run(list(OUTPUTS), {self.input_name: blob})
        outputs = {
            name: np.asarray(value, np.float32) for name, value in zip(OUTPUTS, raw, strict=True)
        }
        boxes, scores, marks = decode(outputs, self.possible_threshold)
        faces: list[Face] = []
        for index in nms(boxes, scores, self.nms_iou):
            x, y, w, h = (float(v) for v in boxes[index])
            cx, cy = x + w / 2, y + h / 2
            if not (0 <= cx < box.width and 0 <= cy < box.height):
                continue  # centred in the padding: not in the image
            x1, y1 = max(0.0, x), max(0.0, y)
            x2, y2 = min(float(box.width), x + w), min(float(box.height), y + h)
            landmarks = tuple(
                (float(px) / box.scale_x, float(py) / box.scale_y) for px, py in marks[index]
            )
            faces.append(
                Face(
                    x=x1 / box.scale_x,
                    y=y1 / box.scale_y,
                    w=(x2 - x1) / box.scale_x,
                    h=(y2 - y1) / box.scale_y,
                    score=float(scores[index]),
                    landmarks=landmarks,
                )
            )
        return faces
