"""SSIMULACRA 2's fast path: a float32 9-tap FIR twin of the reference's Gaussian, both
passes as BLAS products, the maps pooled in cache-sized strips. Internal to
``proxy.quality.ssimulacra2``, which chooses per map between this and the exact path."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from proxy.quality.ssimulacra2_core import (
    _STRIP,
    _TILE,
    _edge_map,
    _gauss,
    _Pool,
    _ssim_map,
    _Want,
    _xyb_fast,
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

_f32 = np.float32
_f64 = np.float64

# --------------------------------------------------------------------------------------
# Fast path: 9-tap FIR blur, both passes as BLAS products, pooled in cache-sized strips.

_BAND = 8  # output rows per BLAS call (measured fastest)


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
