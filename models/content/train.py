#!/usr/bin/env python3
"""Train the content classifier (photo / diagram / screenshot / art) and export it to ONNX.

    python3 models/content/train.py --cv                        # full run, 2-3 min on 2 cores
    python3 models/content/train.py --smoke --out /tmp/c.onnx   # tiny end-to-end run, ~10 s
    python3 models/content/train.py --model mlp --cv --metrics-json /tmp/m.json

The output is deterministic (same data, same bytes): after retraining, update the sha256
and bytes of ``[content_classifier]`` in ``models/manifest.toml``, or the classifier
refuses the file. Changing ``proxy/detectors/content.py`` or ``text.py`` changes the
features: retrain then too.

What it does, in order:

1. **Real images**: ``../shared/data`` (or ``$LOUPE_SHARED_DIR/data``, or ``--data``),
   labelled from its ``MANIFEST.md`` content types: photo/face/group/texture -> photo,
   diagram/vector -> diagram, screenshot/text -> screenshot, art -> art ("art+face" counts
   as art; the animated GIF is left out). Each image gives a few variants: the whole
   picture, random crops, colour jitter (photos), JPEG re-encodes, output sizes 256-1280.
2. **Derived art**: stylised copies of the real photos (posterised, cartoon, hatched
   engraving, pop-art, painterly) labelled art. They belong to their photo's group.
3. **Synthetic images**, drawn here with numpy and ``pyvips.Image.text`` (DejaVu fonts):
   screenshots (app UIs, documents and scanned pages, terminals, code editors,
   spreadsheets, chat and mail lists), diagrams (bar, line, scatter, pie, heatmap,
   histogram and multi-panel charts, flowcharts, network graphs, technical drawings) and
   art (abstract noise, geometric compositions, gradients, pixel art, line art, logos,
   patterns, silhouettes, watercolour). Each scene is its own group.
4. **Split by group**, never by row: about one group in five (stable hash order) is held
   out, plus the images the unit tests classify (``FORCED_HOLDOUT``), so a test never
   sees a picture the model was trained on. ``--cv`` adds a grouped 5-fold
   cross-validation on the training groups.
5. **Model**: ``proxy.detectors.content.features_from_rgb`` rows -> a small scikit-learn
   classifier (``--model``), exported with skl2onnx (input ``input`` [N, n_features];
   outputs ``label`` and ``probabilities`` [N, 4], no ZipMap), labels and feature names in
   the ONNX metadata, and checked against onnxruntime and ``ContentClassifier``.
6. **Report**: held-out accuracy, confusion matrix, accuracy by source (real, derived,
   synthetic) and every held-out real image with its prediction.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import itertools
import json
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Train this checkout's features (and the shared corpus helpers), whatever is installed.
sys.path[:0] = [str(REPO), str(HERE.parent)]

from corpus import group_of, progress, shared_data_dir  # noqa: E402

from proxy.detectors.content import (  # noqa: E402
    FEATURE_NAMES,
    LABELS,
    ContentClassifier,
    features_from_rgb,
    rgb_array,
)

DEFAULT_OUT = HERE / "content_classifier.onnx"
CLASS_OF = {
    "photo": "photo",
    "face": "photo",
    "group": "photo",
    "texture": "photo",
    "diagram": "diagram",
    "vector": "diagram",
    "screenshot": "screenshot",
    "text": "screenshot",
    "art": "art",
}
_ROW = re.compile(r"^\| ([\w.-]+/[^ |]+) \| [^|]*\|[^|]*\| ([^|]+) \|", re.MULTILINE)
# Classified by tests/detectors/test_content.py: never trained on.
FORCED_HOLDOUT = (
    "kodak/kodim03",
    "kodak/kodim21",
    "skimage/coffee",
    "generated/screenshot_ui",
    "generated/chart_matplotlib",
)
HOLDOUT_FRACTION = 0.2
PHOTO_VARIANTS = 6  # rows per real photo (the whole picture, then crops); others get 10
LOAD_SIDE = 1600  # real images are decoded at most this large before cropping
SIZES = (256, 1280)  # delivery sizes (longest side), never upscaled
SMOKE_SIZES = (200, 400)
SMOKE_REAL = (
    "kodak/kodim03.png",
    "kodak/kodim08.png",
    "skimage/coffee.png",
    "wikipedia/001.png",
    "generated/screenshot_ui.png",
    "skimage/page.png",
    "generated/chart_matplotlib.png",
    "generated/heatmap_matplotlib.png",
    "wikipedia/007.png",
    "skimage/logo.png",
)
DERIVED_STYLES = ("posterise", "cartoon", "hatching", "popart", "painterly")


# --------------------------------------------------------------------------------------
# Progress: tqdm when installed, plain lines otherwise.


# --------------------------------------------------------------------------------------
# Colours, text and noise.

_VOCABULARY_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco "
    "laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate "
    "velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident "
    "sunt culpa qui officia deserunt mollit anim id est laborum image proxy cache request "
    "response server client latency throughput settings account profile dashboard report "
    "export import upload download search filter sort status error warning success pending "
    "total average median revenue users sessions orders invoice payment customer project "
    "team meeting review release version build deploy pipeline config network storage"
)
_UI_TEXT = (
    "Home Overview Projects Settings Reports Users Billing Logs Messages Inbox Files Team "
    "Analytics Help Profile Account Security Integrations Calendar Tasks Activity Search"
)
_CODE_TEXT = (
    "def return import from class self if else for while in not and or None True False "
    "async await yield with as try except raise lambda const let var function => {} () [] "
    "print len range dict list str int float np.array config.get(key) result.append(x)"
)
VOCABULARY, UI_WORDS, CODE_WORDS = (t.split() for t in (_VOCABULARY_TEXT, _UI_TEXT, _CODE_TEXT))


def words(rng: np.random.Generator, n: int, vocabulary: Sequence[str] = VOCABULARY) -> str:
    return " ".join(str(w) for w in rng.choice(list(vocabulary), size=max(1, n)))


def sentence(rng: np.random.Generator, low: int = 5, high: int = 16) -> str:
    text = words(rng, int(rng.integers(low, high)))
    return text[0].upper() + text[1:] + "."


def paragraph(rng: np.random.Generator, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(max(1, sentences)))


def number(rng: np.random.Generator) -> str:
    kind = rng.integers(0, 4)
    if kind == 0:
        return str(int(rng.integers(0, 10_000)))
    if kind == 1:
        return f"{rng.uniform(0, 1000):.2f}"
    if kind == 2:
        return f"{rng.uniform(0, 100):.1f}%"
    return f"${rng.uniform(0, 99_999):,.0f}"


def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    """HSV (0-1 each) to RGB 0-255."""
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return (r * 255, g * 255, b * 255)


def palette(
    rng: np.random.Generator,
    n: int,
    saturation: tuple[float, float] = (0.4, 0.9),
    value: tuple[float, float] = (0.5, 0.95),
) -> list[tuple[float, float, float]]:
    """``n`` colours: evenly spread hues (like a chart palette) or an analogous family."""
    base = rng.random()
    if rng.random() < 0.6:
        hues = [(base + i / n) % 1 for i in range(n)]
    else:
        hues = [(base + rng.uniform(-0.12, 0.12)) % 1 for _ in range(n)]
    return [hsv(h, rng.uniform(*saturation), rng.uniform(*value)) for h in hues]


def smooth_noise(rng: np.random.Generator, width: int, height: int, cell: float) -> np.ndarray:
    """Value noise in about [0, 1]: a random grid upsampled with a cubic kernel."""
    cell = max(2.0, cell)
    grid_w, grid_h = int(width / cell) + 3, int(height / cell) + 3
    grid = rng.random((grid_h, grid_w)).astype(np.float32)
    image = pyvips.Image.new_from_array(grid).resize(cell, kernel="cubic")
    out: np.ndarray = image.numpy()[:height, :width]
    if out.shape != (height, width):
        out = np.pad(out, ((0, height - out.shape[0]), (0, width - out.shape[1])), mode="edge")
    return out


def fractal_noise(
    rng: np.random.Generator, width: int, height: int, cell: float, octaves: int = 4
) -> np.ndarray:
    total = np.zeros((height, width), np.float32)
    amplitude, weight = 1.0, 0.0
    for _ in range(octaves):
        total += amplitude * smooth_noise(rng, width, height, cell)
        weight += amplitude
        amplitude *= 0.5
        cell /= 2
    total /= weight
    low, high = np.percentile(total, 1), np.percentile(total, 99)
    result: np.ndarray = np.clip((total - low) / max(high - low, 1e-6), 0, 1)
    return result


def gradient_map(values: np.ndarray, colours: Sequence[Sequence[float]]) -> np.ndarray:
    """Map 0-1 values through a colour ramp."""
    stops = np.linspace(0, 1, len(colours))
    table = np.asarray(colours, np.float32)
    channels = [np.interp(values, stops, table[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.float32)


def colormap(name: str) -> list[tuple[float, float, float]]:
    maps = {
        "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
        "magma": [(0, 0, 4), (81, 18, 124), (183, 55, 121), (252, 137, 97), (252, 253, 191)],
        "coolwarm": [
            (59, 76, 192),
            (141, 176, 254),
            (221, 221, 221),
            (244, 154, 123),
            (180, 4, 38),
        ],
        "blues": [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)],
        "rdylgn": [(215, 48, 39), (252, 141, 89), (255, 255, 191), (145, 207, 96), (26, 152, 80)],
    }
    return maps[name]


# --------------------------------------------------------------------------------------
# A small anti-aliased raster canvas (numpy), with text from pyvips/Pango.


class Canvas:
    def __init__(self, width: int, height: int, background: Sequence[float]) -> None:
        self.width, self.height = int(width), int(height)
        self.px = np.empty((self.height, self.width, 3), np.float32)
        self.px[:] = np.asarray(background, np.float32)

    def _blend(self, x0: int, y0: int, cover: np.ndarray, colour: Sequence[float]) -> None:
        """Blend ``colour`` with coverage ``cover`` (0-1) placed at (x0, y0)."""
        h, w = cover.shape
        a0, b0 = max(0, x0), max(0, y0)
        a1, b1 = min(self.width, x0 + w), min(self.height, y0 + h)
        if a1 <= a0 or b1 <= b0:
            return
        part = cover[b0 - y0 : b1 - y0, a0 - x0 : a1 - x0, None]
        region = self.px[b0:b1, a0:a1]
        region += (np.asarray(colour[:3], np.float32) - region) * part

    def _grid(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, Any, Any]:
        a0, b0 = (math.floor(x0)) - 1, (math.floor(y0)) - 1
        a1, b1 = (math.ceil(x1)) + 2, (math.ceil(y1)) + 2
        yy, xx = np.mgrid[b0:b1, a0:a1].astype(np.float32)
        return a0, b0, xx + 0.5, yy + 0.5

    def rect(
        self, x: float, y: float, w: float, h: float, colour: Sequence[float], alpha: float = 1.0
    ) -> None:
        a0, b0 = max(0, round(x)), max(0, round(y))
        a1, b1 = min(self.width, round(x + w)), min(self.height, round(y + h))
        if a1 > a0 and b1 > b0:
            region = self.px[b0:b1, a0:a1]
            region += (np.asarray(colour[:3], np.float32) - region) * alpha

    def frame(
        self, x: float, y: float, w: float, h: float, colour: Sequence[float], width: float = 1
    ) -> None:
        self.rect(x, y, w, width, colour)
        self.rect(x, y + h - width, w, width, colour)
        self.rect(x, y, width, h, colour)
        self.rect(x + w - width, y, width, h, colour)

    def circle(
        self,
        cx: float,
        cy: float,
        r: float,
        colour: Sequence[float],
        ring: float = 0.0,
        alpha: float = 1.0,
    ) -> None:
        a0, b0, xx, yy = self._grid(cx - r - ring, cy - r - ring, cx + r + ring, cy + r + ring)
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        if ring > 0:
            cover = np.clip(ring / 2 + 0.5 - np.abs(dist - r), 0, 1)
        else:
            cover = np.clip(r + 0.5 - dist, 0, 1)
        self._blend(a0, b0, cover * alpha, colour)

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        colour: Sequence[float],
        alpha: float = 1.0,
    ) -> None:
        a0, b0, xx, yy = self._grid(cx - rx, cy - ry, cx + rx, cy + ry)
        d = np.sqrt(((xx - cx) / max(rx, 0.5)) ** 2 + ((yy - cy) / max(ry, 0.5)) ** 2)
        cover = np.clip((1 - d) * min(rx, ry) + 0.5, 0, 1)
        self._blend(a0, b0, cover * alpha, colour)

    def line(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        colour: Sequence[float],
        width: float = 1.0,
        alpha: float = 1.0,
    ) -> None:
        pad = width / 2 + 1
        a0, b0, xx, yy = self._grid(
            min(x0, x1) - pad, min(y0, y1) - pad, max(x0, x1) + pad, max(y0, y1) + pad
        )
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        if length2 < 1e-9:
            t = np.zeros_like(xx)
        else:
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / length2, 0, 1)
        dist = np.sqrt((xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2)
        self._blend(a0, b0, np.clip(width / 2 + 0.5 - dist, 0, 1) * alpha, colour)

    def polyline(
        self, points: Sequence[tuple[float, float]], colour: Sequence[float], width: float = 1.0
    ) -> None:
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            self.line(x0, y0, x1, y1, colour, width)

    def polygon(
        self, points: Sequence[tuple[float, float]], colour: Sequence[float], alpha: float = 1.0
    ) -> None:
        """A convex polygon (triangles, diamonds, arrow heads, hexagons)."""
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        a0, b0, xx, yy = self._grid(min(xs), min(ys), max(xs), max(ys))
        area = sum(
            x0 * y1 - x1 * y0
            for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True)
        )
        sign = 1.0 if area > 0 else -1.0
        inside = np.full(xx.shape, np.inf, np.float32)
        for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True):
            nx, ny = -(y1 - y0), x1 - x0
            norm = math.hypot(nx, ny) or 1.0
            d = sign * ((xx - x0) * nx + (yy - y0) * ny) / norm
            inside = np.minimum(inside, d)
        self._blend(a0, b0, np.clip(inside + 0.5, 0, 1) * alpha, colour)

    def wedge(
        self,
        cx: float,
        cy: float,
        r: float,
        start: float,
        span: float,
        colour: Sequence[float],
        inner: float = 0.0,
    ) -> None:
        a0, b0, xx, yy = self._grid(cx - r, cy - r, cx + r, cy + r)
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        rel = (np.arctan2(yy - cy, xx - cx) - start) % (2 * np.pi)
        angular = (
            np.where(
                rel <= span, np.minimum(rel, span - rel), -np.minimum(rel - span, 2 * np.pi - rel)
            )
            * dist
        )
        cover = np.clip(r + 0.5 - dist, 0, 1) * np.clip(angular + 0.5, 0, 1)
        if inner > 0:
            cover *= np.clip(dist - inner + 0.5, 0, 1)
        self._blend(a0, b0, cover, colour)

    def arrow(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        colour: Sequence[float],
        width: float = 1.5,
        head: float = 9.0,
    ) -> None:
        angle = math.atan2(y1 - y0, x1 - x0)
        bx, by = x1 - head * math.cos(angle), y1 - head * math.sin(angle)
        self.line(x0, y0, bx, by, colour, width)
        side = head * 0.5
        self.polygon(
            [
                (x1, y1),
                (bx + side * math.sin(angle), by - side * math.cos(angle)),
                (bx - side * math.sin(angle), by + side * math.cos(angle)),
            ],
            colour,
        )

    def text(
        self,
        x: float,
        y: float,
        content: str,
        size: float,
        colour: Sequence[float],
        font: str = "sans",
        bold: bool = False,
        italic: bool = False,
        wrap: float | None = None,
        justify: bool = False,
        anchor: tuple[float, float] = (0, 0),
        rotate: bool = False,
        spacing: float | None = None,
    ) -> tuple[int, int]:
        """Draw text with its ``anchor`` (fractions of its box) at (x, y); its size."""
        spec = f"{font}{' bold' if bold else ''}{' italic' if italic else ''} {max(4.0, size):.1f}"
        options: dict[str, Any] = {"font": spec, "dpi": 72}
        if wrap:
            options.update(width=max(8, int(wrap)), justify=justify)
        if spacing:
            options["spacing"] = int(spacing)
        try:
            mask = pyvips.Image.text(html.escape(content) or " ", **options)
        except pyvips.Error:
            return (0, 0)
        cover = mask.numpy().astype(np.float32) / 255.0
        if cover.ndim == 3:
            cover = cover[..., 0]
        if rotate:
            cover = np.rot90(cover)
        h, w = cover.shape
        left, top = round(x - anchor[0] * w), round(y - anchor[1] * h)
        self._blend(left, top, cover, colour)
        return (w, h)

    def paste(self, x: int, y: int, pixels: np.ndarray) -> None:
        h, w = pixels.shape[:2]
        a0, b0 = max(0, x), max(0, y)
        a1, b1 = min(self.width, x + w), min(self.height, y + h)
        if a1 > a0 and b1 > b0:
            self.px[b0:b1, a0:a1] = pixels[b0 - y : b1 - y, a0 - x : a1 - x, :3]

    def noise(self, rng: np.random.Generator, sigma: float) -> None:
        self.px += rng.normal(0, sigma, self.px.shape).astype(np.float32)

    def result(self) -> np.ndarray:
        return np.clip(np.rint(self.px), 0, 255).astype(np.uint8)


def photo_like(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A blurry, photo-ish placeholder (for thumbnails inside UIs): no real photo leaks."""
    base = fractal_noise(rng, width, height, max(width, height) / rng.uniform(1.5, 4), 4)
    colours = palette(rng, 3, (0.2, 0.7), (0.25, 0.95))
    sky = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    pixels = gradient_map(np.clip(0.6 * base + 0.4 * sky, 0, 1), colours)
    return pixels + rng.normal(0, 3, pixels.shape).astype(np.float32)


