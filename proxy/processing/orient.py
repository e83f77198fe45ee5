"""Apply EXIF orientation so every later coordinate is what a viewer sees."""

from __future__ import annotations

import pyvips

from proxy.processing.plan import RenderPlan


def orient(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    if plan.source.orientation in (0, 1):
        return frame, plan
    return frame.autorot(), plan
