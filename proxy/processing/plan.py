"""The immutable description of one render: its decisions, handed from step to step.

Steps that decide something (``focus``, ``flatten``) return a new plan; the final plan is
what the response headers report, so the headers can never disagree with the pixels. What
the encode made and learnt (the bytes, the chosen quality, the score) is not a decision:
it is the outcome, ``rendered.Rendered``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from proxy.analysis.result import Analysis
from proxy.formats import OUTPUTS, OutputFormat
from proxy.geometry import Layout, Rect
from proxy.policies import Policy

# Who placed the crop (API.md): a model or heuristic (ai), a reviewer's pick (human), or a
# user: an override set through the admin API, or geometry given explicitly in the URL
# (center, focalpoint, rect, or no cut at all).
DecidedBy = Literal["ai", "human", "user"]
# A provisional answer was predicted, not measured: it is cached briefly and verified in
# the lane. A final one is measured (or verified before), or exactly what the URL asked.
Stage = Literal["provisional", "final"]
# How the bytes are made (``rendered`` describes the strategies): the plan's quality, or
# q=auto predicted (the request path) or searched (the lane's verify job).
EncodingName = Literal["fixed", "predicted", "searched"]


@dataclass(frozen=True)
class SourceInfo:
    """What the header says, before any pixel is decoded."""

    format: str  # a formats.SourceFormat: jpeg, png, webp, gif, heif, tiff, svg
    width: int  # orientation-corrected
    height: int
    pages: int
    orientation: int
    has_alpha: bool
    bytes: int


@dataclass(frozen=True)
class CropDecision:
    strategy: str
    rect: Rect
    by: DecidedBy
    requested: str | None = None  # set when a strategy fell back to another

    def header(self) -> str:
        value = f"strategy={self.strategy}; rect={self.rect.header()}; by={self.by}"
        if self.requested and self.requested != self.strategy:
            value += f"; requested={self.requested}"
        return value


@dataclass(frozen=True)
class RenderPlan:
    source: SourceInfo
    layout: Layout
    crop: CropDecision
    crop_strategy: str  # how focus places the window when layout.needs_window
    format: OutputFormat
    quality: int | None  # None for formats without a quality knob
    lossless: bool
    animated: bool
    background: tuple[int, int, int, int]
    policy: Policy  # resolved once, in prepare
    shrink: int = 1  # loader shrink factor
    load_scale: float = 1.0  # loaded pixels per source pixel, set by load
    analysis: Analysis | None = None  # what the models saw (smart and faces crops)
    window_placed: bool = False  # focus has run (once, on the first frame)
    alpha_flattened: bool = False
    notes: tuple[str, ...] = ()
    # q=auto: asked for, and how it is encoded (``quality`` is then its fallback).
    quality_auto: bool = False
    encoding: EncodingName = "fixed"
    phash: str | None = None
    origin: tuple[str, str] = ("", "")  # (path, digest) of the source, for the cost tallies
    # Asked for by the URL (see TransformParams): turn after EXIF orientation, effects
    # after scaling, progressive JPEG.
    rotate: int = 0
    flip: str = ""
    blur: int = 0
    sharp: int = 0
    progressive: bool = False
    deadline: float = math.inf  # time.monotonic() past which libvips work is killed

    @property
    def mime(self) -> str:
        return OUTPUTS[self.format].mime

    def to_loaded(self, rect: Rect, width: int, height: int) -> Rect:
        """Map a source rect into the shrunk-on-load image, clamped to its bounds."""
        s = self.load_scale
        left = min(int(rect.x * s), width - 1)
        top = min(int(rect.y * s), height - 1)
        w = max(1, min(round(rect.w * s), width - left))
        h = max(1, min(round(rect.h * s), height - top))
        return Rect(left, top, w, h)