# --------------------------------------------------------------------------------------
# Synthetic screenshots (UIs, documents, terminals, editors, sheets, chats, lists).


def _theme(rng: np.random.Generator) -> dict[str, Any]:
    dark = rng.random() < 0.3
    accent = hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.55, 0.9))
    if dark:
        bg = tuple(float(v) for v in rng.uniform(18, 45, 3))
        return {
            "bg": bg,
            "panel": tuple(v + 12 for v in bg),
            "text": (225, 228, 232),
            "muted": (150, 155, 165),
            "line": tuple(v + 25 for v in bg),
            "accent": accent,
            "dark": True,
        }
    bg = tuple(float(v) for v in rng.uniform(238, 255, 3))
    return {
        "bg": bg,
        "panel": tuple(v - 10 for v in bg),
        "text": tuple(rng.uniform(15, 60, 3)),
        "muted": (110, 115, 125),
        "line": (215, 218, 224),
        "accent": accent,
        "dark": False,
    }


def _screen_size(rng: np.random.Generator) -> tuple[int, int]:
    sizes = [
        (1280, 800),
        (1440, 900),
        (1366, 768),
        (1024, 768),
        (1600, 1000),
        (1920, 1080),
        (1200, 900),
    ]
    return sizes[int(rng.integers(0, len(sizes)))]


