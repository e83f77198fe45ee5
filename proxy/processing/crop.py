"""Cut the chosen window out of the (shrunk-on-load) frame."""

from __future__ import annotations

import pyvips

from proxy.processing.plan import RenderPlan


def crop(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    left, top, width, height = plan.to_loaded(plan.layout.window, frame.width, frame.height)
    if (left, top, width, height) == (0, 0, frame.width, frame.height):
        return frame, plan
    return frame.crop(left, top, width, height), plan
