"""The one read-out of libvips pixels into numpy: shapes, band formats, the shrink."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from proxy.imaging import shrink_to, to_array, to_plane


def test_to_array_keeps_bands_and_format() -> None:
    image = pyvips.Image.black(5, 3, bands=3).linear([1, 1, 1], [10, 20, 30])
    rgb = to_array(image.cast("uchar"))
    assert rgb.shape == (3, 5, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [10, 20, 30]
    floats = to_array(image.cast("float"))
    assert floats.dtype == np.float32 and floats[2, 4].tolist() == [10.0, 20.0, 30.0]


def test_to_plane_is_two_dimensional_and_needs_one_band() -> None:
    labels = (pyvips.Image.black(4, 2) + 7).cast("int")
    plane = to_plane(labels)
    assert plane.shape == (2, 4) and plane.dtype == np.int32 and int(plane.max()) == 7
    with pytest.raises(ValueError):
        to_plane(pyvips.Image.black(4, 2, bands=3))


def test_shrink_to_never_enlarges() -> None:
    small, scale = shrink_to(pyvips.Image.black(100, 50), 200)
    assert (small.width, small.height, scale) == (100, 50, 1.0)
    shrunk, scale = shrink_to(pyvips.Image.black(400, 100), 200)
    assert (shrunk.width, shrunk.height, scale) == (200, 50, 0.5)
