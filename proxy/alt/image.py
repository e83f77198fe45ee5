"""The picture the vision model sees: small, because VLMs resample to a few hundred pixels
anyway and every extra kilobyte is upload time and tokens, and plain sRGB JPEG, because that is
the one format every OpenAI-compatible server decodes."""

from __future__ import annotations

import base64

import pyvips

from proxy.imaging import rgb8

JPEG_QUALITY = 85
BACKGROUND = (255, 255, 255)
"""Transparent areas become white, as most pages would show them."""


def as_data_url(blob: bytes, max_side: int) -> str:
    """``blob`` (any format libvips reads) as a ``data:image/jpeg;base64,...`` URL that fits in
    ``max_side`` x ``max_side``; never upscaled. ``ValueError`` when it cannot be decoded."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    try:
        # shrink-on-load: a 6000x4000 JPEG is decoded at 1/8 scale, never in full
        image = pyvips.Image.thumbnail_buffer(blob, max_side, height=max_side, size="down")
        image = rgb8(image, BACKGROUND, keep_grey=True, flatten_first=True)
        image = image.copy(interpretation="srgb")
        jpeg: bytes = image.jpegsave_buffer(Q=JPEG_QUALITY, keep="none", optimize_coding=True)
    except pyvips.Error as exc:
        raise ValueError(f"cannot decode the image: {str(exc).strip()[:200]}") from exc
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