def gen_ui_app(rng: np.random.Generator) -> np.ndarray:
    width, height = _screen_size(rng)
    t = _theme(rng)
    c = Canvas(width, height, t["bg"])
    font = str(rng.choice(["sans", "DejaVu Sans Condensed", "sans", "serif"]))
    base = float(rng.uniform(11, 16))
    header = int(rng.integers(40, 66))
    header_colour = t["accent"] if rng.random() < 0.4 else t["panel"]
    c.rect(0, 0, width, header, header_colour)
    ink = (255, 255, 255) if header_colour == t["accent"] or t["dark"] else t["text"]
    c.text(16, header / 2, words(rng, 2).title(), base * 1.3, ink, font, bold=True, anchor=(0, 0.5))
    x = width * 0.35
    for _ in range(int(rng.integers(0, 5))):
        w, _ = c.text(x, header / 2, str(rng.choice(UI_WORDS)), base, ink, font, anchor=(0, 0.5))
        x += w + 24
    left = 0
    if rng.random() < 0.75:
        left = int(rng.integers(160, 280))
        c.rect(0, header, left, height - header, t["panel"])
        y = header + 20
        chosen = int(rng.integers(0, 6))
        for i in range(int(rng.integers(5, 14))):
            if i == chosen:
                c.rect(8, y - 6, left - 16, base * 2, t["accent"], 0.25)
            c.text(20, y, str(rng.choice(UI_WORDS)), base, t["text"], font)
            y += base * 2.4
    x0, y = left + 24, header + 24
    columns = int(rng.integers(1, 3))
    col_w = (width - x0 - 24 * columns) / columns
    for col in range(columns):
        cx, y = x0 + col * (col_w + 24), header + 24
        while y < height - 60:
            kind = rng.choice(["heading", "cards", "table", "form", "code", "image", "buttons"])
            if kind == "heading":
                _, h = c.text(cx, y, sentence(rng, 2, 5)[:-1], base * 1.5, t["text"], font, True)
                y += h + 6
                _, h = c.text(
                    cx,
                    y,
                    paragraph(rng, int(rng.integers(1, 4))),
                    base,
                    t["muted"],
                    font,
                    wrap=col_w,
                    justify=bool(rng.random() < 0.3),
                )
                y += h + 18
            elif kind == "cards":
                n = int(rng.integers(2, 5))
                cw = (col_w - 16 * (n - 1)) / n
                ch = float(rng.uniform(80, 160))
                for i in range(n):
                    bx = cx + i * (cw + 16)
                    c.rect(bx, y, cw, ch, t["panel"])
                    c.frame(bx, y, cw, ch, t["line"])
                    c.text(bx + 12, y + 12, str(rng.choice(UI_WORDS)), base, t["muted"], font)
                    c.text(
                        bx + 12,
                        y + 12 + base * 1.8,
                        number(rng),
                        base * 2,
                        t["text"],
                        font,
                        bold=True,
                    )
                y += ch + 20
            elif kind == "table":
                rows, cols = int(rng.integers(4, 12)), int(rng.integers(3, 6))
                rh, cw = base * 2.2, col_w / cols
                for r in range(rows):
                    if r == 0:
                        c.rect(cx, y, col_w, rh, t["panel"])
                    elif r % 2 == 0 and rng.random() < 0.5:
                        c.rect(cx, y, col_w, rh, t["panel"], 0.5)
                    for k in range(cols):
                        label = str(rng.choice(UI_WORDS)) if r == 0 or k == 0 else number(rng)
                        c.text(
                            cx + k * cw + 8,
                            y + rh / 2,
                            label,
                            base * 0.95,
                            t["text"],
                            font,
                            bold=r == 0,
                            anchor=(0, 0.5),
                        )
                    c.rect(cx, y + rh - 1, col_w, 1, t["line"])
                    y += rh
                y += 20
            elif kind == "form":
                for _ in range(int(rng.integers(2, 5))):
                    c.text(cx, y, str(rng.choice(UI_WORDS)), base, t["text"], font)
                    y += base * 1.6
                    c.rect(cx, y, min(col_w, 420), base * 2.4, t["bg"])
                    c.frame(cx, y, min(col_w, 420), base * 2.4, t["line"])
                    c.text(
                        cx + 8,
                        y + base * 1.2,
                        words(rng, 2),
                        base,
                        t["muted"],
                        font,
                        anchor=(0, 0.5),
                    )
                    y += base * 3.4
            elif kind == "code":
                lines = int(rng.integers(3, 10))
                ch = lines * base * 1.5 + 20
                c.rect(cx, y, col_w, ch, (30, 33, 40) if not t["dark"] else (10, 12, 16))
                for i in range(lines):
                    c.text(
                        cx + 12,
                        y + 10 + i * base * 1.5,
                        words(rng, int(rng.integers(2, 7)), CODE_WORDS),
                        base * 0.9,
                        (200, 210, 220),
                        "monospace",
                    )
                y += ch + 20
            elif kind == "image":
                iw, ih = int(min(col_w, rng.uniform(200, 500))), int(rng.uniform(100, 260))
                c.paste(int(cx), int(y), photo_like(rng, iw, ih))
                y += ih + 20
            else:
                bx = cx
                for _ in range(int(rng.integers(1, 4))):
                    label = str(rng.choice(UI_WORDS))
                    bw = len(label) * base * 0.7 + 32
                    c.rect(bx, y, bw, base * 2.5, t["accent"])
                    c.text(
                        bx + bw / 2,
                        y + base * 1.25,
                        label,
                        base,
                        (255, 255, 255),
                        font,
                        bold=True,
                        anchor=(0.5, 0.5),
                    )
                    bx += bw + 12
                y += base * 2.5 + 20
    return c.result()


def gen_document(rng: np.random.Generator) -> np.ndarray:
    """A text page: article, paper or scanned sheet (the manifest's "text")."""
    portrait = rng.random() < 0.7
    width = int(rng.uniform(700, 1100))
    height = int(width * (rng.uniform(1.25, 1.45) if portrait else rng.uniform(0.55, 0.8)))
    paper = (255, 255, 255) if rng.random() < 0.6 else tuple(rng.uniform(225, 250, 3))
    c = Canvas(width, height, paper)
    font = str(rng.choice(["serif", "sans", "DejaVu Serif Condensed", "DejaVu Sans Condensed"]))
    size = float(rng.uniform(11, 20))
    ink = tuple(rng.uniform(0, 50, 3))
    margin = width * rng.uniform(0.05, 0.12)
    columns = 2 if rng.random() < 0.25 else 1
    col_w = (width - 2 * margin - 20 * (columns - 1)) / columns
    y = margin
    _, h = c.text(
        margin,
        y,
        sentence(rng, 3, 8)[:-1],
        size * 1.8,
        ink,
        font,
        bold=True,
        wrap=width - 2 * margin,
    )
    y += h + size
    for col in range(columns):
        x, yy = margin + col * (col_w + 20), y
        while yy < height - margin - size * 3:
            if rng.random() < 0.15:
                _, h = c.text(x, yy, sentence(rng, 2, 5)[:-1], size * 1.25, ink, font, bold=True)
                yy += h + size * 0.5
            elif rng.random() < 0.15:
                for _ in range(int(rng.integers(2, 5))):
                    c.circle(x + size * 0.6, yy + size * 0.7, size * 0.18, ink)
                    _, h = c.text(
                        x + size * 1.5, yy, sentence(rng), size, ink, font, wrap=col_w - size * 1.5
                    )
                    yy += h + size * 0.3
            else:
                _, h = c.text(
                    x,
                    yy,
                    paragraph(rng, int(rng.integers(2, 6))),
                    size,
                    ink,
                    font,
                    wrap=col_w,
                    justify=bool(rng.random() < 0.6),
                )
                yy += h + size * 0.8
    pixels = c.result().astype(np.float32)
    if rng.random() < 0.4:  # scanned or photographed: uneven light, blur, noise
        light = 1 - rng.uniform(0.1, 0.45) * fractal_noise(rng, width, height, width / 2, 2)
        pixels = pixels * light[..., None]
        image = pyvips.Image.new_from_array(pixels).gaussblur(rng.uniform(0.4, 1.2))
        pixels = image.numpy() + rng.normal(0, rng.uniform(2, 7), pixels.shape)
        if rng.random() < 0.5:
            pixels = np.repeat(pixels.mean(axis=2, keepdims=True), 3, axis=2)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def gen_terminal(rng: np.random.Generator) -> np.ndarray:
    width, height = _screen_size(rng)
    bg = tuple(rng.uniform(0, 40, 3))
    c = Canvas(width, height, bg)
    size = float(rng.uniform(11, 17))
    bar = 0
    if rng.random() < 0.6:
        bar = 28
        c.rect(0, 0, width, bar, (60, 62, 66))
        for i, colour in enumerate([(255, 95, 86), (255, 189, 46), (39, 201, 63)]):
            c.circle(16 + i * 20, 14, 6, colour)
    colours = [
        (220, 220, 220),
        (120, 220, 120),
        (110, 170, 255),
        (230, 200, 110),
        (170, 170, 170),
        (240, 110, 110),
    ]
    y = bar + 8
    while y < height - size * 2:
        if rng.random() < 0.25:
            w, _ = c.text(8, y, "user@host:~/project$ ", size, colours[1], "monospace")
            c.text(
                8 + w,
                y,
                words(rng, int(rng.integers(1, 5)), CODE_WORDS),
                size,
                colours[0],
                "monospace",
            )
        else:
            colour = colours[int(rng.integers(0, len(colours)))]
            parts = [words(rng, int(rng.integers(1, 10)), VOCABULARY + CODE_WORDS), number(rng)]
            c.text(8, y, " ".join(parts), size, colour, "monospace")
        y += size * 1.45
    return c.result()


def gen_code_editor(rng: np.random.Generator) -> np.ndarray:
    width, height = _screen_size(rng)
    t = _theme(rng)
    c = Canvas(width, height, t["bg"])
    size = float(rng.uniform(11, 16))
    tree = int(rng.integers(180, 300))
    c.rect(0, 0, tree, height, t["panel"])
    y = 12.0
    for _ in range(int(height / (size * 1.8))):
        depth = int(rng.integers(0, 3))
        c.text(
            12 + depth * 14,
            y,
            words(rng, 1) + str(rng.choice([".py", ".ts", ".md", ""])),
            size * 0.95,
            t["muted"],
        )
        y += size * 1.8
    c.rect(tree, 0, width - tree, 34, t["panel"])
    for i in range(int(rng.integers(1, 5))):
        c.text(
            tree + 16 + i * 150, 17, words(rng, 1) + ".py", size * 0.9, t["text"], anchor=(0, 0.5)
        )
    palette_code = [
        t["text"],
        hsv(0.6, 0.6, 0.9),
        hsv(0.08, 0.7, 0.9),
        hsv(0.33, 0.5, 0.75),
        hsv(0.85, 0.5, 0.85),
        t["muted"],
    ]
    y, line = 44.0, 1
    while y < height - size:
        c.text(tree + 40, y, str(line), size, t["muted"], "monospace", anchor=(1, 0))
        x = tree + 56 + 4 * size * int(rng.integers(0, 4))
        for _ in range(int(rng.integers(0, 7))):
            token = str(rng.choice(CODE_WORDS + VOCABULARY[:30]))
            colour = palette_code[int(rng.integers(0, len(palette_code)))]
            w, _ = c.text(x, y, token, size, colour, "monospace")
            x += w + size * 0.6
        y += size * 1.5
        line += 1
    return c.result()


def gen_spreadsheet(rng: np.random.Generator) -> np.ndarray:
    width, height = _screen_size(rng)
    c = Canvas(width, height, (255, 255, 255))
    size = float(rng.uniform(10, 14))
    top = 60
    c.rect(0, 0, width, top, (240, 242, 245))
    c.text(12, 20, words(rng, 2).title() + ".xlsx", size * 1.2, (40, 40, 40))
    cw, rh, head = float(rng.uniform(70, 130)), size * 2, 40.0
    grid = (208, 212, 218)
    c.rect(0, top, width, rh, (235, 237, 240))
    c.rect(0, top, head, height, (235, 237, 240))
    for k in range(int(width / cw) + 1):
        x = head + k * cw
        c.rect(x, top, 1, height, grid)
        c.text(x + cw / 2, top + rh / 2, chr(65 + k % 26), size, (80, 80, 80), anchor=(0.5, 0.5))
    fill_cols = int(rng.integers(2, int(width / cw)))
    for r in range(int((height - top) / rh)):
        y = top + (r + 1) * rh
        c.rect(0, y, width, 1, grid)
        c.text(head / 2, y + rh / 2, str(r + 1), size * 0.9, (80, 80, 80), anchor=(0.5, 0.5))
        for k in range(fill_cols):
            if rng.random() < 0.8:
                value = str(rng.choice(UI_WORDS)) if k == 0 else number(rng)
                c.text(
                    head + (k + 1) * cw - 6, y + rh / 2, value, size, (30, 30, 30), anchor=(1, 0.5)
                )
    sel_r, sel_c = int(rng.integers(0, 10)), int(rng.integers(0, fill_cols))
    c.frame(head + sel_c * cw, top + (sel_r + 1) * rh, cw, rh, (30, 115, 230), 2)
    return c.result()


