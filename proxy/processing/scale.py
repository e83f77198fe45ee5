"""Resize to the exact output size, in premultiplied alpha so edges do not darken."""

from __future__ import annotations

import pyvips

from proxy.processing.plan import RenderPlan


def scale(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    target = plan.layout.image
    if (frame.width, frame.height) == (target.width, target.height):
        return frame, plan
    alpha = frame.hasalpha()
    work = frame.premultiply() if alpha else frame
    resized = work.resize(target.width / frame.width, vscale=target.height / frame.height)
    if alpha:
        resized = resized.unpremultiply().cast("uchar")
    if (resized.width, resized.height) != (target.width, target.height):
        # Rounding inside resize can miss by a pixel; the contract is an exact size.
        resized = resized.gravity("centre", target.width, target.height, extend="copy")
    return resized, plan
