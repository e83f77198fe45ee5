"""Salient-object mask with U-2-Net small (``u2netp.onnx``) on onnxruntime.

The source is resized to 320x320 (aspect ignored, as U-2-Net was trained), divided by its
maximum, normalised with the ImageNet mean/std (RGB) and fed as [1, 3, 320, 320]. The first
of the seven outputs is the fused mask [1, 1, 320, 320], a probability per pixel.

From it: ``confidence`` is the raw peak probability (about 1.0 on photographs with a
subject, under 0.1 on flat or noise images). When it is at least ``min_confidence`` the
mask is min-max normalised and thresholded at 0.5: ``mass`` is the salient fraction of
the image, ``box`` the bounding box of that mass (a stray speck beyond the central 98% of
it, past an empty gap, does not stretch it) and ``centroid`` the mask-weighted centre of
the mass inside the box, both in source pixels. Otherwise the result is empty: ``found``
False, mass 0, the box the whole image and the centroid its centre.

It costs about 0.4-0.5 s per image on one core, whatever the source size: compute it once
per source and cache the result (callers do; nothing is cached here).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
import pyvips

from proxy.detectors.base import F32, U8, OnnxComponent
from proxy.geometry import Box
from proxy.imaging import resize_to, rgb8, to_array
from proxy.manifest import ModelEntry
from proxy.memory import release_free_memory
from proxy.providers import CPU_ONLY

log = logging.getLogger(__name__)

SIDE = 320
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
MASK_SIDE = 64  # long side of the mask handed back
THRESHOLD = 0.5  # of the normalised mask
TRIM = 0.01  # of the mass, off each side of the box


@dataclass(frozen=True)
class Saliency:
    """Where the subject is, in the source image's pixel coordinates."""

    mask: U8  # (rows, cols) 0-255, MASK_SIDE on the long side, the source's aspect ratio
    box: Box
    mass: float  # salient fraction of the image, 0-1
    centroid: tuple[float, float]  # x, y
    confidence: float  # the model's peak probability, 0-1
    image_size: tuple[int, int]  # width, height of the source

    @property
    def found(self) -> bool:
        return self.mass > 0


def model_input(image: pyvips.Image) -> F32:
    rgb = to_array(rgb8(resize_to(image, SIDE, SIDE))).astype(np.float32)
    rgb /= max(float(rgb.max()), 1.0)
    rgb = (rgb - MEAN) / STD
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def _span(profile: F32, trim: float) -> tuple[int, int]:
    """The mass between its ``trim`` and ``1 - trim`` quantiles, grown back over the
    neighbouring non-empty cells: stray specks past an empty gap stay out, the subject's
    own edges come back."""
    cumulative = np.cumsum(profile, dtype=np.float64)
    total = cumulative[-1]
    first = int(np.searchsorted(cumulative, total * trim, side="right"))
    last = int(np.searchsorted(cumulative, total * (1 - trim), side="left"))
    first, last = min(first, last), min(max(first, last), len(profile) - 1)
    while first > 0 and profile[first - 1] > 0:
        first -= 1
    while last < len(profile) - 1 and profile[last + 1] > 0:
        last += 1
    return first, last


def summarise(raw: F32, width: int, height: int, min_confidence: float = 0.2) -> Saliency:
    """The network's [rows, cols] probability map -> a :class:`Saliency` for a source of
    ``width`` x ``height`` pixels (the map may have any size; it covers the whole image)."""
    raw = np.nan_to_num(raw.astype(np.float32), nan=0.0)
    confidence = float(np.clip(raw.max(), 0.0, 1.0))
    low, high = float(raw.min()), float(raw.max())
    confident = confidence >= min_confidence and high - low > 1e-6
    norm = (raw - low) / (high - low) if confident else np.clip(raw, 0.0, 1.0)
    rows, cols = norm.shape
    mask = _small_mask(norm, width, height)
    whole = Box(0.0, 0.0, float(width), float(height))
    centre = (width / 2, height / 2)
    weights = np.where(norm > THRESHOLD, norm, 0.0).astype(np.float32)
    if not confident or not weights.any():
        return Saliency(mask, whole, 0.0, centre, confidence, (width, height))
    mass = float((norm > THRESHOLD).mean())
    x0, x1 = _span(weights.sum(axis=0), TRIM)
    y0, y1 = _span(weights.sum(axis=1), TRIM)
    inside = weights[y0 : y1 + 1, x0 : x1 + 1]
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    total = float(inside.sum())
    cx = float((inside * (xs + 0.5)).sum()) / total
    cy = float((inside * (ys + 0.5)).sum()) / total
    sx, sy = width / cols, height / rows
    box = Box(x0 * sx, y0 * sy, (x1 + 1 - x0) * sx, (y1 + 1 - y0) * sy)
    return Saliency(mask, box, mass, (cx * sx, cy * sy), confidence, (width, height))


def _small_mask(norm: F32, width: int, height: int) -> U8:
    scale = MASK_SIDE / max(width, height)
    mask_w = max(1, min(MASK_SIDE, round(width * scale)))
    mask_h = max(1, min(MASK_SIDE, round(height * scale)))
    levels = np.ascontiguousarray(np.clip(norm * 255 + 0.5, 0, 255).astype(np.uint8))
    image = pyvips.Image.new_from_memory(
        levels.tobytes(), levels.shape[1], levels.shape[0], 1, "uchar"
    )
    return to_array(resize_to(image, mask_w, mask_h))[:, :, 0].copy()


class SaliencyDetector(OnnxComponent):
    """``detect(image)`` -> :class:`Saliency`, or None when unavailable or on any failure."""

    # Fully optimised, u2netp peaks ~240 MB above the baseline; basic optimisation ~170 MB,
    # for ~25% more time on a run that happens once per source (measured here).
    lean: ClassVar[bool] = True

    model_name: ClassVar[str] = "u2netp"
    kind: ClassVar[str] = "saliency detector"

    def __init__(
        self,
        models_dir: Path,
        *,
        min_confidence: float = 0.2,
        manifest: Mapping[str, ModelEntry] | None = None,
        providers: Sequence[str] = CPU_ONLY,
    ) -> None:
        self.min_confidence = min_confidence
        self.input_name = "input.1"
        self.output_name = ""
        super().__init__(models_dir, manifest=manifest, providers=providers)

    def _accept(self, session: ort.InferenceSession) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape) != [1, 3, SIDE, SIDE]:
            raise ValueError(f"expected one [1, 3, {SIDE}, {SIDE}] input")
        first = session.get_outputs()[0]
        if list(first.shape) != [1, 1, SIDE, SIDE]:
            raise ValueError(f"expected a [1, 1, {SIDE}, {SIDE}] first output")
        self.input_name = inputs[0].name
        self.output_name = first.name

    _one_at_a_time = threading.Lock()

    def detect(self, image: pyvips.Image) -> Saliency | None:
        if self.session is None:
            return None
        try:
            blob = model_input(image)
            # One run at a time: u2netp's activations peak at ~230 MB, and two at once
            # would double a node's memory for no throughput (one core each anyway).
            with self._one_at_a_time:
                (output,) = self.session.run([self.output_name], {self.input_name: blob})
                release_free_memory()
            raw = np.asarray(output, np.float32).reshape(SIDE, SIDE)
            return summarise(raw, image.width, image.height, self.min_confidence)
        except Exception as exc:  # libvips and onnxruntime errors alike
            log.warning("saliency detection failed: %s", exc)
            return None
