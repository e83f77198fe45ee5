"""What kind of picture is this: photo, diagram, screenshot or art.

A small ONNX classifier trained in the repo (``models/content/train.py``) on cheap
features of a downscaled copy: how many distinct colours and how dominant the top few
are, how much of the image is exactly flat, how sharp and how axis-aligned the edges
are, saturation and hue spread, sensor-like noise, and the text coverage from
``proxy.detectors.text``. It costs a few tens of milliseconds and is a hint for
policies (screenshots and diagrams want lossless-friendly settings, photos do not), not
ground truth.

The model file is the manifest's ``[content_classifier]`` entry (``MODEL_FILE``, bundled
in the repo's ``models/``), verified like every model (``proxy.detectors.base``). Missing,
tampered or broken: ``available`` is False, ``reason`` says why, and ``classify`` answers
``("unknown", 0.0)`` instead of raising.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal, get_args

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pyvips

from proxy.detectors import text
from proxy.detectors.base import OnnxComponent
from proxy.imaging import shrink_to, to_array
from proxy.manifest import ModelEntry, sha256_of
from proxy.providers import CPU_ONLY

log = logging.getLogger(__name__)

ContentClass = Literal["photo", "diagram", "screenshot", "art"]
LABELS: tuple[ContentClass, ...] = get_args(ContentClass)  # the model's output order
UNKNOWN = "unknown"
MODEL_NAME = "content_classifier"  # its entry in models/manifest.toml
MODEL_FILE = "content/content_classifier.onnx"
MAX_SIDE = text.MAX_SIDE  # one analysis copy serves the text detector and the statistics
FEATURE_NAMES = (
    "text_coverage",
    "text_regions",
    "top1_colour",
    "top8_colours",
    "distinct_colours",
    "flat_pixels",
    "edge_mean",
    "strong_edges",
    "edge_sharpness",
    "axis_aligned_edges",
    "saturation_mean",
    "saturation_std",
    "saturated_pixels",
    "hue_entropy",
    "luma_entropy",
    "luma_std",
    "white_pixels",
    "dark_pixels",
    "colourfulness",
    "noise",
    "flat_blocks",
    "luma_peaks",
    "block_std_median",
    "soft_gradients",
    "luma_levels",
)

Array = npt.NDArray[np.float32]


def known_class(label: str | None) -> ContentClass | None:
    """``label`` when it is one of the classes, else None: ``UNKNOWN`` (the model could not
    answer) or a class an older model had is no class to store, search or show."""
    for name in LABELS:
        if label == name:
            return name
    return None


def rgb_array(image: pyvips.Image, max_side: int = MAX_SIDE) -> npt.NDArray[np.uint8]:
    """8-bit sRGB (alpha flattened over white), longest side at most ``max_side``."""
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        try:
            image = image.colourspace("srgb")
        except pyvips.Error:
            image = image.cast("uchar")
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.bands < 3:
        image = image.extract_band(0)
        image = image.bandjoin([image, image])
    image = image.extract_band(0, n=3)
    if image.format != "uchar":
        image = image.cast("uchar")
    image, _ = shrink_to(image, max_side)
    data: npt.NDArray[np.uint8] = to_array(image)
    return data


def _entropy(counts: npt.NDArray[np.float64]) -> float:
    """Normalised 0-1 entropy of a histogram."""
    total = counts.sum()
    if total <= 0 or len(counts) < 2:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum() / np.log(len(counts)))


def luma_of(rgb8: npt.NDArray[np.uint8]) -> Array:
    """BT.601 luma of an RGB array: the grey the features (and their text boxes) see."""
    rgb = rgb8.astype(np.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma: Array = (0.299 * red + 0.587 * green + 0.114 * blue).astype(np.float32)
    return luma


def features_from_rgb(
    rgb8: npt.NDArray[np.uint8], boxes: list[text.Corners] | None = None
) -> Array:
    """The feature vector (``FEATURE_NAMES`` order) of an analysis-size RGB array;
    ``boxes``: text boxes already found on its :func:`luma_of` (they are not found twice)."""
    rgb = rgb8.astype(np.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = luma_of(rgb8)
    height, width = luma.shape

    if boxes is None:
        boxes = text.find_boxes(luma)
    covered = np.zeros(luma.shape, dtype=bool)
    for x0, y0, x1, y1, _ in boxes:
        covered[y0:y1, x0:x1] = True
    text_coverage = float(covered.mean())

    # Exact colours on a decimated copy: decimation keeps a palette's colours exact.
    sample = rgb8[::2, ::2].reshape(-1, 3).astype(np.int32)
    codes = (sample[:, 0] << 16) | (sample[:, 1] << 8) | sample[:, 2]
    _, counts = np.unique(codes, return_counts=True)
    ordered = np.sort(counts)[::-1].astype(np.float64)
    n_sample = max(1, len(codes))
    top1 = float(ordered[0] / n_sample)
    top8 = float(ordered[:8].sum() / n_sample)
    distinct = float(np.log(len(counts)) / np.log(max(n_sample, 2)))

    dx = np.abs(np.diff(luma, axis=1))[:-1, :] if width > 1 else np.zeros((1, 1), np.float32)
    dy = np.abs(np.diff(luma, axis=0))[:, :-1] if height > 1 else np.zeros((1, 1), np.float32)
    if dx.shape != dy.shape:
        dx = dy = np.zeros((1, 1), np.float32)
    gradient = dx + dy
    flat = float((gradient <= 1).mean())
    soft = float(((gradient >= 2) & (gradient <= 10)).mean())  # shading: optical, or airbrushed
    edge_mean = float(gradient.mean() / 255)
    strong = float((gradient > 48).mean())
    # Sharpness: one-pixel step over the three-pixel step across the same edge; a
    # rendered edge is a single step (ratio near 1), an optical one is spread (near 1/3).
    ratios = []
    for axis in (0, 1):
        if luma.shape[axis] >= 4:
            one = np.abs(np.diff(luma, axis=axis))
            head = [slice(None), slice(None)]
            tail = [slice(None), slice(None)]
            mid = [slice(None), slice(None)]
            head[axis], tail[axis], mid[axis] = slice(0, -3), slice(3, None), slice(1, -1)
            three = np.abs(luma[tuple(tail)] - luma[tuple(head)])
            one_mid = one[tuple(mid)]
            edge = three > 30
            if edge.any():
                ratios.append(np.minimum(one_mid[edge] / three[edge], 1.0))
    joined = np.concatenate(ratios) if ratios else np.zeros(0, np.float32)
    sharpness = float(joined.mean()) if joined.size else 0.0
    strong_mask = gradient > 32
    if strong_mask.any():
        gx, gy = dx[strong_mask], dy[strong_mask]
        axis_aligned = float((np.minimum(gx, gy) < 0.15 * np.maximum(gx, gy)).mean())
    else:
        axis_aligned = 0.0

    maximum = np.maximum(np.maximum(red, green), blue)  # not rgb.max(axis=2): slow in numpy
    minimum = np.minimum(np.minimum(red, green), blue)
    saturation = np.where(maximum > 0, (maximum - minimum) / np.maximum(maximum, 1), 0.0)
    saturated = float(((saturation > 0.5) & (maximum > 50)).mean())
    chromatic = (saturation > 0.2) & (maximum > 30)
    if chromatic.any():
        r, g, b = red[chromatic], green[chromatic], blue[chromatic]
        hue = np.arctan2(np.sqrt(3.0) * (g - b), 2 * r - g - b)
        hue_hist = np.histogram(hue, bins=18, range=(-np.pi, np.pi))[0].astype(np.float64)
        hue_entropy = _entropy(hue_hist) * float(chromatic.mean()) ** 0.25
    else:
        hue_entropy = 0.0

    levels = np.clip(luma, 0, 255).astype(np.int32)
    luma_hist = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    luma_entropy = _entropy(luma_hist.reshape(64, 4).sum(axis=1))
    luma_peaks = float(np.sort(luma_hist)[-4:].sum() / max(1.0, luma_hist.sum()))
    luma_levels = float((luma_hist > 0.0005 * luma_hist.sum()).mean())  # tones in use
    rg, yb = red - green, 0.5 * (red + green) - blue
    colourfulness = float(
        np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    )

    # Noise: the Laplacian where the picture is smooth (sensor noise; zero when rendered).
    if height >= 3 and width >= 3:
        centre = luma[1:-1, 1:-1]
        laplacian = np.abs(
            4 * centre - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
        )
        smooth = gradient[1:, 1:] < 12  # the same pixels as the Laplacian's centres
        noise = float((laplacian[smooth] >= 2).mean()) if smooth.any() else 0.0
    else:
        noise = 0.0

    bh, bw = (height // 8) * 8, (width // 8) * 8
    if bh and bw:
        block_std = luma[:bh, :bw].reshape(bh // 8, 8, bw // 8, 8).std(axis=(1, 3))
        flat_blocks = float((block_std < 1).mean())
        block_median = float(np.median(block_std)) / 255
    else:
        flat_blocks, block_median = 0.0, float(luma.std()) / 255

    return np.array(
        [
            text_coverage,
            np.log1p(len(boxes)) / 5,
            top1,
            top8,
            distinct,
            flat,
            edge_mean,
            strong,
            sharpness,
            axis_aligned,
            float(saturation.mean()),
            float(saturation.std()),
            saturated,
            hue_entropy,
            luma_entropy,
            float(luma.std()) / 255,
            float((luma > 235).mean()),
            float((luma < 20).mean()),
            colourfulness / 100,
            noise,
            flat_blocks,
            luma_peaks,
            block_median,
            soft,
            luma_levels,
        ],
        dtype=np.float32,
    )


def extract(image: pyvips.Image) -> Array:
    """The feature vector of an image (any size, bands, format)."""
    return features_from_rgb(rgb_array(image))


class ContentClassifier(OnnxComponent):
    """Photo / diagram / screenshot / art, with a confidence; never raises.

    The model is the manifest's ``[content_classifier]`` entry, found in ``models_dir``
    or the repo's ``models/`` and loaded only when its size and sha256 match."""

    model_name: ClassVar[str] = MODEL_NAME
    kind: ClassVar[str] = "content classifier"

    def __init__(
        self,
        models_dir: Path,
        *,
        manifest: Mapping[str, ModelEntry] | None = None,
        providers: Sequence[str] = CPU_ONLY,
    ) -> None:
        self.labels: tuple[str, ...] = LABELS
        self.input_name = "input"
        super().__init__(models_dir, manifest=manifest, providers=providers)

    @classmethod
    def from_file(cls, path: Path) -> ContentClassifier:
        """A model file taken as it is (training scripts, tests): no manifest entry, its
        sha256 is computed here. Missing or unreadable: unavailable, like any other."""
        try:
            entry = ModelEntry(
                name=MODEL_NAME,
                file=path.name,
                sha256=sha256_of(path),
                bytes=path.stat().st_size,
                license="unknown",
                source=str(path),
            )
        except OSError as exc:
            classifier = cls(path.parent, manifest={})
            classifier._refuse(f"model file {path} is missing or unreadable: {exc}", "missing")
            return classifier
        return cls(path.parent, manifest={MODEL_NAME: entry})

    def _accept(self, session: ort.InferenceSession) -> None:
        """The model must take our feature row and give one probability per label."""
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].shape[-1] != len(FEATURE_NAMES):
            shapes = [i.shape for i in inputs]
            raise ValueError(f"expects one input [N, {len(FEATURE_NAMES)}], got {shapes}")
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get("features") and meta["features"] != ",".join(FEATURE_NAMES):
            raise ValueError("was trained on other features (its 'features' metadata differs)")
        labels = tuple(meta["labels"].split(",")) if meta.get("labels") else LABELS
        outputs = {output.name: output.shape for output in session.get_outputs()}
        if "probabilities" not in outputs:
            raise ValueError(f"has no 'probabilities' output (outputs: {sorted(outputs)})")
        width = outputs["probabilities"][-1]
        if isinstance(width, int) and width != len(labels):
            raise ValueError(f"gives {width} probabilities for {len(labels)} labels")
        self.labels = labels
        self.input_name = inputs[0].name

    def probabilities_from_features(self, features: Array) -> dict[str, float] | None:
        if self.session is None:
            return None
        try:
            row = np.asarray(features, dtype=np.float32).reshape(1, -1)
            (output,) = self.session.run(["probabilities"], {self.input_name: row})
            values = np.asarray(output, dtype=np.float64).reshape(-1)
        except Exception as exc:  # onnxruntime raises several unrelated types
            log.warning("content classifier failed: %s", exc)
            return None
        if values.shape != (len(self.labels),) or not np.all(np.isfinite(values)):
            return None
        values = np.clip(values, 0.0, 1.0)
        total = values.sum()
        if total <= 0:
            return None
        return {label: float(v / total) for label, v in zip(self.labels, values, strict=True)}

    def probabilities(self, image: pyvips.Image) -> dict[str, float] | None:
        """Each label's probability (summing to 1), or None when the model cannot answer."""
        if self.session is None:
            return None
        try:
            features = extract(image)
        except (pyvips.Error, ValueError) as exc:
            log.warning("content features failed: %s", exc)
            return None
        return self.probabilities_from_features(features)

    def classify(self, image: pyvips.Image) -> tuple[str, float]:
        """``(label, confidence)``; ``("unknown", 0.0)`` when the model cannot answer."""
        probabilities = self.probabilities(image)
        if not probabilities:
            return UNKNOWN, 0.0
        label = max(probabilities, key=lambda name: probabilities[name])
        return label, probabilities[label]