def gen_chat(rng: np.random.Generator) -> np.ndarray:
    width = int(rng.choice([390, 414, 720, 780, 1080]))
    height = int(width * rng.uniform(1.8, 2.2))
    scale = width / 390
    t = _theme(rng)
    c = Canvas(width, height, t["bg"])
    size = 15 * scale
    c.rect(0, 0, width, 90 * scale, t["panel"])
    c.text(
        width / 2,
        60 * scale,
        words(rng, 2).title(),
        size * 1.1,
        t["text"],
        bold=True,
        anchor=(0.5, 0.5),
    )
    c.text(16 * scale, 16 * scale, "9:41", size * 0.9, t["text"], bold=True)
    y = 110 * scale
    other = t["panel"] if not t["dark"] else (58, 58, 64)
    while y < height - 120 * scale:
        mine = rng.random() < 0.5
        text = sentence(rng, 2, 18)
        wrap = width * 0.65
        probe = Canvas(1, 1, (0, 0, 0))
        w, h = probe.text(0, 0, text, size, (0, 0, 0), wrap=wrap)
        bw, bh = w + 24 * scale, h + 16 * scale
        bx = width - bw - 12 * scale if mine else 12 * scale
        colour = t["accent"] if mine else other
        c.rect(bx, y, bw, bh, colour)
        c.circle(bx + 4, y + 4, 4, colour)
        ink = (255, 255, 255) if mine else t["text"]
        c.text(bx + 12 * scale, y + 8 * scale, text, size, ink, wrap=wrap)
        y += bh + 10 * scale
    c.rect(0, height - 80 * scale, width, 80 * scale, t["panel"])
    c.rect(12 * scale, height - 64 * scale, width - 24 * scale, 40 * scale, t["bg"])
    return c.result()


def gen_list(rng: np.random.Generator) -> np.ndarray:
    width, height = _screen_size(rng)
    if rng.random() < 0.3:
        width, height = height * 9 // 16, height
    t = _theme(rng)
    c = Canvas(width, height, t["bg"])
    size = float(rng.uniform(12, 16))
    c.rect(0, 0, width, 56, t["panel"])
    c.text(20, 28, str(rng.choice(UI_WORDS)), size * 1.4, t["text"], bold=True, anchor=(0, 0.5))
    c.rect(width * 0.4, 12, width * 0.4, 32, t["bg"])
    c.text(width * 0.4 + 12, 28, "Search", size, t["muted"], anchor=(0, 0.5))
    y = 64.0
    row = size * rng.uniform(4, 5.5)
    while y < height - row:
        colour = hsv(rng.random(), 0.5, 0.8)
        c.circle(36, y + row / 2, row * 0.28, colour)
        c.text(
            36,
            y + row / 2,
            words(rng, 1)[:1].upper(),
            size,
            (255, 255, 255),
            bold=True,
            anchor=(0.5, 0.5),
        )
        c.text(72, y + row * 0.22, words(rng, 2).title(), size, t["text"], bold=True)
        c.text(72, y + row * 0.55, sentence(rng, 4, 12), size * 0.9, t["muted"])
        c.text(
            width - 16,
            y + row * 0.22,
            f"{int(rng.integers(1, 12))}:{int(rng.integers(10, 60))}",
            size * 0.85,
            t["muted"],
            anchor=(1, 0),
        )
        c.rect(72, y + row - 1, width - 72, 1, t["line"])
        y += row
    return c.result()


# --------------------------------------------------------------------------------------
# Synthetic diagrams.


def _chart_style(rng: np.random.Generator) -> dict[str, Any]:
    bg = (255, 255, 255) if rng.random() < 0.8 else (234, 234, 242)
    return {
        "bg": bg,
        "plot": bg if rng.random() < 0.7 else (229, 229, 240),
        "ink": tuple(rng.uniform(0, 60, 3)),
        "grid": bool(rng.random() < 0.5),
        "font": str(rng.choice(["sans", "DejaVu Sans Condensed", "serif"])),
        "size": float(rng.uniform(10, 16)),
        "colours": palette(rng, 8, (0.45, 0.85), (0.6, 0.95)),
    }


def _axes(
    c: Canvas,
    rng: np.random.Generator,
    s: dict[str, Any],
    box: tuple[float, ...],
    xlabels: Sequence[str] | None = None,
    ymax: float = 1.0,
) -> None:
    """Frame, ticks, tick labels, title and axis labels of one panel."""
    x0, y0, x1, y1 = box
    c.rect(x0, y0, x1 - x0, y1 - y0, s["plot"])
    ticks = int(rng.integers(4, 8))
    for i in range(ticks + 1):
        y = y1 - (y1 - y0) * i / ticks
        if s["grid"]:
            c.rect(x0, y, x1 - x0, 1, (200, 200, 205) if s["plot"] == s["bg"] else (255,) * 3)
        c.rect(x0 - 5, y, 5, 1, s["ink"])
        c.text(
            x0 - 8,
            y,
            f"{ymax * i / ticks:.{int(rng.integers(0, 3))}f}",
            s["size"] * 0.85,
            s["ink"],
            s["font"],
            anchor=(1, 0.5),
        )
    labels = xlabels or [f"{v:g}" for v in np.linspace(0, float(rng.choice([1, 10, 100])), 6)]
    for i, label in enumerate(labels):
        x = x0 + (x1 - x0) * (i + 0.5 if xlabels else i) / (len(labels) - (0 if xlabels else 1))
        c.rect(x, y1, 1, 5, s["ink"])
        c.text(x, y1 + 8, label, s["size"] * 0.85, s["ink"], s["font"], anchor=(0.5, 0))
    c.rect(x0, y0, 1, y1 - y0, s["ink"])
    c.rect(x0, y1, x1 - x0, 1, s["ink"])
    if rng.random() < 0.5:
        c.frame(x0, y0, x1 - x0, y1 - y0 + 1, s["ink"])
    c.text(
        (x0 + x1) / 2,
        y0 - 10,
        sentence(rng, 2, 5)[:-1],
        s["size"] * 1.15,
        s["ink"],
        s["font"],
        anchor=(0.5, 1),
    )
    if rng.random() < 0.6:
        c.text(
            (x0 + x1) / 2,
            y1 + 14 + s["size"] * 1.4,
            words(rng, 2),
            s["size"],
            s["ink"],
            s["font"],
            anchor=(0.5, 0),
        )
        c.text(
            x0 - 50 - s["size"] * 2,
            (y0 + y1) / 2,
            words(rng, 2),
            s["size"],
            s["ink"],
            s["font"],
            anchor=(0.5, 0.5),
            rotate=True,
        )


def _legend(
    c: Canvas, s: dict[str, Any], x: float, y: float, n: int, rng: np.random.Generator
) -> None:
    c.rect(x - 8, y - 6, 130, n * s["size"] * 1.6 + 10, s["bg"])
    c.frame(x - 8, y - 6, 130, n * s["size"] * 1.6 + 10, (200, 200, 200))
    for i in range(n):
        yy = y + i * s["size"] * 1.6
        c.rect(x, yy + s["size"] * 0.3, s["size"] * 1.5, s["size"] * 0.6, s["colours"][i])
        c.text(x + s["size"] * 2, yy, words(rng, 1), s["size"] * 0.9, s["ink"], s["font"])


def _panels(rng: np.random.Generator) -> tuple[Canvas, dict[str, Any], list[tuple[float, ...]]]:
    width = int(rng.uniform(600, 1300))
    height = int(width * rng.uniform(0.55, 0.9))
    s = _chart_style(rng)
    c = Canvas(width, height, s["bg"])
    n = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
    boxes = []
    pad_l, pad_b = 60 + s["size"] * 3, 40 + s["size"] * 2.5
    panel_w = width / n
    for i in range(n):
        boxes.append((i * panel_w + pad_l, 50.0, (i + 1) * panel_w - 20, height - pad_b))
    return c, s, boxes


def gen_bar_chart(rng: np.random.Generator) -> np.ndarray:
    c, s, boxes = _panels(rng)
    for box in boxes:
        x0, y0, x1, y1 = box
        groups, series = int(rng.integers(3, 13)), int(rng.integers(1, 4))
        labels = [f"Q{i + 1}" if rng.random() < 0.5 else words(rng, 1)[:6] for i in range(groups)]
        _axes(c, rng, s, box, labels, float(rng.choice([1, 10, 100, 1000])))
        slot = (x1 - x0) / groups
        bar = slot * rng.uniform(0.5, 0.85) / series
        for g in range(groups):
            for k in range(series):
                value = rng.uniform(0.05, 0.95)
                bx = x0 + g * slot + (slot - bar * series) / 2 + k * bar
                c.rect(bx, y1 - value * (y1 - y0), bar - 1, value * (y1 - y0), s["colours"][k])
        if series > 1:
            _legend(c, s, x1 - 125, y0 + 10, series, rng)
    return c.result()


def gen_line_chart(rng: np.random.Generator) -> np.ndarray:
    c, s, boxes = _panels(rng)
    for box in boxes:
        x0, y0, x1, y1 = box
        _axes(c, rng, s, box, None, float(rng.choice([1, 5, 100])))
        series = int(rng.integers(1, 6))
        n = int(rng.integers(8, 120))
        xs = np.linspace(x0, x1, n)
        markers = rng.random() < 0.3
        for k in range(series):
            if rng.random() < 0.5:
                ys = np.cumsum(rng.normal(0, 1, n))
            else:
                ys = np.sin(np.linspace(0, rng.uniform(2, 12), n) + rng.uniform(0, 6)) * np.exp(
                    -np.linspace(0, rng.uniform(0, 2), n)
                )
            ys = (ys - ys.min()) / max(float(np.ptp(ys)), 1e-6)
            ys = y1 - (0.05 + 0.9 * ys) * (y1 - y0)
            if rng.random() < 0.15:
                for i in range(n - 1):
                    c.rect(xs[i], ys[i], xs[i + 1] - xs[i] + 1, y1 - ys[i], s["colours"][k], 0.3)
            c.polyline(
                list(zip(xs.tolist(), ys.tolist(), strict=True)),
                s["colours"][k],
                float(rng.uniform(1.2, 3)),
            )
            if markers:
                for x, y in zip(xs[::2], ys[::2], strict=True):
                    c.circle(float(x), float(y), 3.5, s["colours"][k])
        if series > 1 and rng.random() < 0.8:
            _legend(c, s, x1 - 125, y0 + 10, series, rng)
    return c.result()


