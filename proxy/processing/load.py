"""Decode the source, shrinking on load (JPEG DCT scaling, WebP scaled decode) when the
output is much smaller, and split animations into frames."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pyvips

from proxy.errors import DamagedImage
from proxy.params import ANALYSIS_CROPS, VIPS_CROPS
from proxy.processing.focus import analysis_usable
from proxy.processing.plan import RenderPlan
from proxy.processing.validate import COMMON_LOAD

Frames = list[pyvips.Image]


@dataclass(frozen=True)
class Animation:
    delays: list[int]  # ms per frame
    loop: int


def load(
    blob: bytes, plan: RenderPlan, header: pyvips.Image | None = None
) -> tuple[Frames, RenderPlan, Animation]:
    """``header``: validation's image, reused when it was opened with the options needed."""
    options: dict[str, Any] = {"fail_on": "truncated"}
    info = plan.source
    if plan.animated:
        options["n"] = info.pages
    if plan.shrink > 1 and info.format == "jpeg":
        options["shrink"] = plan.shrink
    elif plan.shrink > 1 and info.format == "webp":
        options["scale"] = 1 / plan.shrink
    rotates = info.orientation not in (1, 0) or bool(plan.rotate or plan.flip)
    # Pixel-based crop strategies read the image twice (proxy, then crop): random access.
    looks_at_pixels = plan.crop_strategy in VIPS_CROPS or (
        plan.crop_strategy in ANALYSIS_CROPS and not analysis_usable(plan)
    )
    random_access = plan.animated or rotates or looks_at_pixels
    if not random_access:
        options["access"] = "sequential"
    try:
        if header is not None and options == COMMON_LOAD:
            image = header
        else:
            image = pyvips.Image.new_from_buffer(blob, "", **options)
    except pyvips.Error as exc:
        raise DamagedImage(f"cannot decode the image: {str(exc).splitlines()[0]}") from None
    animation = Animation([], 0)
    if plan.animated:
        fields = set(image.get_fields())
        delays = list(image.get("delay")) if "delay" in fields else []
        loop = int(image.get("loop")) if "loop" in fields else 0
        page_height = int(image.get("page-height"))
        frames = [
            image.crop(0, top, image.width, page_height)
            for top in range(0, image.height - page_height + 1, page_height)
        ]
        width = image.width
        animation = Animation([int(d) for d in delays][: len(frames)] or [100] * len(frames), loop)
    else:
        frames = [image]
        width = image.height if info.orientation in (5, 6, 7, 8) else image.width
    return frames, replace(plan, load_scale=width / info.width), animation
