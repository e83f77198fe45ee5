"""SSIMULACRA2: agreement with libjxl's C++ tool, the properties q=auto relies on, inputs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips

from proxy.quality import ssimulacra2, ssimulacra2_core, ssimulacra2_exact
from proxy.quality.ssimulacra2 import score, score_files

TOLERANCE = 0.5
Real = float | np.floating[Any]


def reference_dir() -> Path:
    """``../shared/reference/ssimulacra2``, or ``$LOUPE_SHARED_DIR/reference/ssimulacra2``."""
    root = os.environ.get("LOUPE_SHARED_DIR")
    shared = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared"
    return shared / "reference" / "ssimulacra2"


def reference_pairs() -> list[Any]:
    scores = reference_dir() / "scores.json"
    if not scores.is_file():
        reason = f"reference scores not found at {scores} (set LOUPE_SHARED_DIR)"
        return [pytest.param(None, None, None, marks=pytest.mark.skip(reason=reason))]
    table = json.loads(scores.read_text())
    return [
        pytest.param(entry["reference"], name, float(entry["ssimulacra2"]), id=name)
        for name, entry in sorted(table.items())
    ]


@pytest.mark.parametrize(("reference", "distorted", "expected"), reference_pairs())
def test_matches_reference_implementation(reference: str, distorted: str, expected: float) -> None:
    folder = reference_dir()
    got = score_files(str(folder / reference), str(folder / distorted))
    assert abs(got - expected) <= TOLERANCE, f"{distorted}: got {got:.4f}, C++ {expected:.4f}"


def photo(width: int = 192, height: int = 160, seed: int = 7) -> pyvips.Image:
    """A deterministic photo-like sRGB image: gradients, texture, hard edges, flat areas."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            120 + 80 * np.sin(x / 17.0) * np.cos(y / 23.0),
            100 + 0.5 * x + 30 * np.sin((x + y) / 9.0),
            90 + 0.6 * y + 20 * np.cos(x / 5.0),
        ],
        axis=-1,
    )
    base += rng.normal(0.0, 6.0, base.shape).astype(np.float32)
    base[height // 3 : height // 2, width // 4 : width // 2] = (230, 40, 40)  # flat block
    base[:, (2 * width) // 3 :: 11] = 20  # thin dark lines
    pixels = np.clip(base, 0, 255).astype(np.uint8)
    return pyvips.Image.new_from_array(pixels, interpretation="srgb")


def jpeg(image: pyvips.Image, quality: int) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(image.jpegsave_buffer(Q=quality), "")


def test_identical_images_score_100() -> None:
    image = photo()
    assert score(image, image) == 100.0


def test_identical_small_images_score_100() -> None:
    # Fewer than six scales (the reference then reads shifted weights: kept as is).
    for width, height in ((8, 8), (9, 8), (8, 13), (31, 17)):
        image = photo(width, height)
        assert score(image, image) == 100.0


def test_quality_is_monotonic_in_jpeg_quality() -> None:
    image = photo()
    scores = [score(image, jpeg(image, q)) for q in (20, 50, 90)]
    assert scores[0] < scores[1] < scores[2] < 100.0, scores
    assert scores[2] > 70.0, scores


def test_order_matters_and_scores_are_finite() -> None:
    image = photo()
    distorted = jpeg(image, 30)
    forward, backward = score(image, distorted), score(distorted, image)
    assert math.isfinite(forward) and math.isfinite(backward)
    assert forward != backward  # the ringing / blurring maps are asymmetric


def test_size_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="same size"):
        score(photo(64, 48), photo(48, 64))


@pytest.mark.parametrize(("width", "height"), [(7, 8), (8, 7), (1, 1)])
def test_images_below_8x8_are_rejected(width: int, height: int) -> None:
    image = photo(width, height)
    with pytest.raises(ValueError, match="at least 8x8"):
        score(image, image)


def test_sixteen_bit_input_scores_like_its_eight_bit_version() -> None:
    image = photo()
    distorted = jpeg(image, 40)
    wide = (image.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    assert score(wide, distorted) == score(image, distorted)


def test_grey_input_is_converted() -> None:
    grey = photo().colourspace("b-w")
    assert grey.bands == 1
    assert score(grey, grey) == 100.0
    got = score(grey, jpeg(grey, 30))
    assert 0.0 < got < 100.0
    assert got == score(grey.colourspace("srgb"), jpeg(grey, 30).colourspace("srgb"))


def test_alpha_is_blended_and_compared() -> None:
    image = photo()
    alpha = pyvips.Image.new_from_array(
        np.tile(np.linspace(0, 255, image.width), (image.height, 1))
    )
    rgba = image.bandjoin(alpha.cast("uchar"))
    assert score(rgba, rgba) == 100.0
    # Opaque alpha is the same as no alpha.
    opaque = image.bandjoin(255)
    distorted = jpeg(image, 40)
    assert score(opaque, distorted) == pytest.approx(score(image, distorted), abs=1e-9)
    # A hole punched in the alpha only is an error too.
    holed = image.bandjoin(alpha.cast("uchar").draw_rect(0, 40, 40, 60, 60, fill=True))
    assert score(rgba, holed) < 99.0


def test_a_prepared_reference_scores_every_probe_bit_for_bit_like_score() -> None:
    """q=auto scores several encodes against one reference: its half is computed once."""
    image = photo(203, 171)  # odd sizes: the pyramid's edge cases
    prepared = ssimulacra2.Reference(image)
    for quality in (15, 40, 75, 95):
        distorted = jpeg(image, quality)
        assert prepared(distorted) == score(image, distorted)
    assert prepared(image) == 100.0
    # Grey, 16-bit and alpha inputs take score()'s conversions (alpha: its blending).
    grey = photo().colourspace("b-w")
    assert ssimulacra2.Reference(grey)(jpeg(grey, 30)) == score(grey, jpeg(grey, 30))
    rgba = image.bandjoin(128)
    assert ssimulacra2.Reference(rgba)(jpeg(image, 50)) == score(rgba, jpeg(image, 50))
    assert ssimulacra2.Reference(image)(rgba) == score(image, rgba)
    with pytest.raises(ValueError, match="same size"):
        prepared(photo(64, 48))


def test_score_files_reads_images(tmp_path: Path) -> None:
    image = photo()
    distorted = jpeg(image, 35)
    ref_path, dist_path = tmp_path / "ref.png", tmp_path / "dist.png"
    image.write_to_file(str(ref_path))
    distorted.write_to_file(str(dist_path))
    assert score_files(str(ref_path), str(dist_path)) == score(image, distorted)


# --------------------------------------------------------------------------------------
# The exact path repeats libjxl's float32 arithmetic; here against a plain scalar
# transcription of its recursive Gaussian (FastGaussian1D / VerticalStrip semantics).


def _fma(a: Real, b: Real, c: Real) -> np.float32:
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def _scalar_rows(row: np.ndarray) -> np.ndarray:
    """Horizontal pass: scalar head, 4-lane blocks from x = 8 on, scalar tail."""
    g = ssimulacra2_core._gauss()
    n_, xsize = g.radius, len(row)
    out = np.zeros(xsize, np.float32)
    prev = [[np.float32(0)] * 4 for _ in range(3)]
    prev2 = [[np.float32(0)] * 4 for _ in range(3)]

    def value(i: int) -> np.float32:
        return row[i] if 0 <= i < xsize else np.float32(0)

    def scalar(n: int) -> None:
        total = np.float32(value(n - n_ - 1) + value(n + n_ - 1))
        outs = []
        for k in range(3):
            o = np.float32(total * g.mul_in[k][0])
            o = _fma(g.mul_prev2[k][0], prev2[k][0], o)
            o = _fma(g.mul_prev[k][0], prev[k][0], o)
            prev2[k], prev[k] = prev[k], [o] * 4
            outs.append(o)
        if n >= 0:
            out[n] = outs[0] + (outs[1] + outs[2])

    n = -n_ + 1
    while n < min(8, xsize):
        scalar(n)
        n += 1
    while n >= 8 and n < xsize - n_ + 1 - 3:  # reached only when the head stopped at 8
        sums = [np.float32(value(n - n_ - 1 + j) + value(n + n_ - 1 + j)) for j in range(4)]
        lanes = []
        for k in range(3):
            m = g.mul_in[k]
            o = [np.float32(sums[0] * m[i]) for i in range(4)]
            for j in range(1, 4):
                o = [_fma(m[i - j], sums[j], o[i]) if i >= j else o[i] for i in range(4)]
            o = [_fma(g.mul_prev2[k][i], prev2[k][0], o[i]) for i in range(4)]
            o = [_fma(g.mul_prev[k][i], prev[k][0], o[i]) for i in range(4)]
            prev2[k], prev[k] = [o[2]] * 4, [o[3]] * 4
            lanes.append(o)
        for i in range(4):
            out[n + i] = lanes[0][i] + (lanes[1][i] + lanes[2][i])
        n += 4
    while n < xsize:
        scalar(n)
        n += 1
    return out


def _scalar_columns(column: np.ndarray) -> np.ndarray:
    g = ssimulacra2_core._gauss()
    n_, ysize = g.radius, len(column)
    out = np.zeros(ysize, np.float32)
    y1, y2 = [np.float32(0)] * 3, [np.float32(0)] * 3
    for n in range(-n_ + 1, ysize):
        top, bottom = n - n_ - 1, n + n_ - 1
        total = column[bottom] if bottom < ysize else np.float32(0)
        if top >= 0:
            total = np.float32(column[top] + total)
        ys = []
        for k in range(3):
            neg = -_fma(g.d1[k], y1[k], y2[k])  # NegMulSub(d1, y1, y2)
            y = _fma(g.n2[k], total, neg)
            y2[k], y1[k] = y1[k], y
            ys.append(y)
        if n >= 0:
            out[n] = ys[0] + (ys[1] + ys[2])
    return out


@pytest.mark.parametrize(("height", "width"), [(9, 8), (13, 21), (24, 17), (11, 40)])
def test_exact_blur_is_the_reference_recursion(height: int, width: int) -> None:
    rng = np.random.default_rng(height * 100 + width)
    planes = rng.random((2, height, width)).astype(np.float32)
    rows = np.array([[_scalar_rows(r) for r in p] for p in planes])
    expected = np.array([np.stack([_scalar_columns(c) for c in p.T], axis=1) for p in rows])
    got = ssimulacra2_exact._blur_exact(np.ascontiguousarray(planes.transpose(2, 0, 1)))
    assert np.array_equal(got, expected)