def gen_scatter(rng: np.random.Generator) -> np.ndarray:
    c, s, boxes = _panels(rng)
    for box in boxes:
        x0, y0, x1, y1 = box
        _axes(c, rng, s, box, None, float(rng.choice([1, 10, 50])))
        clusters = int(rng.integers(1, 5))
        radius = float(rng.uniform(2, 6))
        for k in range(clusters):
            centre = rng.uniform(0.2, 0.8, 2)
            points = rng.normal(centre, rng.uniform(0.04, 0.15), (int(rng.integers(20, 200)), 2))
            for px, py in np.clip(points, 0.02, 0.98):
                c.circle(
                    x0 + px * (x1 - x0),
                    y1 - py * (y1 - y0),
                    radius,
                    s["colours"][k],
                    alpha=float(rng.choice([1.0, 0.6])),
                )
        if clusters > 1:
            _legend(c, s, x1 - 125, y0 + 10, clusters, rng)
    return c.result()


def gen_pie(rng: np.random.Generator) -> np.ndarray:
    width = int(rng.uniform(500, 1100))
    height = int(width * rng.uniform(0.6, 0.9))
    s = _chart_style(rng)
    c = Canvas(width, height, s["bg"])
    n = int(rng.integers(3, 8))
    shares = rng.dirichlet(np.ones(n) * 2)
    r = min(width * 0.3, height * 0.38)
    cx, cy = width * 0.38, height * 0.55
    inner = r * rng.uniform(0.4, 0.65) if rng.random() < 0.4 else 0.0
    start = -np.pi / 2
    for i, share in enumerate(shares):
        span = float(share) * 2 * np.pi
        c.wedge(cx, cy, r, start, span, s["colours"][i], inner)
        mid = start + span / 2
        c.text(
            cx + (r + 18) * math.cos(mid),
            cy + (r + 18) * math.sin(mid),
            f"{share:.0%}",
            s["size"],
            s["ink"],
            s["font"],
            anchor=(0.5, 0.5),
        )
        start += span
    c.text(
        width / 2,
        16,
        sentence(rng, 2, 5)[:-1],
        s["size"] * 1.3,
        s["ink"],
        s["font"],
        anchor=(0.5, 0),
    )
    _legend(c, s, width * 0.75, height * 0.3, n, rng)
    return c.result()


