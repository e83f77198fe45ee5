"""SSIMULACRA 2's exact path: the reference's recursive Gaussian and float32 rounding, bit
for bit, for the maps whose weight makes the reference's rounding noise matter. Internal to
``proxy.quality.ssimulacra2`` (see its docstring for when each path is taken)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from proxy.quality.ssimulacra2_core import _C2, _gauss, _Pool, _Want, _xyb_exact

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

_f32 = np.float32
_f64 = np.float64


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
