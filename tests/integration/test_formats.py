"""Output formats, negotiation, colour management, alpha and animation, by decoding answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from tests.integration.imaging import (
    NO_MODERN,
    decode,
    frame_height,
    get,
    loader,
    mean_abs_diff,
    pages,
    pixels,
    resized,
    size,
    source,
)
from tests.support import LoupeServer

PHOTO = "kodak/kodim03.png"  # 768x512, no alpha
ALPHA = "generated/alpha_gradient.png"  # 800x800 RGBA, soft alpha
GIF = "skimage/no_time_for_that_tiny.gif"  # 14x25, 24 frames
GIF_FRAMES = 24

FORMATS = {
    "jpeg": ("image/jpeg", "jpegload"),
    "png": ("image/png", "pngload"),
    "webp": ("image/webp", "webpload"),
    "avif": ("image/avif", "heifload"),
    "gif": ("image/gif", "gifload"),
}


# --- explicit formats ------------------------------------------------------------------------


@pytest.mark.parametrize("fm", sorted(FORMATS))
def test_explicit_format(server: LoupeServer, data_root: Path, fm: str) -> None:
    mime, expected_loader = FORMATS[fm]
    response = get(server, PHOTO, f"w=160&fm={fm}")
    assert response.headers["content-type"] == mime
    assert int(response.headers["content-length"]) == len(response.content)
    assert "vary" not in response.headers, "explicit fm must not vary on Accept"
    image = decode(response)
    assert loader(image).startswith(expected_loader)
    assert size(image) == (160, 107)
    if fm == "avif":
        assert image.get("heif-compression") == "av1"
    # Same picture whatever the container (GIF is palettised, so it gets more slack).
    reference = resized(source(data_root, PHOTO), 160, 107)
    assert mean_abs_diff(image, reference) < (16 if fm == "gif" else 8)


@pytest.mark.parametrize(
    ("accept", "fm"),
    [
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "avif"),  # Chrome
        ("image/avif", "avif"),
        ("image/webp,*/*", "webp"),  # older Firefox
        ("image/avif;q=0,image/webp", "webp"),  # q=0 means not acceptable
        ("image/png,image/*;q=0.8,*/*;q=0.5", "jpeg"),  # Safari without WebP/AVIF
        ("*/*", "jpeg"),
        ("", "jpeg"),
    ],
)
def test_auto_format_follows_accept(server: LoupeServer, accept: str, fm: str) -> None:
    response = get(server, PHOTO, "w=120", headers={"Accept": accept})
    mime, expected_loader = FORMATS[fm]
    assert response.headers["content-type"] == mime
    assert response.headers["vary"].lower() == "accept"
    assert loader(decode(response)).startswith(expected_loader)


def test_auto_is_the_default_and_varies(server: LoupeServer) -> None:
    explicit = get(server, PHOTO, "w=121&fm=auto", headers={"Accept": "image/webp"})
    implicit = get(server, PHOTO, "w=121", headers={"Accept": "image/webp"})
    assert explicit.headers["content-type"] == implicit.headers["content-type"] == "image/webp"
    assert explicit.headers["vary"].lower() == implicit.headers["vary"].lower() == "accept"
    assert explicit.content == implicit.content


@pytest.mark.parametrize("fm", sorted(FORMATS))
def test_explicit_format_ignores_accept(server: LoupeServer, fm: str) -> None:
    response = get(server, PHOTO, f"w=90&fm={fm}", headers={"Accept": "image/avif,image/webp"})
    assert response.headers["content-type"] == FORMATS[fm][0]
    assert "vary" not in response.headers


# --- colour ----------------------------------------------------------------------------------


def _assert_srgb_tagged(image: pyvips.Image) -> None:
    assert "icc-profile-data" in image.get_fields(), "output colour must carry an sRGB profile"
    profile = bytes(image.get("icc-profile-data"))
    assert profile[36:40] == b"acsp", "not an ICC profile"
    assert profile[16:20] == b"RGB ", "profile colour space is not RGB"
    assert b"sRGB" in profile or "sRGB".encode("utf-16-be") in profile, "profile is not sRGB"
    # It behaves as sRGB: importing with it and exporting to sRGB changes nothing.
    back = image.icc_import(embedded=True, intent="relative").icc_export(
        output_profile="srgb", intent="relative", depth=8
    )
    assert (rgb_only(back).cast("float") - rgb_only(image).cast("float")).abs().max() <= 2


def rgb_only(image: pyvips.Image) -> pyvips.Image:
    return image.extract_band(0, n=3) if image.bands > 3 else image


@pytest.mark.parametrize("fm", ["jpeg", "png", "webp", "avif"])
@pytest.mark.parametrize(
    "rel", [PHOTO, "generated/cmyk_kodim07.jpg", "generated/rgb16_kodim07.png", ALPHA]
)
def test_output_is_tagged_srgb(server: LoupeServer, rel: str, fm: str) -> None:
    image = decode(get(server, rel, f"w=64&fm={fm}"))
    assert image.interpretation == "srgb"
    assert image.format == "uchar"
    _assert_srgb_tagged(image)


@pytest.mark.parametrize("fm", ["jpeg", "png"])
def test_cmyk_source_keeps_its_colours(server: LoupeServer, data_root: Path, fm: str) -> None:
    response = get(server, "generated/cmyk_kodim07.jpg", f"w=128&fm={fm}")
    image = decode(response)
    assert image.bands == 3 and image.interpretation == "srgb"
    reference = resized(source(data_root, "kodak/kodim07.png"), *size(image))
    assert mean_abs_diff(image, reference) < 12
    # Sanity: the naive (profile-less) inversion of CMYK would be far off.
    assert mean_abs_diff(image, reference.invert()) > 40


def test_sixteen_bit_source_gives_eight_bit_output(server: LoupeServer, data_root: Path) -> None:
    response = get(server, "generated/rgb16_kodim07.png", "w=128&fm=png")
    image = decode(response)
    assert image.format == "uchar", "16-bit sources must leave as 8-bit"
    assert image.bands == 3
    reference = resized(source(data_root, "kodak/kodim07.png"), *size(image))
    assert mean_abs_diff(image, reference) < 4
    jpeg = decode(get(server, "generated/rgb16_kodim07.png", "w=128&fm=jpeg"))
    assert mean_abs_diff(jpeg, reference) < 8


def test_grey_source_leaves_as_srgb(server: LoupeServer, data_root: Path) -> None:
    image = decode(get(server, "skimage/camera.png", "w=128&fm=png"))
    assert image.bands == 3 and image.interpretation == "srgb"
    grey = pixels(image)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1
    assert mean_abs_diff(image, resized(source(data_root, "skimage/camera.png"), 128, 128)) < 3


# --- alpha -----------------------------------------------------------------------------------


def _alpha(image: pyvips.Image) -> np.ndarray:
    assert image.hasalpha(), "alpha was dropped"
    return pixels(image)[..., image.bands - 1]


def test_alpha_auto_without_modern_accept_is_png(server: LoupeServer, data_root: Path) -> None:
    response = get(server, ALPHA, "w=200", headers=NO_MODERN)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["vary"].lower() == "accept"
    assert "x-loupe-alpha" not in response.headers
    image = decode(response)
    assert loader(image).startswith("pngload")
    assert image.bands == 4
    alpha = _alpha(image)
    expected = _alpha(resized(source(data_root, ALPHA), 200, 200))
    assert alpha.min() < 50 and alpha.max() > 200, "a soft alpha gradient survives"
    assert np.abs(alpha - expected).mean() < 3


@pytest.mark.parametrize(
    ("accept", "mime"), [("image/webp", "image/webp"), ("image/avif,image/webp", "image/avif")]
)
def test_alpha_auto_modern_keeps_alpha(server: LoupeServer, accept: str, mime: str) -> None:
    response = get(server, ALPHA, "w=200", headers={"Accept": accept})
    assert response.headers["content-type"] == mime
    alpha = _alpha(decode(response))
    assert alpha.min() < 50 and alpha.max() > 200


def test_alpha_webp_keeps_alpha(server: LoupeServer, data_root: Path) -> None:
    response = get(server, ALPHA, "w=200&fm=webp")
    assert response.headers["content-type"] == "image/webp"
    assert "x-loupe-alpha" not in response.headers
    image = decode(response)
    assert image.bands == 4
    expected = _alpha(resized(source(data_root, ALPHA), 200, 200))
    assert np.abs(_alpha(image) - expected).mean() < 6


@pytest.mark.parametrize("bg", ["ffffff", "ff0000"])
def test_alpha_jpeg_is_flattened_onto_bg(server: LoupeServer, data_root: Path, bg: str) -> None:
    response = get(server, ALPHA, f"w=200&fm=jpeg&bg={bg}")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-loupe-alpha"] == "flattened"
    image = decode(response)
    assert image.bands == 3
    colour = [int(bg[i : i + 2], 16) for i in (0, 2, 4)]
    expected = resized(source(data_root, ALPHA), 200, 200).flatten(background=colour)
    assert mean_abs_diff(image, expected.cast("uchar")) < 6


# --- animation -------------------------------------------------------------------------------


def _frames(image: pyvips.Image) -> list[np.ndarray]:
    height = frame_height(image)
    array = pixels(image)
    return [array[top : top + height] for top in range(0, image.height, height)]


@pytest.mark.parametrize(
    ("query", "headers", "mime"),
    [
        ("", NO_MODERN, "image/gif"),
        ("fm=gif", NO_MODERN, "image/gif"),
        ("fm=webp", NO_MODERN, "image/webp"),
        ("", {"Accept": "image/webp"}, "image/webp"),
        ("", {"Accept": "image/avif,image/webp"}, "image/webp"),  # AVIF does not animate here
    ],
)
def test_animation_stays_animated(
    server: LoupeServer, data_root: Path, query: str, headers: dict[str, str], mime: str
) -> None:
    response = get(server, GIF, query, headers=headers)
    assert response.headers["content-type"] == mime
    image = decode(response)
    assert pages(image) == GIF_FRAMES
    assert frame_height(image) == 25 and image.width == 14
    assert image.height == 25 * GIF_FRAMES
    original = pyvips.Image.new_from_file(str(data_root / GIF), n=-1)
    expected = _frames(original.colourspace("srgb").cast("uchar"))
    got = _frames(image)
    assert len(got) == len(expected) == GIF_FRAMES
    distinct = {frame[..., :3].tobytes() for frame in got}
    assert len(distinct) > 1, "all frames identical: the animation was lost"
    for index, (ours, theirs) in enumerate(zip(got, expected, strict=True)):
        visible = theirs[..., 3] > 128 if theirs.shape[2] == 4 else np.ones(theirs.shape[:2], bool)
        difference = np.abs(ours[..., :3] - theirs[..., :3])[visible]
        assert difference.mean() < 20, f"frame {index} differs"


@pytest.mark.parametrize("fm", ["gif", "webp"])
@pytest.mark.parametrize(
    ("query", "frame"),
    [("w=28&upscale=1", (28, 50)), ("w=28", (14, 25)), ("h=10", (6, 10)), ("w=7", (7, 13))],
)
def test_animation_resized_keeps_every_frame(
    server: LoupeServer, fm: str, query: str, frame: tuple[int, int]
) -> None:
    image = decode(get(server, GIF, f"{query}&fm={fm}"))
    assert pages(image) == GIF_FRAMES
    assert (image.width, frame_height(image)) == frame
    assert image.height == frame[1] * GIF_FRAMES


@pytest.mark.parametrize("fm", ["jpeg", "png"])
def test_animation_to_still_format_gives_one_frame(server: LoupeServer, fm: str) -> None:
    response = get(server, GIF, f"fm={fm}")
    assert response.headers["content-type"] == FORMATS[fm][0]
    image = decode(response)
    assert pages(image) == 1
    assert size(image) == (14, 25)


def test_animation_crop_and_fill_apply_to_every_frame(server: LoupeServer) -> None:
    cropped = decode(get(server, GIF, "w=10&h=10&fit=crop&crop=center&fm=gif"))
    assert pages(cropped) == GIF_FRAMES
    assert (cropped.width, frame_height(cropped)) == (10, 10)
    filled = decode(get(server, GIF, "w=20&h=20&fit=fill&bg=ff0000&fm=webp"))
    assert pages(filled) == GIF_FRAMES
    assert (filled.width, frame_height(filled)) == (20, 20)
    for frame in _frames(filled):
        # 14x25 fitted into 20x20 is 11x20, centred: columns 0-3 are padding in every frame.
        # Lossy WebP upsamples chroma with a filter that reaches the 2x2 block beside the
        # picture (columns 2-3), so the padding colour is checked on columns 0-1.
        assert (np.abs(frame[:, :2, :3] - (255, 0, 0)) < 12).all()


def test_fill_with_transparent_bg_keeps_alpha(server: LoupeServer) -> None:
    response = get(server, PHOTO, "w=100&h=100&fit=fill&bg=00000000")
    assert response.headers["content-type"] == "image/png"
    image = decode(response)
    assert image.bands == 4
    alpha = _alpha(image)
    assert (alpha[:10] == 0).all() and (alpha[-10:] == 0).all(), "padding is transparent"
    assert (alpha[40:60] == 255).all(), "the photo stays opaque"
