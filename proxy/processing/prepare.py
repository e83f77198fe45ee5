"""Read the header (no pixels decoded) and decide geometry, format and quality."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyvips

from proxy.config import LimitsConfig
from proxy.errors import BadParameter, DamagedImage, SourceTooLarge, UnsupportedImage
from proxy.geometry import Size, plan_layout, shrink_on_load
from proxy.negotiate import AcceptClass, choose_format
from proxy.params import TransformParams
from proxy.policies import Policy
from proxy.processing.plan import CropDecision, RenderPlan, SourceInfo

# libvips loader name prefix -> our format name; anything else is refused.
LOADERS = {
    "jpegload": "jpeg",
    "pngload": "png",
    "webpload": "webp",
    "gifload": "gif",
    "heifload": "heif",
    "tiffload": "tiff",
    "svgload": "svg",
}
# Strategies that arrive with the analysis stage fall back to libvips attention (and say so).
CROP_FALLBACK = {"smart": "attention", "faces": "attention"}


@dataclass(frozen=True)
class PrepareOptions:
    limits: LimitsConfig
    allow_svg: bool
    default_policy: str


def probe(blob: bytes, limits: LimitsConfig, *, allow_svg: bool) -> SourceInfo:
    """Header facts, with the byte, pixel and frame limits enforced before decoding."""
    if len(blob) > limits.max_source_bytes:
        raise SourceTooLarge(f"source is {len(blob)} bytes; the limit is {limits.max_source_bytes}")
    try:
        header = pyvips.Image.new_from_buffer(blob, "")
        loader = str(header.get("vips-loader"))
    except pyvips.Error as exc:
        message = str(exc)
        if "not in a known format" in message or "is not a known" in message:
            raise UnsupportedImage("the source is not an image format Loupe reads") from None
        raise DamagedImage(f"cannot read the image header: {message.splitlines()[0]}") from None
    fmt = next((name for prefix, name in LOADERS.items() if loader.startswith(prefix)), None)
    if fmt is None or (fmt == "svg" and not allow_svg):
        raise UnsupportedImage(f"source format ({loader.removesuffix('_buffer')}) is not allowed")
    fields = set(header.get_fields())
    pages = int(header.get("n-pages")) if "n-pages" in fields else 1
    orientation = int(header.get("orientation")) if "orientation" in fields else 1
    width, height = header.width, header.height
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if width * height > limits.max_source_pixels:
        raise SourceTooLarge(
            f"source is {width}x{height} = {width * height} pixels; "
            f"the limit is {limits.max_source_pixels}"
        )
    if pages > limits.max_frames:
        raise SourceTooLarge(f"source has {pages} frames; the limit is {limits.max_frames}")
    return SourceInfo(
        format=fmt,
        width=width,
        height=height,
        pages=pages,
        orientation=orientation,
        has_alpha=bool(header.hasalpha()),
        bytes=len(blob),
    )


def _crop_decision(params: TransformParams, needs_window: bool) -> tuple[str, str | None]:
    """(strategy that runs, strategy asked for)."""
    if not needs_window:
        return "none", None
    requested = params.crop
    return CROP_FALLBACK.get(requested, requested), requested


def make_plan(
    info: SourceInfo,
    params: TransformParams,
    accept: AcceptClass,
    policies: Mapping[str, Policy],
    options: PrepareOptions,
) -> RenderPlan:
    layout = plan_layout(
        Size(info.width, info.height),
        width=params.width,
        height=params.height,
        fit=params.fit,
        upscale=params.upscale,
        rect=params.rect,
        focal=(params.focal_x, params.focal_y) if params.crop == "focalpoint" else (0.5, 0.5),
    )
    if layout is None:
        raise BadParameter(f"rect lies outside the {info.width}x{info.height} source")
    limits = options.limits
    canvas = layout.canvas
    if canvas.width * canvas.height > limits.max_output_pixels:
        raise BadParameter(
            f"output {canvas.width}x{canvas.height} exceeds {limits.max_output_pixels} pixels"
        )
    policy = policies[params.policy or options.default_policy]
    wants_alpha = info.has_alpha or (params.background[3] < 255 and params.fit == "fill")
    choice = choose_format(
        params.fm,
        accept,
        has_alpha=wants_alpha,
        animated=info.pages > 1,
        lossy_allowed=policy.lossy,
    )
    if choice.animated and canvas.width * canvas.height * info.pages > limits.max_animation_pixels:
        raise SourceTooLarge(
            f"{info.pages} frames of {canvas.width}x{canvas.height} exceed the animation budget "
            f"of {limits.max_animation_pixels} pixels; ask for a smaller size"
        )
    if choice.lossless or choice.format in ("png", "gif"):
        quality = None
    else:
        quality = (
            params.quality if params.quality is not None else policy.quality_for(choice.format)
        )
    strategy, requested = _crop_decision(params, layout.needs_window)
    # Who chose the region: the URL's author, or the server's (AI) default strategy.
    by = "user" if params.crop_explicit or strategy == "none" else "ai"
    notes = (choice.note,) if choice.note else ()
    window = Size(layout.window.w, layout.window.h)
    return RenderPlan(
        source=info,
        layout=layout,
        crop=CropDecision(strategy, layout.window, by, requested),  # type: ignore[arg-type]
        crop_strategy=strategy,
        format=choice.format,
        quality=quality,
        lossless=choice.lossless,
        animated=choice.animated,
        background=params.background,
        policy=policy.name,
        shrink=shrink_on_load(window, layout.image) if info.format in ("jpeg", "webp") else 1,
        notes=notes,
    )
