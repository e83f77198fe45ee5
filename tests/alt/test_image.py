"""The picture sent to the model: a small sRGB JPEG data URL."""

from __future__ import annotations

import base64

import pytest
import pyvips

from proxy.alt.image import as_data_url
from tests.support import shared_data


def decode(data_url: str) -> tuple[bytes, pyvips.Image]:
    prefix = "data:image/jpeg;base64,"
    assert data_url.startswith(prefix)
    jpeg = base64.b64decode(data_url[len(prefix) :], validate=True)
    assert jpeg[:3] == b"\xff\xd8\xff"
    return jpeg, pyvips.Image.new_from_buffer(jpeg, "")


def test_large_rgba_png_is_shrunk_flattened_and_jpeg() -> None:
    rgb = pyvips.Image.xyz(900, 600).extract_band(0).cast("uchar")
    alpha = (rgb * 0).cast("uchar")  # fully transparent: flattens to white
    png = rgb.bandjoin([rgb, rgb, alpha]).pngsave_buffer()
    _, image = decode(as_data_url(png, 256))
    assert max(image.width, image.height) == 256
    assert image.bands == 3 and image.interpretation == "srgb"
    assert image.avg() > 250


def test_small_image_is_not_upscaled() -> None:
    png = pyvips.Image.black(40, 30).pngsave_buffer()
    _, image = decode(as_data_url(png, 512))
    assert (image.width, image.height) == (40, 30) and image.bands == 3


def test_16_bit_grey_becomes_8_bit_srgb() -> None:
    grey16 = (pyvips.Image.black(100, 80) + 30000).cast("ushort").copy(interpretation="grey16")
    _, image = decode(as_data_url(grey16.pngsave_buffer(), 64))
    assert image.format == "uchar" and image.bands == 3


@pytest.mark.parametrize("blob", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_undecodable_input_is_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        as_data_url(blob, 256)


@pytest.mark.parametrize(
    "name", ["generated/cmyk_kodim07.jpg", "generated/large_6000x4000_flower_upscaled.jpg"]
)
def test_shared_images(name: str) -> None:
    path = shared_data() / name
    if not path.is_file():
        pytest.skip(f"{path} is not in the shared data")
    jpeg, image = decode(as_data_url(path.read_bytes(), 384))
    assert max(image.width, image.height) == 384
    assert image.interpretation == "srgb" and image.bands == 3
    assert len(jpeg) < 100_000
