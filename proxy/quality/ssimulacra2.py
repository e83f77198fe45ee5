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
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.imaging import to_array

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

_C2 = 0.0009

# 108 weights, ordered channel (X, Y, B) > scale > norm (1, 4) > map (ssim, ringing, blur).
_WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0,
        0.0, 0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
        0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
        11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
        1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072,
        0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967,
        0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398,
        0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
        0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296,
        1.027889937768264, 225.20515300849274, 0.0, 0.0, 19.213238186143016,
        0.0011401524586618361, 0.001237755635509985, 176.39317598450694, 0.0, 0.0,
        24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
        34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0,
        0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336,
        0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
        23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353,
        0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
        0.0005130064588990679, 0.0, 0.00010854057858411537,
    ],
    dtype=np.float64,
)  # fmt: skip


# --------------------------------------------------------------------------------------
# Constants of the reference, rounded to float32 the way the C++ rounds them.


def _opsin_matrix() -> F32:
    """The opsin absorbance matrix; the diagonal terms are computed in float, as in C++."""
    one = _f32(1.0)
    m02, m00 = _f32(0.078), _f32(0.30)
    m12, m10 = _f32(0.078), _f32(0.23)
    m20, m21 = _f32(0.24342268924547819), _f32(0.20476744424496821)
    return np.array(
        [
            [m00, (one - m02) - m00, m02],
            [m10, (one - m12) - m10, m12],
            [m20, m21, (one - m20) - m21],
        ],
        dtype=np.float32,
    )


_OPSIN = _opsin_matrix()
_OPSIN_BIAS = _f32(0.0037930732552754493)
_NEG_CBRT_BIAS = _f32(-np.cbrt(_f64(_OPSIN_BIAS)))

# TF_SRGB::DisplayFromEncoded: rational polynomial (numerator, denominator), low to high.
_SRGB_P = (2.200248328e-04, 1.043637593e-02, 1.624820318e-01, 7.961564959e-01, 8.210152774e-01)
_SRGB_Q = (2.631846970e-01, 1.076976492e00, 4.987528350e-01, -5.512498495e-02, 6.521209011e-03)


@dataclass(frozen=True)
class _Gauss:
    """libjxl's recursive Gaussian (Charalampidis 2016) for sigma 1.5, plus its FIR twin."""

    radius: int
    n2: F32  # (3,) input gain per cosine term
    d1: F32  # (3,) feedback
    mul_in: F32  # (3, 4) 4-lane unrolled coefficients of the horizontal pass
    mul_prev: F32
    mul_prev2: F32
    taps: F32  # the same filter as (2 * radius - 1) FIR taps, zero-padded borders


