"""``rot`` and ``flip``: turn the picture as the URL asks, after EXIF orientation, so every
later coordinate (``w``, ``h``, ``rect``, the crop window) is the turned picture's."""

from __future__ import annotations

import pyvips

from proxy.processing.plan import RenderPlan

ANGLES = {90: "d90", 180: "d180", 270: "d270"}  # libvips rot: clockwise


def turn(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    if plan.rotate:
        frame = frame.rot(ANGLES[plan.rotate])
    if "h" in plan.flip:
        frame = frame.fliphor()
    if "v" in plan.flip:
        frame = frame.flipver()
    return frame, plan
