"""Decide geometry, format and quality from the validated header and the request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from proxy.config import LimitsConfig
from proxy.cropping.overrides import CropOverride, fits_source
from proxy.errors import BadParameter, SourceTooLarge
from proxy.formats import output
from proxy.geometry import Layout, Rect, Size, plan_layout, shrink_on_load, turn_rect, turned_size
from proxy.negotiate import AcceptClass, FormatChoice, choose_format
from proxy.params import AI_CROPS, TransformParams
from proxy.policies import Policy
from proxy.processing.encoder_memory import encoder_bytes
from proxy.processing.plan import CropDecision, RenderPlan, SourceInfo


@dataclass(frozen=True)
class PrepareOptions:
    limits: LimitsConfig
    default_policy: str


def _crop_decision(params: TransformParams, needs_window: bool) -> tuple[str, str | None]:
    """(strategy that runs, strategy asked for)."""
    if not needs_window:
        return "none", None
    # smart/faces use the analysis when there is one; focus falls back to attention.
    return params.crop, params.crop


def human_region(
    params: TransformParams, info: SourceInfo, override: CropOverride | None
) -> Rect | None:
    """The override's region when it governs this request: a ``fit=crop`` of a w x h box
    (its aspect already matched) with no ``rect`` of the URL's own, inside the source; in
    the turned picture's coordinates when the URL has ``rot``/``flip``."""
    if override is None or params.fit != "crop" or params.rect is not None:
        return None
    if params.width is None or params.height is None:
        return None
    if not fits_source(override.rect, info.width, info.height):
        return None  # stored for an older, larger version of the source: ignore it
    return turn_rect(override.rect, Size(info.width, info.height), params.rotate, params.flip)


def _encoder_need(choice: FormatChoice, pixels: int, alpha: bool) -> int:
    keeps_alpha = alpha and output(choice.format).alpha
    return encoder_bytes(choice.format, lossless=choice.lossless, alpha=keeps_alpha, pixels=pixels)


def _within_encoder_memory(
    choice: FormatChoice,
    params: TransformParams,
    accept: AcceptClass,
    layout: Layout,
    info: SourceInfo,
    limits: LimitsConfig,
    alpha: bool,
    lossy: bool,
) -> FormatChoice:
    """The format choice if its encoder fits ``limits.max_encoder_bytes`` for this output;
    ``fm=auto`` falls back to the next format the client takes (AVIF, then WebP, then
    JPEG/PNG: each leaner than the one before); an explicit format is a 400."""
    canvas = layout.canvas
    pixels = canvas.width * canvas.height * (info.pages if choice.animated else 1)
    need = _encoder_need(choice, pixels, alpha)
    if need <= limits.max_encoder_bytes:
        return choice
    if params.fm == "auto":
        for fallback_accept in (
            AcceptClass(avif=False, webp=accept.webp),
            AcceptClass(False, False),
        ):
            fallback = choose_format(
                "auto",
                fallback_accept,
                has_alpha=alpha,
                animated=info.pages > 1,
                lossy_allowed=lossy,
            )
            if _encoder_need(fallback, pixels, alpha) <= limits.max_encoder_bytes:
                return replace(fallback, note=f"{choice.format}-too-large")
    raise BadParameter(
        f"encoding {canvas.width}x{canvas.height} as {choice.format} needs about "
        f"{need >> 20} MiB; the limit is {limits.max_encoder_bytes >> 20} MiB: ask for a "
        "smaller size or another format"
    )


def make_plan(
    info: SourceInfo,
    params: TransformParams,
    accept: AcceptClass,
    policies: Mapping[str, Policy],
    options: PrepareOptions,
    override: CropOverride | None = None,
) -> RenderPlan:
    region = human_region(params, info, override)
    picture = turned_size(Size(info.width, info.height), params.rotate)  # what w, h, rect see
    layout = plan_layout(
        picture,
        width=params.width,
        height=params.height,
        fit=params.fit,
        upscale=params.upscale,
        rect=region or params.rect,
        focal=(params.focal_x, params.focal_y) if params.crop == "focalpoint" else (0.5, 0.5),
        aspect=params.aspect,
    )
    if layout is None:
        raise BadParameter(f"rect lies outside the {picture.width}x{picture.height} source")
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
    # libvips composites every frame onto the full canvas, whatever its own size: a 1x1
    # frame on a 10000x10000 screen costs 100 MP. The header's canvas and frame count
    # bound that work before a pixel is decoded (a still output decodes one frame only).
    decoded = info.width * info.height * info.pages
    if choice.animated and decoded > limits.max_animation_canvas_pixels:
        raise SourceTooLarge(
            f"{info.pages} frames on a {info.width}x{info.height} canvas decode {decoded} "
            f"pixels; the limit is {limits.max_animation_canvas_pixels}"
        )
    if choice.animated and canvas.width * canvas.height * info.pages > limits.max_animation_pixels:
        raise SourceTooLarge(
            f"{info.pages} frames of {canvas.width}x{canvas.height} exceed the animation budget "
            f"of {limits.max_animation_pixels} pixels; ask for a smaller size"
        )
    choice = _within_encoder_memory(
        choice, params, accept, layout, info, limits, wants_alpha, policy.lossy
    )
    quality_auto = False
    if choice.lossless or not output(choice.format).lossy:
        quality = None
    else:
        # q=auto starts from the policy's fixed quality, which is also its fallback.
        quality = (
            params.quality if params.quality is not None else policy.quality_for(choice.format)
        )
        quality_auto = params.quality is None and not choice.animated
    strategy, requested = _crop_decision(params, layout.needs_window)
    # Who chose the region: a strategy that looks at the pixels, or the URL's own geometry.
    by = "ai" if strategy in AI_CROPS else "user"
    decision = CropDecision(strategy, layout.window, by, requested)  # type: ignore[arg-type]
    if region is not None and override is not None:
        # A human's crop: the region is theirs; a sliver of aspect mismatch is trimmed evenly.
        strategy = "center"
        decision = CropDecision("override", layout.window, override.by)
    notes = (choice.note,) if choice.note else ()
    window = Size(layout.window.w, layout.window.h)
    return RenderPlan(
        source=info,
        layout=layout,
        crop=decision,
        crop_strategy=strategy,
        format=choice.format,
        quality=quality,
        lossless=choice.lossless,
        animated=choice.animated,
        background=params.background,
        policy=policy,
        shrink=shrink_on_load(window, layout.image) if info.format in ("jpeg", "webp") else 1,
        notes=notes,
        quality_auto=quality_auto,
        rotate=params.rotate,
        flip=params.flip,
        blur=params.blur,
        sharp=params.sharp,
        progressive=params.progressive and choice.format == "jpeg",
    )