@cache
def _gauss() -> _Gauss:
    """``CreateRecursiveGaussian(1.5)``, computed in double and rounded to float like it."""
    sigma = 1.5
    radius = round(3.2795 * sigma + 0.2546)
    omega = [(2 * k + 1) * math.pi / (2.0 * radius) for k in range(3)]
    p = [1.0 / math.tan(0.5 * omega[0]), -1.0 / math.tan(0.5 * omega[1])]
    p.append(1.0 / math.tan(0.5 * omega[2]))
    r = [p[0] * p[0] / math.sin(omega[0]), -p[1] * p[1] / math.sin(omega[1])]
    r.append(p[2] * p[2] / math.sin(omega[2]))
    rho = [math.exp(-0.5 * sigma * sigma * w * w) / radius for w in omega]
    d13 = p[0] * r[1] - r[0] * p[1]
    zeta15 = (p[1] * r[2] - r[1] * p[2]) / d13
    zeta35 = (p[2] * r[0] - r[2] * p[0]) / d13
    a = [[p[0], p[1], p[2]], [r[0], r[1], r[2]], [zeta15, zeta35, 1.0]]
    gamma = [1.0, radius * radius - sigma * sigma, zeta15 * rho[0] + zeta35 * rho[1] + rho[2]]
    inv = _inverse3(a)
    beta = [sum(inv[i][j] * gamma[j] for j in range(3)) for i in range(3)]

    n2 = [-beta[k] * math.cos(omega[k] * (radius + 1.0)) for k in range(3)]
    d1 = [-2.0 * math.cos(omega[k]) for k in range(3)]
    mul_in, mul_prev, mul_prev2 = [], [], []
    for k in range(3):
        d, n, dd = d1[k], n2[k], d1[k] * d1[k]
        mul_prev.append([-d, dd - 1.0, -dd * d + 2.0 * d, dd * dd - 3.0 * dd + 1.0])
        mul_prev2.append([-1.0, d, -dd + 1.0, dd * d - 2.0 * d])
        mul_in.append([n, -d * n, dd * n - n, -dd * d * n + 2.0 * d * n])

    n2f = np.array(n2, dtype=np.float32)
    d1f = np.array(d1, dtype=np.float32)
    # Impulse response of the float32 coefficients, run in float64: 2 * radius - 1 taps.
    size = 4 * radius + 1
    impulse = np.zeros(size)
    impulse[2 * radius] = 1.0
    resp = np.zeros(size)
    y1 = np.zeros(3)
    y2 = np.zeros(3)
    for n in range(-radius + 1, size):
        left, right = n - radius - 1, n + radius - 1
        s = (impulse[left] if left >= 0 else 0.0) + (impulse[right] if right < size else 0.0)
        y = n2f.astype(np.float64) * s - d1f.astype(np.float64) * y1 - y2
        y2, y1 = y1, y
        if n >= 0:
            resp[n] = y.sum()
    taps = resp[radius + 1 : 3 * radius].astype(np.float32)
    return _Gauss(
        radius=radius,
        n2=n2f,
        d1=d1f,
        mul_in=np.array(mul_in, dtype=np.float32),
        mul_prev=np.array(mul_prev, dtype=np.float32),
        mul_prev2=np.array(mul_prev2, dtype=np.float32),
        taps=taps,
    )


def _inverse3(m: list[list[float]]) -> list[list[float]]:
    """3x3 inverse through the adjugate, as libjxl does (so beta rounds identically)."""
    t = [
        [
            m[1][1] * m[2][2] - m[1][2] * m[2][1],
            m[0][2] * m[2][1] - m[0][1] * m[2][2],
            m[0][1] * m[1][2] - m[0][2] * m[1][1],
        ],
        [
            m[1][2] * m[2][0] - m[1][0] * m[2][2],
            m[0][0] * m[2][2] - m[0][2] * m[2][0],
            m[0][2] * m[1][0] - m[0][0] * m[1][2],
        ],
        [
            m[1][0] * m[2][1] - m[1][1] * m[2][0],
            m[0][1] * m[2][0] - m[0][0] * m[2][1],
            m[0][0] * m[1][1] - m[0][1] * m[1][0],
        ],
    ]
    det = m[0][0] * t[0][0] + m[0][1] * t[1][0] + m[0][2] * t[2][0]
    idet = 1.0 / det
    return [[t[j][i] * idet for i in range(3)] for j in range(3)]


def _fma(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike) -> F32:
    """float32 fused multiply-add: the product is exact in float64, one rounding to float32."""
    t: F64 = np.multiply(a, b, dtype=np.float64)
    np.add(t, c, out=t)
    return t.astype(np.float32)


def _srgb_to_linear(x: F32) -> F32:
    """libjxl's sRGB decoding (a float32 rational polynomial, not the exact power law)."""
    yp = np.full(x.shape, _SRGB_P[4], dtype=np.float32)
    yq = np.full(x.shape, _SRGB_Q[4], dtype=np.float32)
    for i in (3, 2, 1, 0):
        yp = _fma(yp, x, _f32(_SRGB_P[i]))
        yq = _fma(yq, x, _f32(_SRGB_Q[i]))
    poly = yp / yq
    low = x * (_f32(1.0) / _f32(12.92))
    out: F32 = np.where(x > _f32(0.04045), poly, low).astype(np.float32)
    return out


@cache
def _linear_lut() -> F32:
    """Linear value of each 8-bit code, as the reference computes it (v * (1/255) first)."""
    codes = np.arange(256, dtype=np.float32) * (_f32(1.0) / _f32(255.0))
    return _srgb_to_linear(codes.astype(np.float32))


