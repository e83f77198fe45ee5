"""Pixels for numpy: a libvips image sampled at a size and read out as an array.

Every analyser (detectors, quality features, the perceptual hash, the focus check, the
duplicate index) reads its input through here: :func:`shrink_to` or :func:`resize_to` for
the size, :func:`rgb8` for 8-bit sRGB, :func:`to_array` / :func:`to_plane` for the
array. The colour preparation before the read-out stays each caller's: the copies differ
on purpose (what a 16-bit or CMYK source becomes), and their outputs are pinned by tests.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvips

# libvips band formats as numpy dtypes.
DTYPES: dict[str, type[np.generic]] = {
    "uchar": np.uint8,
    "char": np.int8,
    "ushort": np.uint16,
    "short": np.int16,
    "uint": np.uint32,
    "int": np.int32,
    "float": np.float32,
    "double": np.float64,
}


def to_array(image: pyvips.Image) -> npt.NDArray[Any]:
    """The image's pixels as a read-only (height, width, bands) array of its band format."""
    return np.ndarray(
        buffer=image.write_to_memory(),
        dtype=DTYPES[image.format],
        shape=(image.height, image.width, image.bands),
    )


def to_plane(image: pyvips.Image) -> npt.NDArray[Any]:
    """A one-band image's pixels as a read-only (height, width) array."""
    if image.bands != 1:
        raise ValueError(f"expected one band, got {image.bands}")
    return np.ndarray(
        buffer=image.write_to_memory(),
        dtype=DTYPES[image.format],
        shape=(image.height, image.width),
    )


def shrink_to(image: pyvips.Image, max_side: int) -> tuple[pyvips.Image, float]:
    """The image with its longest side at most ``max_side`` (libvips' default kernel, never
    enlarged), and the scale used (1.0 when not shrunk)."""
    scale = min(1.0, max_side / max(image.width, image.height))
    if scale < 1.0:
        image = image.resize(scale)
    return image, scale


def resize_to(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Resize to exactly ``width`` x ``height`` (libvips may round a pixel off otherwise)."""
    resized = image.resize(width / image.width, vscale=height / image.height)
    if resized.width != width or resized.height != height:
        resized = resized.gravity("north-west", width, height, extend="copy")
    return resized


def rgb8(
    image: pyvips.Image,
    background: tuple[int, int, int] = (255, 255, 255),
    *,
    keep_grey: bool = False,
    flatten_first: bool = False,
) -> pyvips.Image:
    """Any libvips image as 3-band 8-bit sRGB: alpha flattened onto ``background``.

    ``keep_grey``: 8-bit grey is copied into three bands rather than converted by libvips;
    ``flatten_first``: alpha is flattened before a cast to 8 bits rather than after. The
    detectors use neither, the alt-text picture both (each pinned by its own tests)."""
    converted = ("srgb", "b-w") if keep_grey else ("srgb",)
    if image.interpretation not in converted or image.format != "uchar":
        # 16-bit, grey, CMYK, Lab ... to 8-bit sRGB; what libvips cannot convert stays as is
        with contextlib.suppress(pyvips.Error):
            image = image.colourspace("srgb")
    if flatten_first and image.hasalpha():
        image = image.flatten(background=list(background))
    if image.format != "uchar":
        image = image.cast("uchar")
    if not flatten_first and image.hasalpha():
        image = image.flatten(background=list(background))
    if image.bands == 1:
        image = image.bandjoin([image, image])
    elif image.bands == 2:
        image = image.extract_band(0).bandjoin([image.extract_band(0), image.extract_band(0)])
    elif image.bands > 3:
        image = image.extract_band(0, n=3)
    return image