def gen_heatmap(rng: np.random.Generator) -> np.ndarray:
    width = int(rng.uniform(500, 1100))
    height = int(width * rng.uniform(0.7, 1.0))
    s = _chart_style(rng)
    c = Canvas(width, height, s["bg"])
    rows, cols = int(rng.integers(4, 20)), int(rng.integers(4, 20))
    x0, y0 = 60 + s["size"] * 4, 50.0
    x1, y1 = width * 0.82, height - 40 - s["size"] * 3
    values = fractal_noise(rng, cols, rows, max(2.0, cols / 3), 2)
    if rng.random() < 0.5:
        values = rng.random((rows, cols)).astype(np.float32)
    cmap = colormap(str(rng.choice(["viridis", "magma", "coolwarm", "blues", "rdylgn"])))
    colours = gradient_map(values, cmap)
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    annotate = cw > 34 and ch > 18 and rng.random() < 0.6
    for r in range(rows):
        for k in range(cols):
            c.rect(x0 + k * cw, y0 + r * ch, cw + 1, ch + 1, colours[r, k])
            if annotate:
                ink = (255, 255, 255) if colours[r, k].mean() < 128 else (0, 0, 0)
                c.text(
                    x0 + (k + 0.5) * cw,
                    y0 + (r + 0.5) * ch,
                    f"{values[r, k]:.2f}",
                    s["size"] * 0.8,
                    ink,
                    s["font"],
                    anchor=(0.5, 0.5),
                )
        c.text(
            x0 - 6,
            y0 + (r + 0.5) * ch,
            words(rng, 1)[:8],
            s["size"] * 0.85,
            s["ink"],
            s["font"],
            anchor=(1, 0.5),
        )
    for k in range(0, cols, max(1, cols // 10)):
        c.text(
            x0 + (k + 0.5) * cw,
            y1 + 6,
            str(k),
            s["size"] * 0.85,
            s["ink"],
            s["font"],
            anchor=(0.5, 0),
        )
    bar = gradient_map(np.linspace(1, 0, int(y1 - y0))[:, None].repeat(20, 1), cmap)
    c.paste(int(width * 0.86), int(y0), bar)
    for i in range(6):
        c.text(
            width * 0.86 + 26,
            y0 + (y1 - y0) * i / 5,
            f"{1 - i / 5:.1f}",
            s["size"] * 0.8,
            s["ink"],
            s["font"],
            anchor=(0, 0.5),
        )
    c.text(
        (x0 + x1) / 2,
        12,
        sentence(rng, 2, 5)[:-1],
        s["size"] * 1.2,
        s["ink"],
        s["font"],
        anchor=(0.5, 0),
    )
    return c.result()


def gen_histogram(rng: np.random.Generator) -> np.ndarray:
    c, s, boxes = _panels(rng)
    for box in boxes:
        x0, y0, x1, y1 = box
        _axes(c, rng, s, box, None, float(rng.choice([10, 100, 500])))
        bins = int(rng.integers(10, 60))
        samples = np.concatenate(
            [
                rng.normal(rng.uniform(-2, 2), rng.uniform(0.5, 1.5), 500)
                for _ in range(int(rng.integers(1, 3)))
            ]
        )
        counts, _ = np.histogram(samples, bins=bins)
        heights = counts / max(1, counts.max()) * 0.92
        bw = (x1 - x0) / bins
        colour = s["colours"][0]
        edge = rng.random() < 0.6
        for i, h in enumerate(heights):
            c.rect(x0 + i * bw, y1 - h * (y1 - y0), bw, h * (y1 - y0), colour)
            if edge:
                c.rect(x0 + i * bw, y1 - h * (y1 - y0), 1, h * (y1 - y0), s["ink"])
    return c.result()


def _node(
    c: Canvas,
    rng: np.random.Generator,
    x: float,
    y: float,
    w: float,
    h: float,
    shape: str,
    fill: Sequence[float],
    ink: Sequence[float],
    size: float,
    font: str,
) -> None:
    if shape == "diamond":
        c.polygon([(x, y - h / 2 - 4), (x + w / 2, y), (x, y + h / 2 + 4), (x - w / 2, y)], ink)
        c.polygon(
            [(x, y - h / 2 - 2), (x + w / 2 - 3, y), (x, y + h / 2 + 2), (x - w / 2 + 3, y)], fill
        )
    elif shape == "ellipse":
        c.ellipse(x, y, w / 2 + 1.5, h / 2 + 1.5, ink)
        c.ellipse(x, y, w / 2, h / 2, fill)
    else:
        c.rect(x - w / 2, y - h / 2, w, h, fill)
        c.frame(x - w / 2, y - h / 2, w, h, ink, 2 if rng.random() < 0.5 else 1)
    c.text(
        x, y, words(rng, int(rng.integers(1, 3))).capitalize(), size, ink, font, anchor=(0.5, 0.5)
    )


def gen_flowchart(rng: np.random.Generator) -> np.ndarray:
    width = int(rng.uniform(600, 1300))
    height = int(width * rng.uniform(0.6, 1.1))
    bg = (255, 255, 255) if rng.random() < 0.85 else (248, 248, 240)
    c = Canvas(width, height, bg)
    ink = tuple(rng.uniform(0, 70, 3))
    fills = palette(rng, 4, (0.1, 0.45), (0.85, 1.0))
    size = float(rng.uniform(11, 16))
    font = str(rng.choice(["sans", "DejaVu Sans Condensed", "serif"]))
    cols, rows = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    nw, nh = width / cols * 0.6, min(70.0, height / rows * 0.45)
    centres = {
        (i, j): ((i + 0.5) * width / cols, (j + 0.5) * height / rows)
        for i in range(cols)
        for j in range(rows)
        if rng.random() < 0.8
    }
    keys = sorted(centres)
    for a, b in itertools.pairwise(keys):
        (xa, ya), (xb, yb) = centres[a], centres[b]
        if a[0] == b[0]:
            c.arrow(xa, ya + nh / 2, xb, yb - nh / 2 - 2, ink)
        else:
            mid = (ya + yb) / 2
            c.line(xa, ya + nh / 2, xa, mid, ink, 1.5)
            c.line(xa, mid, xb, mid, ink, 1.5)
            c.arrow(xb, mid, xb, yb - nh / 2 - 2, ink)
    for key in keys:
        x, y = centres[key]
        shape = str(rng.choice(["rect", "rect", "diamond", "ellipse"]))
        _node(c, rng, x, y, nw, nh, shape, fills[int(rng.integers(0, 4))], ink, size, font)
    return c.result()


def gen_network(rng: np.random.Generator) -> np.ndarray:
    width = int(rng.uniform(600, 1200))
    height = int(width * rng.uniform(0.6, 1.0))
    c = Canvas(width, height, (255, 255, 255))
    n = int(rng.integers(6, 30))
    points = rng.uniform([60, 60], [width - 60, height - 60], (n, 2))
    colours = palette(rng, 4)
    edge = tuple(rng.uniform(100, 180, 3))
    for i in range(n):
        for j in rng.choice(n, size=int(rng.integers(1, 3)), replace=False):
            if i != j:
                c.line(*points[i], *points[j], edge, float(rng.uniform(1, 2.5)))
    radius = float(rng.uniform(8, 22))
    for i, (x, y) in enumerate(points):
        colour = colours[int(rng.integers(0, 4))]
        c.circle(x, y, radius + 1.5, (40, 40, 40))
        c.circle(x, y, radius, colour)
        if rng.random() < 0.7:
            c.text(x, y + radius + 4, f"{words(rng, 1)}{i}", 12, (30, 30, 30), anchor=(0.5, 0))
    return c.result()


def gen_technical(rng: np.random.Generator) -> np.ndarray:
    """Line drawings with labels: rings, grids, dimension lines (like the SVG sample)."""
    width = int(rng.uniform(500, 1100))
    height = int(width * rng.uniform(0.6, 1.0))
    c = Canvas(width, height, (255, 255, 255))
    cx, cy = width / 2, height / 2
    colours = palette(rng, 12, (0.5, 0.9), (0.5, 0.9))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        for i in range(int(rng.integers(3, 12))):
            c.circle(cx, cy, 20 + i * rng.uniform(12, 22), colours[i % 12], ring=3)
    elif kind == 1:
        step = float(rng.uniform(20, 60))
        for x in np.arange(step, width, step):
            c.rect(x, 0, 1, height, (200, 210, 230))
        for y in np.arange(step, height, step):
            c.rect(0, y, width, 1, (200, 210, 230))
        for _ in range(int(rng.integers(2, 6))):
            pts = rng.uniform([0, 0], [width, height], (3, 2))
            c.polygon([tuple(p) for p in pts], colours[int(rng.integers(0, 12))], alpha=0.7)
    else:
        for _ in range(int(rng.integers(3, 8))):
            x0, y0 = rng.uniform(40, width - 200), rng.uniform(40, height - 100)
            w, h = rng.uniform(60, 200), rng.uniform(40, 100)
            c.frame(x0, y0, w, h, (20, 20, 20), 2)
            c.arrow(x0, y0 + h + 12, x0 + w, y0 + h + 12, (60, 60, 60), 1, 6)
            c.text(x0 + w / 2, y0 + h + 16, f"{w:.0f} mm", 11, (30, 30, 30), anchor=(0.5, 0))
    c.text(cx, cy, words(rng, 2).title(), float(rng.uniform(16, 48)), (0, 0, 0), anchor=(0.5, 0.5))
    return c.result()


# --------------------------------------------------------------------------------------
# Synthetic art.


def _art_size(rng: np.random.Generator) -> tuple[int, int]:
    width = int(rng.uniform(500, 1200))
    return width, int(width * rng.uniform(0.6, 1.5))


def gen_abstract_noise(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    values = fractal_noise(
        rng, width, height, max(width, height) / rng.uniform(1.5, 6), int(rng.integers(1, 6))
    )
    if rng.random() < 0.5:
        levels = int(rng.integers(3, 9))
        values = np.floor(values * levels) / (levels - 1)
    if rng.random() < 0.3:
        values = (np.sin(values * rng.uniform(6, 30)) + 1) / 2
    pixels = gradient_map(np.clip(values, 0, 1), palette(rng, int(rng.integers(2, 6))))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def gen_geometric(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    colours = palette(rng, 6, (0.4, 1.0), (0.5, 1.0))
    paper = (250, 246, 235) if rng.random() < 0.5 else colours[0]
    c = Canvas(width, height, paper)
    style = int(rng.integers(0, 3))
    if style == 0:  # Mondrian-like grid
        xs = sorted(rng.uniform(0, width, int(rng.integers(2, 6))))
        ys = sorted(rng.uniform(0, height, int(rng.integers(2, 6))))
        for _ in range(int(rng.integers(2, 7))):
            i, j = int(rng.integers(0, len(xs))), int(rng.integers(0, len(ys)))
            x0, y0 = xs[i - 1] if i else 0, ys[j - 1] if j else 0
            c.rect(x0, y0, xs[i] - x0, ys[j] - y0, colours[int(rng.integers(1, 6))])
        thick = float(rng.uniform(4, 14))
        for x in xs:
            c.rect(x - thick / 2, 0, thick, height, (15, 15, 15))
        for y in ys:
            c.rect(0, y - thick / 2, width, thick, (15, 15, 15))
    else:  # Kandinsky / Bauhaus-like shapes
        for _ in range(int(rng.integers(5, 30))):
            colour = colours[int(rng.integers(0, 6))]
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(10, min(width, height) / 4)
            kind = int(rng.integers(0, 4))
            if kind == 0:
                c.circle(x, y, r, colour, alpha=float(rng.choice([1.0, 0.8])))
            elif kind == 1:
                c.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], colour)
            elif kind == 2:
                c.line(
                    x,
                    y,
                    x + rng.uniform(-300, 300),
                    y + rng.uniform(-300, 300),
                    colour,
                    float(rng.uniform(2, 12)),
                )
            else:
                c.circle(x, y, r, colour, ring=float(rng.uniform(3, 15)))
    return c.result()


def gen_gradient_art(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / (width + height)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    if rng.random() < 0.5:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        t = np.clip(np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / max(width, height), 0, 1)
    c = Canvas(width, height, (0, 0, 0))
    c.px = gradient_map(t, palette(rng, int(rng.integers(2, 5)), (0.3, 0.9), (0.4, 1.0)))
    for _ in range(int(rng.integers(0, 25))):
        c.circle(
            rng.uniform(0, width),
            rng.uniform(0, height),
            rng.uniform(10, 150),
            hsv(rng.random(), rng.uniform(0, 0.6), 1.0),
            alpha=float(rng.uniform(0.1, 0.5)),
        )
    pixels = c.px
    if rng.random() < 0.5:
        pixels = pyvips.Image.new_from_array(pixels).gaussblur(rng.uniform(2, 12)).numpy()
    return np.clip(pixels, 0, 255).astype(np.uint8)


def gen_pixel_art(rng: np.random.Generator) -> np.ndarray:
    cells = int(rng.integers(12, 64))
    values = fractal_noise(rng, cells, cells, cells / rng.uniform(2, 5), 2)
    levels = int(rng.integers(3, 8))
    colours = palette(rng, levels, (0.3, 1.0), (0.2, 1.0))
    index = np.minimum((values * levels).astype(int), levels - 1)
    small = np.asarray(colours, np.float32)[index]
    if rng.random() < 0.5:  # mirror: sprites are often symmetric
        small[:, cells // 2 :] = small[:, : cells - cells // 2][:, ::-1]
    scale = max(4, int(rng.uniform(400, 1000) / cells))
    return np.repeat(np.repeat(small, scale, axis=0), scale, axis=1).astype(np.uint8)


def gen_line_art(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    paper = (255, 255, 255) if rng.random() < 0.5 else tuple(rng.uniform(225, 250, 3))
    c = Canvas(width, height, paper)
    ink = (20, 20, 25) if rng.random() < 0.7 else hsv(rng.random(), 0.7, 0.5)
    for _ in range(int(rng.integers(5, 60))):
        points = [tuple(rng.uniform([0, 0], [width, height]))]
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(5, 60))):
            heading += rng.normal(0, 0.35)
            step = rng.uniform(4, 20)
            x, y = points[-1]
            points.append((x + step * math.cos(heading), y + step * math.sin(heading)))
        c.polyline(points, ink, float(rng.uniform(0.8, 4)))
    return c.result()


def gen_logo(rng: np.random.Generator) -> np.ndarray:
    side = int(rng.uniform(300, 900))
    c = Canvas(side, side, (255, 255, 255) if rng.random() < 0.7 else palette(rng, 1)[0])
    colours = palette(rng, 3, (0.6, 1.0), (0.5, 0.95))
    cx, cy, r = side / 2, side * 0.42, side * rng.uniform(0.18, 0.32)
    kind = int(rng.integers(0, 3))
    if kind == 0:
        c.circle(cx, cy, r, colours[0])
        c.circle(cx, cy, r * 0.6, colours[1])
    elif kind == 1:
        c.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], colours[0])
        c.circle(cx, cy + r * 0.2, r * 0.35, colours[2])
    else:
        hexagon = [
            (cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)[:-1]
        ]
        c.polygon(hexagon, colours[0])
        c.rect(cx - r * 0.3, cy - r * 0.3, r * 0.6, r * 0.6, colours[1])
    if rng.random() < 0.6:
        c.text(
            cx,
            side * 0.82,
            words(rng, 1).title(),
            side * rng.uniform(0.06, 0.12),
            colours[2],
            bold=True,
            anchor=(0.5, 0.5),
        )
    return c.result()


def gen_pattern(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    colours = palette(rng, 4, (0.3, 0.9), (0.4, 1.0))
    c = Canvas(width, height, colours[0])
    step = float(rng.uniform(30, 120))
    kind = int(rng.integers(0, 3))
    for j, y in enumerate(np.arange(step / 2, height + step, step)):
        for x in np.arange(step / 2 + (step / 2 if j % 2 and kind else 0), width + step, step):
            if kind == 0:
                c.circle(x, y, step * 0.35, colours[1])
                c.circle(x, y, step * 0.15, colours[2])
            elif kind == 1:
                r = step * 0.45
                c.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], colours[1])
                c.circle(x, y, step * 0.12, colours[3])
            else:
                c.circle(x, y, step * 0.4, colours[2], ring=step * 0.08)
                c.line(x - step / 2, y, x + step / 2, y, colours[3], 2)
    return c.result()


