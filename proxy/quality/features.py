"""Cheap content features of an output-size image, for the quality predictor.

They describe what makes compression visible: edges and fine texture hide artefacts,
flat areas and sharp synthetic edges (screenshots, diagrams) expose them. Computed at
output size so the cost stays small; the training script uses this very function. The
format one-hot covers the formats table's lossy formats.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.formats import LOSSY_FORMATS
from proxy.imaging import shrink_to, to_array

FEATURE_NAMES = (
    "log_pixels",
    "luma_mean",
    "luma_std",
    "edge_mean",
    "edge_strong_fraction",
    "detail_mean",
    "chroma_std",
    "saturation_mean",
    "block_std_mean",
    "block_std_median",
    "flat_block_fraction",
    "block_edge_ratio",
)
FORMATS = LOSSY_FORMATS  # the one-hot's order is the trained models' input layout
MAX_SIDE = 256  # statistics, not pixels: a small sample keeps this at a few ms


def _array(image: pyvips.Image) -> npt.NDArray[np.float32]:
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands == 1:
        image = image.bandjoin([image, image])
    image = image.extract_band(0, n=3).cast("uchar")
    image, _ = shrink_to(image, MAX_SIDE)
    return to_array(image).astype(np.float32)


def extract(image: pyvips.Image) -> npt.NDArray[np.float32]:
    """The feature vector, in ``FEATURE_NAMES`` order."""
    pixels = image.width * image.height
    rgb = _array(image)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    grad_x = np.abs(np.diff(luma, axis=1))
    grad_y = np.abs(np.diff(luma, axis=0))
    edges = grad_x[:-1, :] + grad_y[:, :-1] if luma.shape[0] > 1 and luma.shape[1] > 1 else luma * 0
    # Detail: deviation from a 3x3 box blur (fine texture that masks artefacts).
    padded = np.pad(luma, 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    blurred = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0
    detail = np.abs(luma - blurred)
    chroma_a, chroma_b = red - green, 0.5 * (red + green) - blue
    maximum = rgb.max(axis=2)
    saturation = np.where(maximum > 0, (maximum - rgb.min(axis=2)) / np.maximum(maximum, 1), 0)
    height, width = (luma.shape[0] // 8) * 8, (luma.shape[1] // 8) * 8
    if height and width:
        blocks = luma[:height, :width].reshape(height // 8, 8, width // 8, 8)
        block_std = blocks.std(axis=(1, 3))
        # Edges on the 8-pixel grid vs. elsewhere: high for content already blocky.
        grid = grad_x[:height, 7 : width - 1 : 8].mean() if width > 8 else 0.0
        block_edge_ratio = float(grid / (grad_x[:height, : width - 1].mean() + 1e-3))
    else:
        block_std = np.array([luma.std()])
        block_edge_ratio = 1.0
    return np.array(
        [
            np.log(max(pixels, 1)),
            luma.mean() / 255,
            luma.std() / 255,
            edges.mean() / 255,
            float((edges > 48).mean()),
            detail.mean() / 255,
            float(np.sqrt(chroma_a.var() + chroma_b.var())) / 255,
            float(saturation.mean()),
            float(block_std.mean()) / 255,
            float(np.median(block_std)) / 255,
            float((block_std < 2).mean()),
            block_edge_ratio,
        ],
        dtype=np.float32,
    )


def model_input(
    features: npt.NDArray[np.float32], fmt: str, target: float
) -> npt.NDArray[np.float32]:
    """Features + one-hot format + target score: the predictor's input row."""
    onehot = np.array([1.0 if fmt == name else 0.0 for name in FORMATS], dtype=np.float32)
    return np.concatenate([features, onehot, np.array([target / 100], dtype=np.float32)])[None, :]
