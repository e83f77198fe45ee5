"""``fit=fill``: place the image on a canvas of the box size, in the ``bg`` colour."""

from __future__ import annotations

import pyvips

from proxy.processing.plan import RenderPlan


def pad(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    canvas, (left, top) = plan.layout.canvas, plan.layout.offset
    if (frame.width, frame.height) == (canvas.width, canvas.height):
        return frame, plan
    red, green, blue, alpha = plan.background
    if alpha < 255 and not frame.hasalpha():
        frame = frame.bandjoin(255)
    colour = [red, green, blue, alpha] if frame.hasalpha() else [red, green, blue]
    padded = frame.embed(
        left, top, canvas.width, canvas.height, extend="background", background=colour
    )
    return padded, plan
