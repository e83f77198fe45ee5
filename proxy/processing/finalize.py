"""Join frames, tag sRGB and encode. libvips is lazy: most pixel work happens here, so a
deadline watchdog is armed around the encode itself and kills it when time runs out.
Each format's saver and fixed options are the formats table's; the settings and the plan
add the rest.

``FixedEncode`` is the ``fixed`` encoding strategy (see ``rendered``): the plan's quality,
one encode of all frames; the ``q=auto`` strategies (``compress``) use the same savers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyvips

from proxy.errors import DeadlineExceeded
from proxy.formats import output
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.plan import RenderPlan
from proxy.processing.rendered import EncodeJob, Rendered
from proxy.processing.watchdog import Watchdog

T = TypeVar("T")


@functools.cache
def srgb_profile() -> bytes:
    """libvips' compact built-in sRGB profile (480 bytes)."""
    probe = pyvips.Image.black(1, 1, bands=3).copy(interpretation="srgb")
    return bytes(probe.icc_transform("srgb", input_profile="srgb").get("icc-profile-data"))


def assemble(
    frames: list[pyvips.Image], plan: RenderPlan, delays: list[int] | None = None, loop: int = 0
) -> pyvips.Image:
    """One image ready to save: frames stacked as pages, tagged sRGB."""
    if len(frames) == 1:
        image = frames[0].copy()
    else:
        image = pyvips.Image.arrayjoin(frames, across=1).copy()
        image.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
        image.set_type(pyvips.GValue.array_int_type, "delay", delays or [100] * len(frames))
        image.set_type(pyvips.GValue.gint_type, "loop", loop)
    if image.bands >= 3:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", srgb_profile())
    return image


@dataclass(frozen=True)
class EncoderSettings:
    avif: AvifEffort
    png_compression: int = 6
    webp_effort: int = 4
    webp_smart_subsample: bool = False
    jpeg_progressive: bool = False
    watchdog: Watchdog = field(default_factory=Watchdog, compare=False, repr=False)


def save_options(
    plan: RenderPlan, encoder: EncoderSettings, quality: int | None = None, pixels: int = 0
) -> tuple[str, dict[str, Any]]:
    """libvips saver suffix and options; ``quality`` overrides the plan's (for q=auto);
    ``pixels``: the size of the image to encode, which lowers the AVIF effort when large."""
    q = quality if quality is not None else plan.quality
    fmt = output(plan.format)
    assert fmt.saver is not None  # every output format has one
    fixed = dict(fmt.save_options)
    if plan.format == "jpeg":
        return fmt.saver, {
            "Q": q,
            "interlace": encoder.jpeg_progressive or plan.progressive,
            **fixed,
        }
    if plan.format == "png":
        return fmt.saver, {"compression": encoder.png_compression, **fixed}
    if plan.format == "webp":
        if plan.lossless:
            return fmt.saver, {"lossless": True, "effort": encoder.webp_effort, **fixed}
        return fmt.saver, {
            "Q": q,
            "effort": encoder.webp_effort,
            "smart_subsample": encoder.webp_smart_subsample,
            **fixed,
        }
    if plan.format == "avif":
        effort = encoder.avif.for_pixels(pixels)
        return fmt.saver, {"Q": q, "effort": effort, **fixed}
    return fmt.saver, fixed


def _watched(
    image: pyvips.Image, work: Callable[[], T], encoder: EncoderSettings, deadline: float
) -> T:
    """``work()`` (which evaluates ``image``), or ``DeadlineExceeded`` once the watchdog
    killed it at ``deadline``: no render thread keeps computing after its request was
    answered."""
    with encoder.watchdog.watch(image, deadline) as killed:
        try:
            return work()
        except pyvips.Error:
            if killed():
                raise DeadlineExceeded("processing took longer than the request deadline") from None
            raise


def save(
    image: pyvips.Image,
    suffix: str,
    options: dict[str, Any],
    encoder: EncoderSettings,
    deadline: float,
) -> bytes:
    """``image`` encoded, under the deadline watchdog."""
    return _watched(
        image, lambda: bytes(image.write_to_buffer(suffix, **options)), encoder, deadline
    )


def materialize(image: pyvips.Image, encoder: EncoderSettings, deadline: float) -> pyvips.Image:
    """``image`` computed into memory, under the deadline watchdog."""
    return _watched(image, image.copy_memory, encoder, deadline)


@dataclass(frozen=True)
class FixedEncode:
    """One encode at the plan's quality, or at ``quality`` (a q=auto answer that needs no
    measuring: a large output's fixed quality, or the fallback when the metric failed);
    ``notes`` say why."""

    quality: int | None = None
    notes: tuple[str, ...] = ()

    def encode(self, frames: list[pyvips.Image], plan: RenderPlan, job: EncodeJob) -> Rendered:
        job.lap("compress")  # nothing to choose: the quality is settled
        if len(frames) > 1:
            # One frame's pipeline at a time, each kept as its small output: left lazy, the
            # encoder runs every frame's chain at once (1.2 GB for 100 frames of 1000x1000).
            frames = [materialize(frame, job.encoder, job.deadline) for frame in frames]
            job.lap("frames")
        image = assemble(frames, plan, job.delays, job.loop)
        pixels = image.width * image.height
        suffix, options = save_options(plan, job.encoder, self.quality, pixels)
        body = save(image, suffix, options, job.encoder, job.deadline)
        quality = self.quality if self.quality is not None else plan.quality
        notes = (*plan.notes, *self.notes)
        return Rendered(body, plan, quality, plan.lossless, notes)
