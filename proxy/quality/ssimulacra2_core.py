"""SSIMULACRA 2's shared parts: the reference's constants (weights, opsin matrix, Gaussian,
sRGB curve) rounded as the C++ rounds them, linear RGB -> positive XYB on both paths, and
the maps and their pooling. Internal to ``proxy.quality.ssimulacra2`` (see its docstring);
the two blur paths are ``ssimulacra2_fast`` and ``ssimulacra2_exact``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

_f32 = np.float32
_f64 = np.float64

_C2 = 0.0009
_TILE = 256  # rows per block when transposing
_STRIP = 32768  # elements per pooling strip

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
