"""Flatten alpha onto ``bg`` only when the output format cannot carry it; the plan records
it so the response can say so (alpha is never dropped silently)."""

from __future__ import annotations

from dataclasses import replace

import pyvips

from proxy.formats import ALPHA_FORMATS
from proxy.processing.plan import RenderPlan


def flatten(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    if not frame.hasalpha() or plan.format in ALPHA_FORMATS:
        return frame, plan
    flat = frame.flatten(background=list(plan.background[:3])).cast("uchar")
    return flat, replace(plan, alpha_flattened=True)
