"""Cut the chosen window out of the (shrunk-on-load) frame."""

from __future__ import annotations

import pyvips

from proxy.geometry import Rect
from proxy.processing.plan import RenderPlan


def crop(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    window = plan.to_loaded(plan.layout.window, frame.width, frame.height)
    if window == Rect(0, 0, frame.width, frame.height):
        return frame, plan
    return frame.crop(window.x, window.y, window.w, window.h), plan