# --------------------------------------------------------------------------------------
# Colour: linear RGB -> positive XYB.


def _cube_root_add(x: F32, add: np.float32) -> F32:
    """``CubeRootAndAdd``: libjxl's bit-trick seed plus Newton steps, rounding for rounding."""
    k1_3 = _f32(1.0) / _f32(3.0)
    k4_3 = _f32(4.0) / _f32(3.0)
    xa_3 = k1_3 * x
    bits = x.view(np.int32)
    seed = np.int32(0x54800000) - (bits >> 23) * np.int32(0x002AAAAA)
    r = np.where(bits == 0, np.int32(0), seed).astype(np.int32).view(np.float32)
    for _ in range(3):
        r2 = r * r
        r = _fma(-xa_3, r2 * r2, k4_3 * r)
    r2 = r * r
    r = _fma(k1_3, _fma(-x, r2 * r2, r), r)
    return _fma(r * r, x, add)


def _mixed_exact(lin: F32, row: int) -> F32:
    """One opsin channel, cube-rooted, minus the cube root of the bias (exact)."""
    m = _OPSIN[row]
    mixed = _fma(m[0], lin[0], _fma(m[1], lin[1], _fma(m[2], lin[2], _OPSIN_BIAS)))
    return _cube_root_add(np.maximum(mixed, _f32(0.0)), _NEG_CBRT_BIAS)


def _xyb_exact(lin: F32, channels: set[int]) -> dict[int, F32]:
    """Positive XYB planes (0: X, 1: Y, 2: B) exactly as the reference rounds them."""
    out: dict[int, F32] = {}
    half = _f32(0.5)
    c0 = _mixed_exact(lin, 0)
    c1 = _mixed_exact(lin, 1)
    y = half * (c0 + c1)
    if 0 in channels:
        out[0] = (half * (c0 - c1)) * _f32(14.0) + _f32(0.42)
    if 1 in channels:
        out[1] = y + _f32(0.01)
    if 2 in channels:
        out[2] = (_mixed_exact(lin, 2) - y) + _f32(0.55)
    return out


