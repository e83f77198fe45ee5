"""How much memory an encoder takes for an output, planned before any pixel is decoded.

Every encoder holds the whole output (libaom, libwebp and cgif do not stream), at a cost
per pixel that depends on the format. Measured with libvips 8.18 on a 36-40 MP photo: peak
RSS above the in-memory image, bytes per output pixel without and with alpha:

    AVIF (effort 0)     20 / 30
    WebP lossless       21 / 22
    GIF (cgif)          11 / 11
    JPEG (optimised)     6 / -
    WebP lossy           5 / 5
    PNG                  2 / 2   (libspng streams rows)

Pure arithmetic, so the planner can refuse (or, for ``fm=auto``, pick another format)
before the work starts instead of after the memory is gone.
"""

from __future__ import annotations

import math

# format -> (bytes per pixel without alpha, with alpha)
BYTES_PER_PIXEL = {
    "avif": (20.0, 30.0),
    "webp-lossless": (21.0, 22.0),
    "gif": (11.0, 11.0),
    "jpeg": (6.0, 6.0),
    "webp": (5.0, 5.0),
    "png": (2.0, 2.0),
}


def encoder_bytes(fmt: str, *, lossless: bool, alpha: bool, pixels: int) -> int:
    """Estimated peak bytes the encoder of ``fmt`` takes for ``pixels`` output pixels (all
    frames of an animation)."""
    key = "webp-lossless" if fmt == "webp" and lossless else fmt
    return math.ceil(BYTES_PER_PIXEL[key][1 if alpha else 0] * pixels)
