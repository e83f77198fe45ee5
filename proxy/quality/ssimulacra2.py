"""SSIMULACRA 2, the perceptual quality metric that ``q=auto`` targets.

A numpy/pyvips implementation of ``tools/ssimulacra2.cc`` from libjxl (Jon Sneyers, weights
of April 2023): linear RGB -> positive XYB, six scales (2x2 box downsampling in linear RGB),
per scale and channel an SSIM map (without the luminance denominator) and two edge maps
(ringing, blurring), each pooled by its 1-norm and 4-norm: 108 features, weighted and mapped
to a score where 100 means identical.

Why there are two paths. Where both images are flat the SSIM error is 0 in exact arithmetic,
and what the reference reports there is its own float32 rounding noise, which its recursive
Gaussian accumulates along rows and columns. Some heavily weighted features (the 1-norms of
Y at 1:4 and 1:8 and of B at 1:16, and 4-norms from 1:4 on) average that noise over every
flat pixel, so a more accurate blur scores flat content (screenshots, UI) up to 1.3 points
above the C++ tool. Those maps (SSIM weight >= ``EXACT_MIN_WEIGHT`` at scale >= ``EXACT_MIN_SCALE``)
are computed by the ``_exact`` functions, which repeat the reference's float32 arithmetic
operation for operation (its fused multiply-adds, its 4-lane horizontal recursion, its
cube-root and sRGB approximations, its summation orders) and reproduce it bit for bit.
Everything else takes the fast path: a float32 FIR twin of the same Gaussian, both passes as
BLAS products. Over the 56 reference pairs the result is within 0.14 of the C++ tool (the
fast 1:2 scale is the remaining gap, on a near-lossless screenshot); with every map exact
(``_score_linear(..., min_weight=0, exact_scale=0, exact_weight=0)``, ~10x slower) the gap
is below 1e-4.

Shortcuts, both measured on the reference pairs: a (scale, channel) whose six weights are all
below ``MIN_CHANNEL_WEIGHT`` is not computed (scores move by < 0.001); embedded ICC profiles
are not applied (inputs are taken as sRGB, as Loupe's outputs are). Peak memory is about
100 bytes per pixel. The functions keep no state and are safe to call from several threads.

``Reference(image)`` prepares the reference's half once (linear RGB, pyramid, XYB planes and
their blurs) for scoring several encodes of it, as q=auto's probes do: the same scores bit for
bit (each plane is blurred on its own), two scores of an 800x533 pair in 98.5 ms of CPU
instead of 128.6 ms.

The parts: ``ssimulacra2_core`` (the reference's constants, XYB, the maps and their pooling),
``ssimulacra2_fast`` and ``ssimulacra2_exact`` (the two blur paths); this module chooses
between them per map and holds the public API.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.imaging import to_array
from proxy.quality.ssimulacra2_core import (
    _TILE,
    _WEIGHTS,
    _downsample,
    _linear_lut,
    _Pool,
    _srgb_to_linear,
    _Want,
)
from proxy.quality.ssimulacra2_exact import _exact_reference, _ExactReference, _features_exact
from proxy.quality.ssimulacra2_fast import _fast_reference, _FastReference, _features_fast

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

_f32 = np.float32
_f64 = np.float64

MIN_SIZE = 8
NUM_SCALES = 6
# A channel at a scale is skipped when all its weights are below this (see module doc).
MIN_CHANNEL_WEIGHT = 0.01
# SSIM maps whose weight reaches this, from this scale on, are computed bit-exactly.
EXACT_MIN_WEIGHT = 5.0
EXACT_MIN_SCALE = 2  # 1 also makes Y at 1:2 exact: gap 0.13 -> 0.01, but ~1.8x slower
# Alpha is blended over these grey levels (encoded sRGB); the worse score is kept.
ALPHA_BACKGROUNDS = (0.1, 0.9)


# --------------------------------------------------------------------------------------
# Driver.


def _scale_count(h: int, w: int) -> int:
    """How many scales the reference computes: it stops once the previous one is < 8 px."""
    count = 1
    while count < NUM_SCALES and h >= MIN_SIZE and w >= MIN_SIZE:
        h, w = (h + 1) // 2, (w + 1) // 2
        count += 1
    return count


def _weights(scales: int) -> F64:
    """(scale, channel, 6) weights. The reference reads them in sequence for however many
    scales the image has, so small images use shifted weights: kept, to score identically."""
    w = _WEIGHTS[: 3 * scales * 6].reshape(3, scales, 6)
    return np.ascontiguousarray(w.transpose(1, 0, 2))


@dataclass(frozen=True)
class _ScaleReference:
    """Everything of one scale that depends on the reference only."""

    weights: F64  # (channel, 6): ssim1, ring1, blur1, ssim4, ring4, blur4
    wants: dict[int, _Want]
    exact: list[int]
    fast: list[int]
    exact_ref: _ExactReference | None
    fast_ref: _FastReference | None


def _reference_scales(
    lin1: F32,
    *,
    min_weight: float = MIN_CHANNEL_WEIGHT,
    exact_scale: int = EXACT_MIN_SCALE,
    exact_weight: float = EXACT_MIN_WEIGHT,
) -> list[_ScaleReference]:
    """The reference's half of the work, every scale: done once, however many distorted
    images (q=auto's probes) are then scored against it."""
    scales = _scale_count(*lin1.shape[1:])
    weights = _weights(scales)
    out = []
    for s in range(scales):
        if s:
            lin1 = _downsample(lin1)
        wts = weights[s]
        wanted = [c for c in range(3) if wts[c].max() >= min_weight]
        wants = {c: _Want(bool(wts[c][0] or wts[c][3]), bool(wts[c][1] or wts[c][4]),
                          bool(wts[c][2] or wts[c][5])) for c in wanted}  # fmt: skip
        exact = [c for c in wanted if s >= exact_scale and wts[c][[0, 3]].max() >= exact_weight]
        fast = [c for c in wanted if c not in exact]
        out.append(
            _ScaleReference(
                weights=wts,
                wants=wants,
                exact=exact,
                fast=fast,
                exact_ref=_exact_reference(lin1, exact) if exact else None,
                fast_ref=_fast_reference(lin1, fast, [wants[c] for c in fast]) if fast else None,
            )
        )
    return out


def _score_against(reference: list[_ScaleReference], lin2: F32) -> float:
    total = 0.0
    for s, scale in enumerate(reference):
        if s:
            lin2 = _downsample(lin2)
        pools: dict[int, _Pool] = {}
        if scale.exact_ref is not None:
            got = _features_exact(
                scale.exact_ref, lin2, scale.exact, [scale.wants[c] for c in scale.exact]
            )
            pools.update(zip(scale.exact, got, strict=True))
        if scale.fast_ref is not None:
            got = _features_fast(
                scale.fast_ref, lin2, scale.fast, [scale.wants[c] for c in scale.fast]
            )
            pools.update(zip(scale.fast, got, strict=True))
        for c, pool in pools.items():
            f = pool.features()  # ssim1, ssim4, ring1, ring4, blur1, blur4
            total += float(np.dot(scale.weights[c], (f[0], f[2], f[4], f[1], f[3], f[5])))
    return _final(total)


def _score_linear(
    lin1: F32,
    lin2: F32,
    *,
    min_weight: float = MIN_CHANNEL_WEIGHT,
    exact_scale: int = EXACT_MIN_SCALE,
    exact_weight: float = EXACT_MIN_WEIGHT,
) -> float:
    """Score of two (3, H, W) linear-RGB float32 images. With ``min_weight=0,
    exact_scale=0, exact_weight=0`` every map is computed, all bit-exactly (slow)."""
    reference = _reference_scales(
        lin1, min_weight=min_weight, exact_scale=exact_scale, exact_weight=exact_weight
    )
    return _score_against(reference, lin2)


def _final(total: float) -> float:
    """The reference's mapping of the weighted sum to the 100-point scale."""
    x = total * 0.9562382616834844
    x = 2.326765642916932 * x - 0.020884521182843837 * x * x + 6.248496625763138e-05 * x**3
    return 100.0 - 10.0 * x**0.6276336467831387 if x > 0 else 100.0


# --------------------------------------------------------------------------------------
# Public API.


def _prepare(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB with 3 bands plus an optional alpha: 16-bit, grey and other colour
    spaces are converted the way libvips converts them for display."""
    if image.interpretation in ("rgb16", "grey16") or image.interpretation not in (
        "srgb",
        "rgb",
        "b-w",
        "multiband",
    ):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = (image >> 8 if image.format == "ushort" else image).cast("uchar")
    if image.bands in (1, 2):
        grey = image[0]
        image = grey.bandjoin([grey, grey, *([image[1]] if image.bands == 2 else [])])
    if image.bands not in (3, 4):
        raise ValueError(f"cannot score an image with {image.bands} bands")
    return image


def _linear(image: pyvips.Image, background: float | None) -> F32:
    """(3, H, W) linear RGB; alpha, if any, composited over a grey first (in sRGB)."""
    h, w = image.height, image.width
    if image.bands == 3:
        lut = pyvips.Image.new_from_memory(_linear_lut().tobytes(), 256, 1, 1, "float")
        interleaved = to_array(image.maplut(lut))
        out = np.empty((3, h, w), dtype=np.float32)
        for r in range(0, h, _TILE):  # to planes, a band of rows at a time (in cache)
            out[:, r : r + _TILE] = interleaved[r : r + _TILE].transpose(2, 0, 1)
        return out
    pixels = to_array(image)
    scale = _f32(1.0) / _f32(255.0)
    rgb = pixels.transpose(2, 0, 1)[:3].astype(np.float32) * scale
    alpha = pixels[..., 3].astype(np.float32) * scale
    bg = _f32(0.5 if background is None else background)
    return _srgb_to_linear(alpha * rgb + (_f32(1.0) - alpha) * bg)


def _check_sizes(reference: pyvips.Image, distorted: pyvips.Image) -> None:
    if (reference.width, reference.height) != (distorted.width, distorted.height):
        raise ValueError(
            "SSIMULACRA2 needs images of the same size, got "
            f"{reference.width}x{reference.height} and {distorted.width}x{distorted.height}"
        )
    if reference.width < MIN_SIZE or reference.height < MIN_SIZE:
        raise ValueError(
            f"SSIMULACRA2 needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, "
            f"got {reference.width}x{reference.height}"
        )


def score(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """SSIMULACRA 2 of ``distorted`` against ``reference``: 100 means identical, 90 visually
    lossless at 1:1, 70 high, 50 medium and 30 low quality; it can go below 0.

    With alpha on either side both are blended over a dark and a light grey, as libjxl's
    tool does, and the worse score is returned.
    """
    _check_sizes(reference, distorted)
    a, b = _prepare(reference), _prepare(distorted)
    if a.bands == 3 and b.bands == 3:
        return _score_linear(_linear(a, None), _linear(b, None))
    if a.bands == 3:
        a = a.bandjoin(255)
    if b.bands == 3:
        b = b.bandjoin(255)
    return min(_score_linear(_linear(a, bg), _linear(b, bg)) for bg in ALPHA_BACKGROUNDS)


class Reference:
    """A reference prepared once to score several distorted versions of it: ``q=auto``'s
    probes. Its half of the work (linear RGB, the pyramid, its XYB planes and their blurs)
    is about 30% of a score; the results are the same as :func:`score`'s, bit for bit.
    Prepared lazily, so a reference that is never scored costs nothing."""

    def __init__(self, image: pyvips.Image) -> None:
        self.image = image
        self._prepared = _prepare(image)  # libvips is lazy: no pixel work here
        self._scales: list[_ScaleReference] | None = None
        self._lock = threading.Lock()

    def __call__(self, distorted: pyvips.Image) -> float:
        _check_sizes(self.image, distorted)
        b = _prepare(distorted)
        if self._prepared.bands != 3 or b.bands != 3:
            return score(self.image, distorted)  # alpha: blended per background, as there
        with self._lock:
            if self._scales is None:
                self._scales = _reference_scales(_linear(self._prepared, None))
        return _score_against(self._scales, _linear(b, None))


def score_files(ref_path: str, dist_path: str) -> float:
    """:func:`score` of two image files (any format libvips reads)."""
    return score(pyvips.Image.new_from_file(ref_path), pyvips.Image.new_from_file(dist_path))
