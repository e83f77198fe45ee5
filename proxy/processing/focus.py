"""Decide where the crop window goes when ``fit=crop`` has to cut.

``center`` and ``focalpoint`` were placed by pure geometry in prepare; ``smart`` and
``faces`` take a ranked candidate from the analysis (``proxy.cropping``), and fall back
to ``attention`` without one; ``attention`` and ``entropy`` look at the pixels (libvips
smartcrop on a small proxy, so the cost does not grow with the source).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyvips

from proxy.analysis.crops import candidates_for, choose
from proxy.geometry import Size, place_window
from proxy.imaging import to_plane
from proxy.params import ANALYSIS_CROPS, VIPS_CROPS
from proxy.processing.plan import RenderPlan

PROXY_SIDE = 384


def _proxy(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, float]:
    """The region, small and flattened; returns it with its pixels per source pixel."""
    region = plan.layout.region
    loaded = plan.to_loaded(region, frame.width, frame.height)
    crop = frame.crop(loaded.x, loaded.y, loaded.w, loaded.h)
    factor = min(1.0, PROXY_SIDE / max(loaded.w, loaded.h))
    small = crop.resize(factor) if factor < 1 else crop
    if small.hasalpha():
        small = small.flatten(background=[255, 255, 255])
    return small, small.width / region.w


def _entropy_offset(proxy: pyvips.Image, chosen: pyvips.Image) -> tuple[int, int]:
    """Where smartcrop's window sits: it is an exact sub-image, so match row/column means."""
    full = to_plane(proxy.extract_band(0)).astype(np.float32)
    part = to_plane(chosen.extract_band(0)).astype(np.float32)

    def best(axis_full: np.ndarray, axis_part: np.ndarray) -> int:
        span = len(axis_full) - len(axis_part)
        errors = [
            np.abs(axis_full[i : i + len(axis_part)] - axis_part).sum() for i in range(span + 1)
        ]
        return int(np.argmin(errors))

    x = (
        best(full[: chosen.height].mean(axis=0), part.mean(axis=0))
        if chosen.width < proxy.width
        else 0
    )
    column = full[:, x : x + chosen.width]
    y = best(column.mean(axis=1), part.mean(axis=1)) if chosen.height < proxy.height else 0
    return x, y


def analysis_usable(plan: RenderPlan) -> bool:
    """smart/faces can be placed from the analysis, without looking at pixels."""
    analysis = plan.analysis
    return analysis is not None and not {"faces", "saliency"} <= set(analysis.unavailable)


def _from_analysis(plan: RenderPlan) -> RenderPlan | None:
    """smart/faces: the chosen candidate, or None when there is no usable analysis."""
    analysis = plan.analysis
    if analysis is None or not analysis_usable(plan):
        return None
    window = plan.layout.window
    candidates = candidates_for(analysis, plan.layout.region, Size(window.w, window.h))
    chosen = choose(candidates, plan.crop_strategy)
    if chosen is None:
        return None
    layout = replace(plan.layout, window=chosen.rect)
    crop = replace(plan.crop, rect=chosen.rect, strategy=plan.crop_strategy)
    return replace(plan, layout=layout, crop=crop, window_placed=True)


def focus(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    if not plan.layout.needs_window or plan.window_placed:
        return frame, plan
    if plan.crop_strategy in ANALYSIS_CROPS:
        decided = _from_analysis(plan)
        if decided is not None:
            return frame, decided
        # No analysis (models missing or failed): libvips attention, and the header says so.
        fallback = replace(plan.crop, strategy="attention")
        plan = replace(plan, crop_strategy="attention", crop=fallback)
    strategy = plan.crop_strategy
    if strategy not in VIPS_CROPS:
        return frame, plan
    region, window = plan.layout.region, plan.layout.window
    proxy, scale = _proxy(frame, plan)
    win_w = max(1, min(proxy.width, round(window.w * scale)))
    win_h = max(1, min(proxy.height, round(window.h * scale)))
    if strategy == "attention":
        _, found = proxy.smartcrop(
            win_w, win_h, interesting="attention", attention_x=True, attention_y=True
        )
        centre_x, centre_y = found["attention_x"] / scale, found["attention_y"] / scale
    else:
        chosen = proxy.smartcrop(win_w, win_h, interesting="entropy")
        x, y = _entropy_offset(proxy, chosen)
        centre_x, centre_y = (x + win_w / 2) / scale, (y + win_h / 2) / scale
    placed = place_window(region, Size(window.w, window.h), centre_x, centre_y)
    layout = replace(plan.layout, window=placed)
    crop = replace(plan.crop, rect=placed)
    return frame, replace(plan, layout=layout, crop=crop, window_placed=True)