def _xyb_fast(lin: F32, channels: set[int], out: dict[int, F32]) -> None:
    """Positive XYB planes from (3, H, W) linear RGB into ``out[channel]`` (H, W), with
    numpy's cube root: a few ulps from the reference's approximation, which only the exact
    path needs to match. Works in strips of rows, so that big images stay in cache."""
    h, w = lin.shape[1:]
    rows = [0, 1, 2] if 2 in channels else [0, 1]
    matrix = _OPSIN[rows]
    step = max(1, _STRIP // w)
    mixed = np.empty((len(rows), step * w), dtype=np.float32)
    luma = np.empty(step * w, dtype=np.float32)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        n = (r1 - r0) * w
        flat = mixed[:, :n]
        np.matmul(matrix, lin[:, r0:r1].reshape(3, n), out=flat)
        flat += _OPSIN_BIAS
        np.cbrt(flat, out=flat)
        m = flat.reshape(len(rows), r1 - r0, w)
        if 0 in channels:
            x = out[0][r0:r1]
            np.subtract(m[0], m[1], out=x)  # the bias terms cancel
            x *= _f32(7.0)
            x += _f32(0.42)
        if 1 in channels or 2 in channels:
            y = luma[:n].reshape(r1 - r0, w)
            np.add(m[0], m[1], out=y)
            y *= _f32(0.5)
            y += _NEG_CBRT_BIAS
            if 2 in channels:
                b = out[2][r0:r1]
                np.subtract(m[2], y, out=b)
                b += _f32(0.55) + _NEG_CBRT_BIAS
            if 1 in channels:
                np.add(y, _f32(0.01), out=out[1][r0:r1])


def _downsample(lin: F32) -> F32:
    """2x2 box average of (3, H, W) linear RGB, edge pixels repeated, summed in the
    reference's order (it matters: later scales are compared bit for bit)."""
    h, w = lin.shape[1:]
    fh, fw = h // 2, w // 2
    out = np.empty((3, (h + 1) // 2, (w + 1) // 2), dtype=np.float32)
    quarter = _f32(0.25)
    top, bottom = lin[:, 0 : 2 * fh : 2], lin[:, 1 : 2 * fh : 2]
    step = max(1, _STRIP // max(1, w))
    for r0 in range(0, fh, step):  # in strips of rows, to stay in cache
        r1 = min(fh, r0 + step)
        main = out[:, r0:r1, :fw]
        np.add(top[:, r0:r1, 0 : 2 * fw : 2], top[:, r0:r1, 1 : 2 * fw : 2], out=main)
        main += bottom[:, r0:r1, 0 : 2 * fw : 2]
        main += bottom[:, r0:r1, 1 : 2 * fw : 2]
        main *= quarter
    if w % 2:  # last column: its right neighbour is itself
        col, below = top[:, :, w - 1], bottom[:, :, w - 1]
        out[:, :fh, fw] = (((col + col) + below) + below) * quarter
    if h % 2:
        left, right = lin[:, h - 1, 0 : 2 * fw : 2], lin[:, h - 1, 1 : 2 * fw : 2]
        out[:, fh, :fw] = (((left + right) + left) + right) * quarter
    if w % 2 and h % 2:
        px = lin[:, h - 1, w - 1]
        out[:, fh, fw] = (((px + px) + px) + px) * quarter
    return out


# --------------------------------------------------------------------------------------
# Fast path: 9-tap FIR blur, both passes as BLAS products, pooled in cache-sized strips.

_BAND = 8  # output rows per BLAS call (measured fastest)
_TILE = 256  # rows per block when transposing
_STRIP = 32768  # elements per pooling strip


@cache
def _band_matrix() -> F32:
    taps = _gauss().taps
    m = np.zeros((_BAND, _BAND + len(taps) - 1), dtype=np.float32)
    for j in range(_BAND):
        m[j, j : j + len(taps)] = taps
    return m


def _padded(planes: int, n: int, m: int) -> F32:
    """(planes, rows, m) buffer for a pass over n rows, which go to rows 4 .. 4 + n; the
    rows around them are zeroed (the reference pads with zeros)."""
    half = len(_gauss().taps) // 2
    buf = np.empty((planes, -(-n // _BAND) * _BAND + 2 * half, m), dtype=np.float32)
    buf[:, :half] = 0.0
    buf[:, half + n :] = 0.0
    return buf


def _fir_rows(buf: F32, n: int) -> F32:
    """Zero-padded FIR along axis 1 of a `_padded` buffer: a banded matrix product per
    8 output rows (batched over the planes), several times faster than shifted adds."""
    planes, _, m = buf.shape
    mat = _band_matrix()
    span = mat.shape[1]
    blocks = -(-n // _BAND)
    out = np.empty((planes, blocks * _BAND, m), dtype=np.float32)
    for r in range(0, blocks * _BAND, _BAND):
        np.matmul(mat, buf[:, r : r + span], out=out[:, r : r + _BAND])
    return out


def _transpose(src: F32, dst: F32) -> None:
    """dst = src.T for (n, m) -> (m, n), a band of rows at a time (cache friendly)."""
    for r in range(0, src.shape[0], _TILE):
        dst[:, r : r + _TILE] = src[r : r + _TILE].T


def _blur_fast(buf: F32, h: int, w: int) -> F32:
    """Blur the (P, H, W) planes held in a `_padded` buffer; returns them as (P, W, H).

    Both passes run along rows as BLAS products; the planes are transposed in between and
    the result is left transposed (the caller transposes its two sharp planes instead).
    """
    half = len(_gauss().taps) // 2
    planes = buf.shape[0]
    vertical = _fir_rows(buf, h)
    turned = _padded(planes, w, h)
    for p in range(planes):
        _transpose(vertical[p, :h], turned[p, half : half + w])
    return _fir_rows(turned, w)[:, :w]


@dataclass(frozen=True)
class _FastReference:
    """The reference's side of the fast path at one scale: its XYB planes (H, W), their
    blur (W, H, as ``_blur_fast`` leaves it) and, for edge maps, the planes transposed."""

    planes: dict[int, F32]
    blurred: dict[int, F32]
    sharp: dict[int, F32]


def _fast_reference(lin1: F32, channels: list[int], wants: list[_Want]) -> _FastReference:
    h, w = lin1.shape[1:]
    half = len(_gauss().taps) // 2
    buf = _padded(len(channels), h, w)
    rows = buf[:, half : half + h]
    _xyb_fast(lin1, set(channels), {c: rows[j] for j, c in enumerate(channels)})
    blurred = _blur_fast(buf, h, w)  # (P, W, H); each plane is blurred on its own
    sharp: dict[int, F32] = {}
    for j, (c, want) in enumerate(zip(channels, wants, strict=True)):
        if want.ring or want.blur:
            sharp[c] = np.empty((w, h), dtype=np.float32)
            _transpose(rows[j], sharp[c])
    return _FastReference(
        planes={c: rows[j] for j, c in enumerate(channels)},
        blurred={c: blurred[j] for j, c in enumerate(channels)},
        sharp=sharp,
    )


def _features_fast(
    ref: _FastReference, lin2: F32, channels: list[int], wants: list[_Want]
) -> list[_Pool]:
    """Pooled maps of several channels of one scale (float32, FIR blur)."""
    h, w = lin2.shape[1:]
    half = len(_gauss().taps) // 2
    slots = []
    count = 0
    for want in wants:
        slots.append(count)
        count += 3 if want.ssim else 1
    buf = _padded(count, h, w)
    rows = buf[:, half : half + h]
    _xyb_fast(lin2, set(channels), {c: rows[k] for c, k in zip(channels, slots, strict=True)})
    for c, want, k in zip(channels, wants, slots, strict=True):
        if want.ssim:
            i1, i2 = ref.planes[c], rows[k]
            np.multiply(i1, i2, out=rows[k + 1])
            np.subtract(i1, i2, out=rows[k + 2])
            rows[k + 2] *= rows[k + 2]
    blurred = _blur_fast(buf, h, w)  # (P, W, H)
    pools = [_Pool(h * w) for _ in channels]
    sharp: dict[int, F32] = {}
    for c, want, k in zip(channels, wants, slots, strict=True):
        if want.ring or want.blur:
            sharp[c] = np.empty((w, h), dtype=np.float32)
            _transpose(rows[k], sharp[c])
    step = max(1, _STRIP // h)
    for w0 in range(0, w, step):
        w1 = min(w, w0 + step)
        for c, want, k, pool in zip(channels, wants, slots, pools, strict=True):
            mu1, mu2 = ref.blurred[c][w0:w1], blurred[k, w0:w1]
            if want.ssim:
                pool.add_ssim(_ssim_map(mu1, mu2, blurred[k + 1, w0:w1], blurred[k + 2, w0:w1]))
            if want.ring or want.blur:
                edges = _edge_map(ref.sharp[c][w0:w1], mu1, sharp[c][w0:w1], mu2)
                pool.add_edges(edges, want)
    return pools


def _ssim_map(mu1: F32, mu2: F32, s12: F32, sdiff: F32) -> F32:
    """1 - SSIM' (no luminance denominator), clamped at 0, from s12 = blur(i1 * i2) and
    sdiff = blur((i1 - i2)^2). The reference's denominator, s11 + s22 - mu1^2 - mu2^2 + C2,
    equals num_s + sdiff - (mu1 - mu2)^2: no cancellation, and exactly 0 for equal images."""
    t = mu1 - mu2
    t *= t
    num_m = _f32(1.0) - t
    num_s = mu1 * mu2
    np.subtract(s12, num_s, out=num_s)
    num_s *= _f32(2.0)
    num_s += _f32(_C2)
    denom = sdiff - t
    denom += num_s
    num_m *= num_s
    num_m /= denom
    d = _f32(1.0) - num_m
    np.maximum(d, _f32(0.0), out=d)
    return d


def _edge_map(i1: F32, mu1: F32, i2: F32, mu2: F32) -> F32:
    """(1 + |i2 - mu2|) / (1 + |i1 - mu1|) - 1: > 0 ringing, < 0 blurring."""
    a1 = i1 - mu1
    np.abs(a1, out=a1)
    a1 += _f32(1.0)
    a2 = i2 - mu2
    np.abs(a2, out=a2)
    a2 += _f32(1.0)
    a2 /= a1
    a2 -= _f32(1.0)
    return a2


@dataclass(frozen=True)
class _Want:
    """Which maps of a channel carry weight at this scale."""

    ssim: bool
    ring: bool
    blur: bool


class _Pool:
    """Running 1-norm and 4-norm sums of the three maps of one channel."""

    def __init__(self, pixels: int) -> None:
        self.sums = [0.0] * 6  # ssim, ssim^4, ring, ring^4, blur, blur^4
        self.pixels = pixels

    def _add(self, i: int, values: F32 | F64) -> None:
        flat = values.ravel()
        sq = flat * flat
        self.sums[i] += float(flat.sum())
        self.sums[i + 1] += float(np.dot(sq, sq))

    def add_ssim(self, d: F32 | F64) -> None:
        self._add(0, d)

    def add_edges(self, d1: F32 | F64, want: _Want) -> None:
        if want.ring:
            self._add(2, np.maximum(d1, 0))
        if want.blur:
            self._add(4, np.minimum(d1, 0))  # the sign vanishes in |mean| and in x^4

    def features(self) -> list[float]:
        """ssim1, ssim4, ring1, ring4, blur1, blur4."""
        n, s = self.pixels, self.sums
        return [abs(s[0]) / n, (s[1] / n) ** 0.25, abs(s[2]) / n, (s[3] / n) ** 0.25,
                abs(s[4]) / n, (s[5] / n) ** 0.25]  # fmt: skip


# --------------------------------------------------------------------------------------
# Exact path: the reference's recursive Gaussian and float32 rounding, bit for bit.


def _hpass_exact(xt: F32) -> F32:
    """The reference's horizontal pass (4-lane unrolled), on transposed data (W, columns).

    Each fused multiply-add is evaluated in float64 and rounded once to float32. Lanes 2
    and 3 of a 4-pixel block carry the recursion, so only they are stepped in a Python
    loop (vectorised over every row); inputs and lanes 0 and 1 are computed in bulk.
    """
    g = _gauss()
    w, cols = xt.shape
    radius = g.radius
    out = np.empty((w, cols), dtype=np.float32)
    mp0 = g.mul_prev[:, 0:1].astype(np.float64)
    n2 = g.n2[:, None]
    t64 = np.empty((3, cols), dtype=np.float64)

    def scalar(n: int, prev: F32, prev2: F32) -> tuple[F32, F32]:
        left, right = n - radius - 1, n + radius - 1
        if left >= 0 and right < w:
            s = xt[left] + xt[right]
        elif left >= 0:
            s = xt[left]
        elif right < w:
            s = xt[right]
        else:
            s = np.zeros(cols, dtype=np.float32)
        o = s * n2
        o -= prev2
        np.multiply(prev, mp0, out=t64)
        np.add(t64, o, out=o, casting="unsafe")
        if n >= 0:
            out[n] = o[0] + (o[1] + o[2])
        return o, prev

    prev = np.zeros((3, cols), dtype=np.float32)
    prev2 = np.zeros((3, cols), dtype=np.float32)
    first_block = 8  # RoundUpTo(radius + 1, 4)
    n = -radius + 1
    while n < min(first_block, w):
        prev, prev2 = scalar(n, prev, prev2)
        n += 1
    nblocks = len(range(first_block, w - radius + 1 - 3, 4)) if n == first_block else 0
    if nblocks:
        lo = first_block - radius - 1
        hi = first_block + radius - 1
        sums = (xt[lo : lo + 4 * nblocks] + xt[hi : hi + 4 * nblocks]).reshape(nblocks, 4, cols)
        # Input part of each lane: sum0 * m[i] + sum1 * m[i-1] + ... (fused, in order).
        inp = np.empty((4, 3, nblocks, cols), dtype=np.float32)
        tmp = np.empty((3, nblocks, cols), dtype=np.float64)
        for i in range(4):
            np.multiply(sums[None, :, 0, :], g.mul_in[:, i, None, None], out=inp[i])
            for j in range(1, i + 1):
                coef = g.mul_in[:, i - j, None, None].astype(np.float64)
                np.multiply(sums[None, :, j, :], coef, out=tmp)
                np.add(tmp, inp[i], out=inp[i], casting="unsafe")
        # Recursion: lanes 2 and 3 of block b feed block b + 1.
        lanes23 = np.empty((nblocks + 1, 2, 3, cols), dtype=np.float32)
        lanes23[0, 0] = prev2
        lanes23[0, 1] = prev
        mp2 = g.mul_prev2[:, 2:4].T.astype(np.float64)[:, :, None]
        mp = g.mul_prev[:, 2:4].T.astype(np.float64)[:, :, None]
        t2 = np.empty((2, 3, cols), dtype=np.float64)
        for b in range(nblocks):
            np.multiply(mp2, lanes23[b, 0], out=t2)
            np.add(t2, inp[2:4, :, b], out=lanes23[b + 1], casting="unsafe")
            np.multiply(mp, lanes23[b, 1], out=t2)
            np.add(t2, lanes23[b + 1], out=lanes23[b + 1], casting="unsafe")
        prev2s = lanes23[:-1, 0].transpose(1, 0, 2)
        prevs = lanes23[:-1, 1].transpose(1, 0, 2)
        block = np.empty((nblocks, 4, cols), dtype=np.float32)
        lane = np.empty((3, nblocks, cols), dtype=np.float32)
        for i in range(4):
            if i >= 2:
                lane[...] = lanes23[1:, i - 2].transpose(1, 0, 2)
            else:
                np.multiply(prev2s, g.mul_prev2[:, i, None, None].astype(np.float64), out=tmp)
                np.add(tmp, inp[i], out=lane, casting="unsafe")
                np.multiply(prevs, g.mul_prev[:, i, None, None].astype(np.float64), out=tmp)
                np.add(tmp, lane, out=lane, casting="unsafe")
            np.add(lane[1], lane[2], out=block[:, i])
            np.add(lane[0], block[:, i], out=block[:, i])
        out[first_block : first_block + 4 * nblocks] = block.reshape(4 * nblocks, cols)
        prev2 = np.ascontiguousarray(lanes23[nblocks, 0])
        prev = np.ascontiguousarray(lanes23[nblocks, 1])
        n = first_block + 4 * nblocks
    while n < w:
        prev, prev2 = scalar(n, prev, prev2)
        n += 1
    return out


def _vpass_exact(x: F32) -> F32:
    """The reference's vertical pass on (H, columns): scalar recursion with fused steps."""
    g = _gauss()
    h, cols = x.shape
    radius = g.radius
    steps = h + radius - 1  # outputs n = -radius + 1 .. h - 1
    pad = np.zeros((h + 2 * radius, cols), dtype=np.float32)
    pad[radius : radius + h] = x
    # Step j (n = j - radius + 1) reads rows n - radius - 1 and n + radius - 1.
    sums = np.empty((steps, cols), dtype=np.float32)
    head = min(radius, steps)
    sums[:head] = pad[radius : radius + head]  # the row above is outside: bottom only
    if steps > radius:
        np.add(pad[: steps - radius], pad[2 * radius : radius + steps], out=sums[radius:])
    n2 = g.n2.astype(np.float64)[:, None]
    d1 = g.d1.astype(np.float64)[:, None]
    ys = np.zeros((steps + 2, 3, cols), dtype=np.float32)
    prod = np.empty((3, cols), dtype=np.float64)
    feed = np.empty((3, cols), dtype=np.float32)
    gain = np.empty((3, cols), dtype=np.float64)
    for j in range(steps):
        np.multiply(ys[j + 1], d1, out=prod)
        np.add(prod, ys[j], out=feed, casting="unsafe")  # -(d1 * y1) - y2, negated
        np.multiply(sums[j], n2, out=gain)
        np.subtract(gain, feed, out=ys[j + 2], casting="unsafe")
    res = ys[radius + 1 :]
    out: F32 = res[:, 0] + (res[:, 1] + res[:, 2])
    return out


_EXACT_COLUMNS = 2048  # columns per exact pass: a trade between cache and Python overhead


def _blur_exact(turned: F32) -> F32:
    """The reference's blur, bit for bit, of planes given transposed as (W, P, H);
    returns them upright as (P, H, W)."""
    w, p_count, h = turned.shape
    flat = turned.reshape(w, p_count * h)
    horiz = np.empty((w, p_count * h), dtype=np.float32)
    for c in range(0, p_count * h, _EXACT_COLUMNS):  # columns are independent
        horiz[:, c : c + _EXACT_COLUMNS] = _hpass_exact(flat[:, c : c + _EXACT_COLUMNS])
    upright = np.empty((h, p_count, w), dtype=np.float32)
    for p in range(p_count):
        upright[:, p] = horiz.reshape(w, p_count, h)[:, p].T
    flat = upright.reshape(h, p_count * w)
    vert = np.empty((h, p_count * w), dtype=np.float32)
    for c in range(0, p_count * w, _EXACT_COLUMNS):
        vert[:, c : c + _EXACT_COLUMNS] = _vpass_exact(flat[:, c : c + _EXACT_COLUMNS])
    return vert.reshape(h, p_count, w).transpose(1, 0, 2)


@dataclass(frozen=True)
class _ExactReference:
    """The reference's side of the exact path at one scale: XYB planes, blur(i1^2), blur(i1)."""

    planes: dict[int, F32]
    s11: dict[int, F32]
    mu1: dict[int, F32]


def _turned(planes: list[F32]) -> F32:
    """(H, W) planes as the (W, P, H) block the exact row pass reads."""
    h, w = planes[0].shape
    turned = np.empty((w, len(planes), h), dtype=np.float32)
    for k, plane in enumerate(planes):
        turned[:, k] = plane.T
    return turned


def _exact_reference(lin1: F32, channels: list[int]) -> _ExactReference:
    x1 = _xyb_exact(lin1, set(channels))
    # Columns are blurred independently, so blurring these apart changes no bit.
    blurred = _blur_exact(_turned([p for c in channels for p in (x1[c] * x1[c], x1[c])]))
    return _ExactReference(
        planes={c: x1[c] for c in channels},
        s11={c: blurred[2 * j] for j, c in enumerate(channels)},
        mu1={c: blurred[2 * j + 1] for j, c in enumerate(channels)},
    )


def _features_exact(
    ref: _ExactReference, lin2: F32, channels: list[int], wants: list[_Want]
) -> list[_Pool]:
    """Pooled maps with the reference's float32/float64 mix, for noise-sensitive channels."""
    x2 = _xyb_exact(lin2, set(channels))
    planes = [p for c in channels for p in (x2[c] * x2[c], ref.planes[c] * x2[c], x2[c])]
    blurred = _blur_exact(_turned(planes))
    pools = []
    for j, (c, want) in enumerate(zip(channels, wants, strict=True)):
        s22, s12, mu2 = blurred[3 * j : 3 * j + 3]
        s11, mu1 = ref.s11[c], ref.mu1[c]
        i1, i2 = ref.planes[c], x2[c]
        pool = _Pool(i1.size)
        if want.ssim:
            mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
            diff = mu1 - mu2
            num_m = (1.0 - (diff * diff).astype(np.float64)).astype(np.float32)
            num_s = _f32(2.0) * (s12 - mu12) + _f32(_C2)
            denom_s = ((s11 - mu11) + (s22 - mu22)) + _f32(_C2)
            ratio = (num_m * num_s) / denom_s
            pool.add_ssim(np.maximum(1.0 - ratio.astype(np.float64), 0.0))
        if want.ring or want.blur:
            a1 = np.abs(i1 - mu1).astype(np.float64)
            a2 = np.abs(i2 - mu2).astype(np.float64)
            pool.add_edges((1.0 + a2) / (1.0 + a1) - 1.0, want)
        pools.append(pool)
    return pools


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