def gen_silhouette(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    blob = fractal_noise(rng, width, height, max(width, height) / 2, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    falloff = np.sqrt(((xx - width / 2) / width) ** 2 + ((yy - height / 2) / height) ** 2)
    shape = (blob - 1.6 * falloff) > rng.uniform(0.0, 0.3)
    ink, paper = ((0, 0, 0), (255, 255, 255)) if rng.random() < 0.7 else palette(rng, 2)
    pixels = np.where(shape[..., None], np.asarray(ink, np.float32), np.asarray(paper, np.float32))
    return pixels.astype(np.uint8)


def gen_watercolour(rng: np.random.Generator) -> np.ndarray:
    width, height = _art_size(rng)
    paper = np.full((height, width, 3), 250, np.float32)
    pixels = paper.copy()
    small_w, small_h = width // 4 + 2, height // 4 + 2
    for colour in palette(rng, int(rng.integers(3, 8)), (0.3, 0.8), (0.6, 1.0)):
        small = fractal_noise(rng, small_w, small_h, max(small_w, small_h) / rng.uniform(2, 6), 3)
        mask = pyvips.Image.new_from_array(small).resize(4).numpy()[:height, :width]
        mask = np.clip((mask - rng.uniform(0.4, 0.7)) * 4, 0, 1)[..., None]
        pixels = pixels * (1 - 0.6 * mask) + np.asarray(colour, np.float32) * 0.6 * mask
    grain = fractal_noise(rng, width, height, 6, 2)[..., None]
    return np.clip(pixels * (0.92 + 0.08 * grain), 0, 255).astype(np.uint8)


GENERATORS: dict[str, tuple[str, Callable[[np.random.Generator], np.ndarray]]] = {
    "ui_app": ("screenshot", gen_ui_app),
    "document": ("screenshot", gen_document),
    "terminal": ("screenshot", gen_terminal),
    "code_editor": ("screenshot", gen_code_editor),
    "spreadsheet": ("screenshot", gen_spreadsheet),
    "chat": ("screenshot", gen_chat),
    "list": ("screenshot", gen_list),
    "bar_chart": ("diagram", gen_bar_chart),
    "line_chart": ("diagram", gen_line_chart),
    "scatter": ("diagram", gen_scatter),
    "pie": ("diagram", gen_pie),
    "heatmap": ("diagram", gen_heatmap),
    "histogram": ("diagram", gen_histogram),
    "flowchart": ("diagram", gen_flowchart),
    "network": ("diagram", gen_network),
    "technical": ("diagram", gen_technical),
    "abstract_noise": ("art", gen_abstract_noise),
    "geometric": ("art", gen_geometric),
    "gradient_art": ("art", gen_gradient_art),
    "pixel_art": ("art", gen_pixel_art),
    "line_art": ("art", gen_line_art),
    "logo": ("art", gen_logo),
    "pattern": ("art", gen_pattern),
    "silhouette": ("art", gen_silhouette),
    "watercolour": ("art", gen_watercolour),
}


# --------------------------------------------------------------------------------------
# Real images, their variants, and art derived from the photos.


def manifest_labels(data: Path) -> dict[str, str]:
    """{relative path: class} for every labelled, present, still image in MANIFEST.md."""
    labels: dict[str, str] = {}
    manifest = data / "MANIFEST.md"
    if not manifest.is_file():
        return labels
    for relative, content_type in _ROW.findall(manifest.read_text(encoding="utf-8")):
        word = re.match(r"[a-z]+", content_type.strip())
        label = CLASS_OF.get(word.group(0)) if word else None
        if label is None or not (data / relative).is_file():
            continue  # e.g. the animated GIF
        labels[relative] = label
    return labels


def load_rgb(path: Path, side: int = LOAD_SIDE) -> np.ndarray:
    image = pyvips.Image.thumbnail(str(path), side, height=side, size="down")
    return rgb_array(image, side)


def crop(rng: np.random.Generator, pixels: np.ndarray, low: float = 0.55) -> np.ndarray:
    h, w = pixels.shape[:2]
    ch, cw = int(h * rng.uniform(low, 1.0)), int(w * rng.uniform(low, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return pixels[y : y + ch, x : x + cw]


def jitter_photo(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    out = pixels.astype(np.float32)
    if rng.random() < 0.5:
        out = 255 * (out / 255) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.4:
        grey = out.mean(axis=2, keepdims=True)
        out = grey + (out - grey) * rng.uniform(0.6, 1.3)
    if rng.random() < 0.08:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    return np.clip(out, 0, 255).astype(np.uint8)


def stylise(rng: np.random.Generator, pixels: np.ndarray, style: str) -> np.ndarray:
    """Art from a photo: flat colours, outlines, hatching, pop-art or painterly."""
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    if max(image.width, image.height) > 900:
        image = image.resize(900 / max(image.width, image.height))
    if style in ("posterise", "cartoon"):
        smooth = image.median(int(rng.choice([3, 5, 7]))) if style == "cartoon" else image
        smooth = smooth.gaussblur(rng.uniform(0.8, 2.5))
        levels = int(rng.integers(3, 6))
        flat = np.floor(smooth.numpy().astype(np.float32) / 256 * levels) * (255 / (levels - 1))
        if style == "cartoon":
            grey = smooth.colourspace("b-w").numpy().astype(np.float32)
            edges = np.abs(np.diff(grey, axis=0, prepend=grey[:1])) + np.abs(
                np.diff(grey, axis=1, prepend=grey[:, :1])
            )
            flat[edges > rng.uniform(12, 30)] = 20
        return np.clip(flat, 0, 255).astype(np.uint8)
    grey = image.colourspace("b-w").gaussblur(1.0).numpy().astype(np.float32) / 255
    if grey.ndim == 3:
        grey = grey[..., 0]
    if style == "hatching":
        yy, xx = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]].astype(np.float32)
        period = rng.uniform(3, 7)
        ink = np.zeros_like(grey)
        for k, angle in enumerate((0.8, -0.8, 0.0)):
            wave = (
                np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * np.pi / period) + 1
            ) / 2
            ink = np.maximum(ink, (wave < 0.5) & (grey < 0.75 - 0.25 * k))
        paper = np.asarray((242, 235, 215) if rng.random() < 0.6 else (255, 255, 255), np.float32)
        dark = np.asarray((35, 25, 20), np.float32)
        out = paper * (1 - ink[..., None]) + dark * ink[..., None]
        return out.astype(np.uint8)
    if style == "popart":
        levels = int(rng.integers(2, 5))
        index = np.minimum((grey * levels).astype(int), levels - 1)
        colours = np.asarray(palette(rng, levels, (0.7, 1.0), (0.6, 1.0)), np.float32)
        return colours[index].astype(np.uint8)
    # painterly: median strokes, boosted colour, canvas grain
    painted = image.median(int(rng.choice([5, 7, 9]))).median(5).numpy().astype(np.float32)
    mean = painted.mean(axis=2, keepdims=True)
    painted = mean + (painted - mean) * rng.uniform(1.2, 1.6)
    h, w = painted.shape[:2]
    grain = fractal_noise(rng, w, h, 4, 2)[..., None]
    return np.clip(painted * (0.9 + 0.15 * grain), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------
# Jobs: one recipe -> one feature row.


@dataclass(frozen=True)
class Recipe:
    kind: str  # "real", "derived" or a generator name
    label: str
    group: str
    seed: int
    source: str = ""  # relative path of the real image ("real", "derived")
    style: str = ""  # derived-art style
    variant: int = 0
    sizes: tuple[int, int] = SIZES

    @property
    def origin(self) -> str:
        return (
            "real" if self.kind == "real" else "derived" if self.kind == "derived" else "synthetic"
        )

    @property
    def name(self) -> str:
        if self.kind == "real":
            return f"{self.source}#{self.variant}"
        if self.kind == "derived":
            return f"{self.source}~{self.style}"
        return f"{self.kind}/{self.seed}"


def deliver(
    rng: np.random.Generator, pixels: np.ndarray, sizes: tuple[int, int], jpeg: float
) -> pyvips.Image:
    """As served: scaled down to a random size, sometimes re-encoded as JPEG."""
    image = pyvips.Image.new_from_array(np.ascontiguousarray(pixels)).copy(interpretation="srgb")
    side = int(rng.integers(sizes[0], sizes[1] + 1))
    scale = side / max(image.width, image.height)
    if scale < 1:
        image = image.resize(scale)
    if rng.random() < jpeg:
        buffer = image.write_to_buffer(".jpg", Q=int(rng.integers(45, 96)))
        image = pyvips.Image.new_from_buffer(buffer, "")
    return image


def render(recipe: Recipe, data: Path) -> pyvips.Image:
    rng = np.random.default_rng(recipe.seed)
    if recipe.kind == "real":
        pixels = load_rgb(data / recipe.source)
        if recipe.variant > 0:
            pixels = crop(rng, pixels, 0.5 if recipe.label == "photo" else 0.6)
            if recipe.label == "photo":
                pixels = jitter_photo(rng, pixels)
        return deliver(rng, pixels, recipe.sizes, 0.5 if recipe.label == "photo" else 0.25)
    if recipe.kind == "derived":
        pixels = crop(rng, load_rgb(data / recipe.source, 1000), 0.7)
        return deliver(rng, stylise(rng, pixels, recipe.style), recipe.sizes, 0.3)
    _, generator = GENERATORS[recipe.kind]
    return deliver(rng, generator(rng), recipe.sizes, 0.25)


def featurise(args: tuple[Recipe, Path]) -> tuple[np.ndarray | None, str]:
    recipe, data = args
    try:
        return features_from_rgb(rgb_array(render(recipe, data))), ""
    except Exception as exc:  # one bad image must not sink the run
        return None, f"{recipe.name}: {type(exc).__name__}: {exc}"


def _worker_init() -> None:
    pyvips.concurrency_set(1)  # one process per core instead
    pyvips.cache_set_max(0)


def run_jobs(
    recipes: Sequence[Recipe], data: Path, jobs: int
) -> list[tuple[np.ndarray | None, str]]:
    arguments = [(recipe, data) for recipe in recipes]
    if jobs <= 1:
        _worker_init()
        return list(progress(map(featurise, arguments), len(arguments), "features", "img", 10))
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # libvips' threads do not survive fork
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
        return list(
            progress(
                pool.map(featurise, arguments, chunksize=4),
                len(arguments),
                "features",
                "img",
                10,
            )
        )


# --------------------------------------------------------------------------------------
# The data set: recipes, split.


def stable_fraction(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def build_recipes(labels: dict[str, str], smoke: bool, synthetic: int) -> list[Recipe]:
    sizes = SMOKE_SIZES if smoke else SIZES
    recipes: list[Recipe] = []
    seed = 1000
    photos = sorted(rel for rel, label in labels.items() if label == "photo")
    for relative, label in sorted(labels.items()):
        variants = (2 if smoke else PHOTO_VARIANTS) if label == "photo" else (3 if smoke else 10)
        for variant in range(variants):
            seed += 1
            recipes.append(
                Recipe(
                    "real", label, group_of(relative), seed, relative, variant=variant, sizes=sizes
                )
            )
    per_style = 1 if smoke else max(1, len(photos) * 2 // len(DERIVED_STYLES) // 2)
    rng = np.random.default_rng(7)
    for style in DERIVED_STYLES:
        for relative in rng.choice(photos, size=min(per_style, len(photos)), replace=False):
            seed += 1
            recipes.append(
                Recipe(
                    "derived",
                    "art",
                    group_of(str(relative)),
                    seed,
                    str(relative),
                    style=style,
                    sizes=sizes,
                )
            )
    for name, (label, _) in GENERATORS.items():
        for i in range(synthetic):
            seed += 1
            recipes.append(Recipe(name, label, f"synthetic/{name}/{i}", seed, sizes=sizes))
    return recipes


def held_out(groups: Sequence[str], smoke: bool) -> set[str]:
    """Held-out groups: the test images, plus about ``HOLDOUT_FRACTION`` of the rest."""
    chosen = {g for g in groups if g in FORCED_HOLDOUT}
    if smoke:
        return chosen
    return chosen | {g for g in groups if stable_fraction("content:" + g) < HOLDOUT_FRACTION}


# --------------------------------------------------------------------------------------
# Models, export, report.


def make_model(kind: str, smoke: bool) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "gbt":
        return GradientBoostingClassifier(
            n_estimators=30 if smoke else 150,
            max_depth=3,
            learning_rate=0.1,
            subsample=0.8,
            random_state=0,
        )
    if kind == "forest":
        return RandomForestClassifier(
            n_estimators=20 if smoke else 80,
            max_depth=8,
            min_samples_leaf=2,
            class_weight="balanced",
            random_state=0,
        )
    if kind == "mlp":
        return make_pipeline(
            StandardScaler(),
            MLPClassifier((32, 16), alpha=1e-2, max_iter=300 if smoke else 2000, random_state=0),
        )
    if kind == "logreg":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
        )
    raise SystemExit(f"unknown --model {kind!r}")


def sample_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=len(LABELS)).astype(np.float64)
    weights = len(y) / (len(LABELS) * np.maximum(counts, 1))
    result: np.ndarray = weights[y]
    return result


def fit(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """Class-balanced fit (the photo class dominates the real images)."""
    weights = sample_weights(y)
    steps = getattr(model, "steps", None)
    if steps is not None:
        final = steps[-1][0]
        if final == "mlpclassifier":
            return model.fit(X, y)  # MLP takes no weights: balanced by the data mix instead
        return model.fit(X, y, **{f"{final}__sample_weight": weights})
    return model.fit(X, y, sample_weight=weights)


def export_onnx(model: Any, out: Path, notes: str) -> bytes:
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURE_NAMES)]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx names the graph at random and lists the opsets in set order: fix both, so
    # the same data gives the same bytes (and the same sha256 in the manifest).
    onx.graph.name = "loupe_content_classifier"
    opsets = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(opsets)
    onx.doc_string = (
        "Loupe content classifier: input = proxy.detectors.content.FEATURE_NAMES "
        f"({len(FEATURE_NAMES)} floats); outputs label (int64 index) and probabilities "
        f"[N, {len(LABELS)}] in the order of the 'labels' metadata. {notes}"
    )
    for key, value in (("labels", ",".join(LABELS)), ("features", ",".join(FEATURE_NAMES))):
        entry = onx.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(onx)
    blob: bytes = onx.SerializeToString()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return blob


def onnx_probabilities(path: Path, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(["probabilities"], {"input": X.astype(np.float32)})
    return np.asarray(output, dtype=np.float64)


def confusion(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    matrix = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    for t, p in zip(y, predicted, strict=True):
        matrix[t, p] += 1
    return matrix


def print_confusion(matrix: np.ndarray) -> None:
    width = max(len(label) for label in LABELS) + 2
    print(" " * width + "predicted: " + "".join(f"{label:>{width}}" for label in LABELS))
    for i, label in enumerate(LABELS):
        print(f"{label:>{width}}" + " " * 11 + "".join(f"{v:>{width}}" for v in matrix[i]))


def cross_validate(
    kind: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> tuple[float, np.ndarray]:
    """Grouped, stratified 5-fold CV: mean accuracy and the out-of-fold predictions."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    scores = []
    out_of_fold = np.zeros(len(y), dtype=int)
    for train, test in folds.split(X, y, groups):
        model = fit(make_model(kind, False), X[train], y[train])
        out_of_fold[test] = model.predict(X[test])
        scores.append(float((out_of_fold[test] == y[test]).mean()))
    return float(np.mean(scores)), out_of_fold


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="image folder (shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write")
    parser.add_argument("--model", default="gbt", choices=["gbt", "forest", "mlp", "logreg"])
    parser.add_argument(
        "--synthetic",
        type=int,
        default=None,
        help="scenes per synthetic generator (default 40; smoke 2)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--cv", action="store_true", help="grouped 5-fold CV on the training set")
    parser.add_argument("--features-cache", type=Path, help="reuse/save the feature rows (.npz)")
    parser.add_argument("--metrics-json", type=Path, help="also write the metrics here")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="10 real images, 2 scenes per generator, small sizes: ~10-20 s",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    data = (args.data or shared_data_dir()).resolve()
    labels = manifest_labels(data)
    if args.smoke:
        labels = {k: v for k, v in labels.items() if k in SMOKE_REAL}
    if len(set(labels.values())) < 2:
        print(f"train: no labelled images under {data} (set LOUPE_SHARED_DIR or --data)")
        return 2
    synthetic = args.synthetic if args.synthetic is not None else (2 if args.smoke else 40)
    recipes = build_recipes(labels, args.smoke, synthetic)
    print(
        f"train: {len(labels)} real images ({dict(Counter(labels.values()))}), "
        f"{len(recipes)} rows to make ({dict(Counter(r.origin for r in recipes))})",
        flush=True,
    )

    digest = hashlib.sha1(
        json.dumps([asdict(r) for r in recipes]).encode()
        + (REPO / "proxy" / "detectors" / "content.py").read_bytes()
        + (REPO / "proxy" / "detectors" / "text.py").read_bytes()
        + Path(__file__).read_bytes()
    ).hexdigest()
    cache = args.features_cache
    if cache and cache.is_file() and str(np.load(cache)["digest"]) == digest:
        X_all = np.load(cache)["X"]
        ok = np.load(cache)["ok"]
        print(f"features: {cache} (cached)")
    else:
        results = run_jobs(recipes, data, args.jobs)
        failures = [message for _, message in results if message]
        for message in failures[:10]:
            print(f"  skipped {message}")
        ok = np.array([row is not None for row, _ in results])
        X_all = np.stack(
            [
                row if row is not None else np.zeros(len(FEATURE_NAMES), np.float32)
                for row, _ in results
            ]
        )
        if cache:
            np.savez(cache, X=X_all, ok=ok, digest=np.array(digest))
    kept = [r for r, good in zip(recipes, ok, strict=True) if good]
    X = X_all[ok].astype(np.float32)
    y = np.array([LABELS.index(r.label) for r in kept])
    groups = np.array([r.group for r in kept])
    origin = np.array([r.origin for r in kept])
    if not np.isfinite(X).all():
        print("train: non-finite features")
        return 1

    held = held_out(sorted(set(groups)), args.smoke)
    test = np.isin(groups, sorted(held))
    train = ~test
    print(
        f"split by group: {len(set(groups[train]))} training groups ({int(train.sum())} rows), "
        f"{len(held)} held out ({int(test.sum())} rows)"
    )
    for name, mask in (("train", train), ("held-out", test)):
        counts = {LABELS[k]: int(((y == k) & mask).sum()) for k in range(len(LABELS))}
        print(f"  {name:>8} rows by class: {counts}")
    metrics: dict[str, Any] = {
        "rows": len(y),
        "train_rows": int(train.sum()),
        "test_rows": int(test.sum()),
        "model": args.model,
        "held_out_groups": sorted(held),
        "synthetic_per_generator": synthetic,
        "rows_by_origin": dict(Counter(origin.tolist())),
        "rows_by_class": {LABELS[k]: int((y == k).sum()) for k in range(len(LABELS))},
    }
    if args.cv and not args.smoke:
        score, oof = cross_validate(args.model, X[train], y[train], groups[train])
        print(f"grouped 5-fold CV accuracy on the training groups: {score:.3f}")
        metrics["cv_accuracy"] = score
        print("  CV confusion matrix (rows: true class):")
        print_confusion(confusion(y[train], oof))
        trained = [kept[i] for i in np.flatnonzero(train)]
        wrong = [
            f"{r.source} {r.label} -> {LABELS[p]}"
            for r, p, t in zip(trained, oof, y[train], strict=True)
            if r.kind == "real" and r.variant == 0 and p != t
        ]
        print(
            "  CV mistakes on real training images (whole-image variant): "
            + (", ".join(wrong) or "none")
        )
        metrics["cv_real_mistakes"] = wrong

    model = fit(make_model(args.model, args.smoke), X[train], y[train])
    notes = f"Trained by models/content/train.py ({args.model}, {int(train.sum())} rows)."
    blob = export_onnx(model, args.out, notes)
    sk = model.predict_proba(X)
    ox = onnx_probabilities(args.out, X)
    gap = float(np.max(np.abs(sk - ox)))
    print(f"onnx: {args.out} ({len(blob)} bytes); max |onnxruntime - sklearn| = {gap:.2e}")
    metrics.update(onnx_bytes=len(blob), onnx_max_abs_diff=gap)
    if gap > 1e-3:
        print("train: the ONNX model does not match scikit-learn")
        return 1
    classifier = ContentClassifier.from_file(args.out)
    if not classifier.available:
        print(f"train: ContentClassifier cannot load the model: {classifier.reason}")
        return 1

    predicted = ox.argmax(axis=1)
    for name, mask in (("train", train), ("held-out", test)):
        if mask.any():
            accuracy = float((predicted[mask] == y[mask]).mean())
            print(f"{name} accuracy: {accuracy:.3f} ({int(mask.sum())} rows)")
            metrics[f"{name}_accuracy"] = accuracy
    if test.any():
        matrix = confusion(y[test], predicted[test])
        print("held-out confusion matrix (rows: true class):")
        print_confusion(matrix)
        metrics["held_out_confusion"] = matrix.tolist()
        recall = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
        metrics["held_out_balanced_accuracy"] = float(recall[matrix.sum(axis=1) > 0].mean())
        print(f"held-out balanced accuracy: {metrics['held_out_balanced_accuracy']:.3f}")
        for source in ("real", "derived", "synthetic"):
            mask = test & (origin == source)
            if mask.any():
                accuracy = float((predicted[mask] == y[mask]).mean())
                print(f"  held-out {source}: {accuracy:.3f} ({int(mask.sum())} rows)")
                metrics[f"held_out_{source}_accuracy"] = accuracy
        mistakes = Counter(
            kept[i].kind if kept[i].kind != "derived" else f"derived:{kept[i].style}"
            for i in np.flatnonzero(test & (predicted != y))
        )
        print(f"  held-out mistakes by kind: {dict(mistakes.most_common())}")
        metrics["held_out_mistakes_by_kind"] = dict(mistakes)
        print("held-out real images (whole-image variant):")
        real_rows = []
        for i in np.flatnonzero(test & (origin == "real")):
            recipe = kept[i]
            if recipe.variant == 0:
                mark = "ok" if predicted[i] == y[i] else "WRONG"
                line = (
                    f"{recipe.source:40} {recipe.label:>10} -> {LABELS[predicted[i]]:<10} "
                    f"{ox[i].max():.2f} {mark}"
                )
                print("  " + line)
                real_rows.append(line)
        metrics["held_out_real_images"] = real_rows
    metrics["seconds"] = round(time.monotonic() - started, 1)
    if args.metrics_json:
        args.metrics_json.write_text(json.dumps(metrics, indent=2))
    print(f"done in {metrics['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
