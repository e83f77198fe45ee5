"""Output QA: a good output passes every check, and each kind of bad output fails exactly the
check meant to catch it (real encodes through pyvips, of shared and synthetic images)."""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence

import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.processing.finalize import srgb_profile as libvips_srgb
from proxy.qa.checks import (
    CHECKS,
    NOT_RUN,
    Expectation,
    QALimits,
    QAReport,
    black_like_reference,
    check_output,
    srgb_profile,
)
from tests.support import shared_data

LIMITS = QALimits()
ADOBE_RGB = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))
SRGB = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


# -- helpers ---------------------------------------------------------------------------


def tagged(image: pyvips.Image, profile: bytes | None = None) -> pyvips.Image:
    """A copy carrying ``profile`` (default: the sRGB profile Loupe tags outputs with)."""
    out = image.copy()
    out.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile or libvips_srgb())
    return out


def encode(image: pyvips.Image, suffix: str = ".jpg", **options: object) -> bytes:
    options.setdefault("keep", "icc")
    return bytes(image.write_to_buffer(suffix, **options))


def synthetic(width: int = 600, height: int = 400) -> pyvips.Image:
    """A smooth colour picture: gradients in three directions plus a ripple."""
    xy = pyvips.Image.xyz(width, height)
    x, y = xy[0], xy[1]
    ripple = ((x * 0.05).sin() * (y * 0.07).cos() + 1) * 60
    red = x * (200 / width) + ripple / 4
    green = y * (200 / height) + ripple / 3
    blue = (x + y) * (120 / (width + height)) + ripple
    return red.bandjoin([green, blue]).cast("uchar").copy(interpretation="srgb")


def expect(
    width: int = 600,
    height: int = 400,
    mime: str = "image/jpeg",
    lossy: bool = True,
    floor: float | None = None,
    score: float | None = None,
    frames: int = 1,
) -> Expectation:
    return Expectation(width, height, mime, lossy, floor, score, frames)


def failed(report: QAReport) -> list[str]:
    return [check.name for check in report.failures]


def assert_only(report: QAReport, names: Sequence[str]) -> None:
    assert [check.name for check in report.checks] == list(CHECKS)
    assert failed(report) == list(names), report.to_json()


@pytest.fixture(scope="module")
def photo() -> pyvips.Image:
    """kodim01 at 600x400 in memory (a real photograph); skips without ../shared/data."""
    path = shared_data() / "kodak" / "kodim01.png"
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared test images are incomplete")
    return pyvips.Image.thumbnail(str(path), 600, height=400, size="force").copy_memory()


# -- good outputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "mime", "lossy", "options"),
    [
        (".jpg", "image/jpeg", True, {"Q": 82}),
        (".webp", "image/webp", True, {"Q": 80}),
        (".avif", "image/avif", True, {"Q": 60, "effort": 1}),
        (".png", "image/png", False, {}),
        (".webp", "image/webp", False, {"lossless": True}),
    ],
)
def test_a_good_output_passes_every_check(
    photo: pyvips.Image, suffix: str, mime: str, lossy: bool, options: dict[str, object]
) -> None:
    body = encode(tagged(photo), suffix, **options)
    report = check_output(body, expect(mime=mime, lossy=lossy, floor=60, score=75.0), LIMITS)
    assert_only(report, [])
    assert report.passed and report.to_json()["passed"] is True
    assert report.checks[1].detail == "600x400 as requested"


def test_report_json_shape(photo: pyvips.Image) -> None:
    report = check_output(encode(tagged(photo)), expect(), LIMITS)
    data = report.to_json()
    assert set(data) == {"passed", "checks"}
    assert [c["name"] for c in data["checks"]] == list(CHECKS)
    assert all(set(c) == {"name", "ok", "detail"} for c in data["checks"])


def test_untagged_grey_and_16_bit_outputs_are_srgb() -> None:
    colour = synthetic(200, 100)
    grey = colour.colourspace("b-w")
    deep = colour.cast("ushort") * 256
    for body, mime, lossy in [
        (encode(colour, ".jpg", keep="none"), "image/jpeg", True),
        (encode(grey, ".jpg"), "image/jpeg", True),
        (encode(deep.copy(interpretation="rgb16"), ".png"), "image/png", False),
    ]:
        assert_only(check_output(body, expect(200, 100, mime, lossy), LIMITS), [])


def test_checking_is_fast_when_the_score_is_known(photo: pyvips.Image) -> None:
    """Well under 10 ms on a 600x400 JPEG: the measured score is reused, never recomputed
    (a SSIMULACRA2 run alone takes ~100 ms). Generous bound for shared CI machines."""
    body = encode(tagged(photo), Q=80)
    expectation = expect(floor=70, score=80.0)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        check_output(body, expectation, LIMITS, reference=photo)
        best = min(best, time.perf_counter() - start)
    assert best < 0.025


# -- each failure, alone ---------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(601, 400), (600, 399), (400, 600)])
def test_wrong_dimensions(photo: pyvips.Image, width: int, height: int) -> None:
    report = check_output(encode(tagged(photo)), expect(width, height), LIMITS)
    assert_only(report, ["dimensions"])
    assert report.failures[0].detail == f"600x400, expected {width}x{height}"


@pytest.mark.parametrize(
    ("suffix", "mime", "lossy"),
    [(".jpg", "image/jpeg", True), (".png", "image/png", False), (".webp", "image/webp", True)],
)
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_bytes_do_not_decode(
    photo: pyvips.Image, suffix: str, mime: str, lossy: bool, keep: float
) -> None:
    body = encode(tagged(photo), suffix)
    report = check_output(body[: int(len(body) * keep)], expect(mime=mime, lossy=lossy), LIMITS)
    assert_only(report, CHECKS)
    assert report.checks[0].detail.startswith("does not decode")
    assert all(check.detail == NOT_RUN for check in report.checks[1:])


@pytest.mark.parametrize(
    "body", [b"", b"\x00", bytes(range(256)) * 40, b"\xff\xd8\xff" + b"garbage" * 100]
)
def test_garbage_does_not_decode(body: bytes) -> None:
    assert_only(check_output(body, expect(), LIMITS), CHECKS)


def test_a_body_of_another_type_than_announced_does_not_decode() -> None:
    body = encode(synthetic(), ".png")
    report = check_output(body, expect(mime="image/jpeg"), LIMITS)
    assert_only(report, CHECKS)
    assert "pngload" in report.checks[0].detail
    assert_only(check_output(body, expect(mime="image/tiff"), LIMITS), CHECKS)


def test_a_header_far_larger_than_expected_is_not_decoded() -> None:
    body = encode(pyvips.Image.black(3000, 3000, bands=3).copy(interpretation="srgb"))
    report = check_output(body, expect(100, 100), LIMITS)
    assert_only(report, CHECKS)
    assert "header says 3000x3000" in report.checks[0].detail


def test_cmyk_output_is_not_srgb(photo: pyvips.Image) -> None:
    cmyk = photo.icc_transform("cmyk", input_profile="srgb")
    # without its 940 kB profile, which would (rightly) fail the bytes check as well
    report = check_output(encode(cmyk, keep="none"), expect(), LIMITS)
    assert_only(report, ["srgb"])
    assert report.failures[0].detail == "cmyk pixels, not sRGB"


def test_display_p3_tagged_output_is_not_srgb(photo: pyvips.Image) -> None:
    p3 = photo.icc_transform("p3", input_profile="srgb")  # libvips' built-in Display P3
    report = check_output(encode(p3, ".webp"), expect(mime="image/webp"), LIMITS)
    assert_only(report, ["srgb"])
    assert "lacks the sRGB primaries" in report.failures[0].detail


def test_adobe_rgb_tagged_output_is_not_srgb(photo: pyvips.Image) -> None:
    adobe = icc_profile(b"RGB ", "Adobe RGB (1998)", ADOBE_RGB)
    report = check_output(
        encode(tagged(photo, adobe), ".png"), expect(lossy=False, mime="image/png"), LIMITS
    )
    assert_only(report, ["srgb"])
    assert "'Adobe RGB (1998)'" in report.failures[0].detail


def test_an_oversized_lossy_body(photo: pyvips.Image) -> None:
    body = encode(tagged(photo), Q=95)
    report = check_output(body, expect(), QALimits(max_bytes_per_pixel=0.2))
    assert_only(report, ["bytes"])
    assert "B/px above 0.2 (+4096 B of headers) for a lossy output" in report.failures[0].detail
    # the same bytes per pixel in a lossless output are no fault
    png = encode(tagged(photo), ".png")
    limits = QALimits(max_bytes_per_pixel=0.2)
    assert_only(check_output(png, expect(lossy=False, mime="image/png"), limits), [])


def test_a_thumbnail_is_allowed_its_headers() -> None:
    """A 1x1 JPEG is mostly headers: hundreds of bytes per pixel, and nothing wrong."""
    dot = (pyvips.Image.black(1, 1, bands=3) + 128).cast("uchar").copy(interpretation="srgb")
    body = encode(dot, Q=80)
    assert len(body) > 4  # far above 4 B/px
    assert_only(check_output(body, expect(1, 1), QALimits(max_bytes_per_pixel=4.0)), [])
    padded = body + b"\0" * 5000  # but a body far beyond headers is flagged
    assert "bytes" in {c.name for c in check_output(padded, expect(1, 1), QALimits()).failures}


def test_a_tiny_body() -> None:
    flat = pyvips.Image.black(200, 200, bands=3).copy(interpretation="srgb") + 90
    body = encode(flat.cast("uchar"), ".png")
    limits = QALimits(min_bytes=len(body) + 1)
    report = check_output(body, expect(200, 200, "image/png", lossy=False), limits)
    assert_only(report, ["bytes"])
    assert "-byte minimum" in report.failures[0].detail
    # up to 64x64 pixels, small is fine
    small = encode(flat.crop(0, 0, 64, 64).cast("uchar"), ".png")
    assert_only(check_output(small, expect(64, 64, "image/png", lossy=False), limits), [])


def test_an_all_black_output_of_a_picture(photo: pyvips.Image) -> None:
    black = pyvips.Image.black(600, 400, bands=3).copy(interpretation="srgb").cast("uchar")
    body = encode(tagged(black))
    report = check_output(body, expect(), LIMITS, reference=photo)
    assert_only(report, ["not-blank"])
    assert report.failures[0].detail == "one flat colour (0, 0, 0); the reference is not flat"
    # a black source may give a black output ...
    assert_only(check_output(body, expect(), LIMITS, reference=black), [])
    # ... and without a reference only a black lossy output is suspect
    assert_only(check_output(body, expect(), LIMITS), ["not-blank"])
    png = encode(tagged(black), ".png")
    assert_only(check_output(png, expect(mime="image/png", lossy=False), LIMITS), [])


def test_a_black_lossy_output_passes_only_when_the_lossless_rendering_is_black(
    photo: pyvips.Image,
) -> None:
    black = pyvips.Image.black(600, 400, bands=3).copy(interpretation="srgb").cast("uchar")
    report = check_output(encode(tagged(black)), expect(), LIMITS)
    assert_only(report, ["not-blank"])
    dark = (black + 9).cast("uchar").copy(interpretation="srgb")  # quantises to black
    for reference in (black, dark):
        lifted = black_like_reference(report, encode(tagged(reference), ".png"))
        assert_only(lifted, [])
        assert "so is the source" in next(c for c in lifted.checks if c.name == "not-blank").detail
    assert_only(black_like_reference(report, encode(tagged(photo), ".png")), ["not-blank"])
    assert_only(black_like_reference(report, b"not an image"), ["not-blank"])


def test_a_flat_grey_output_of_a_picture(photo: pyvips.Image) -> None:
    grey = (pyvips.Image.black(600, 400, bands=3) + 128).cast("uchar")
    body = encode(tagged(grey.copy(interpretation="srgb")), ".webp", lossless=True)
    report = check_output(body, expect(mime="image/webp", lossy=False), LIMITS, reference=photo)
    assert_only(report, ["not-blank"])
    assert_only(check_output(body, expect(mime="image/webp", lossy=False), LIMITS), [])


def test_a_measured_score_below_the_floor(photo: pyvips.Image) -> None:
    report = check_output(encode(tagged(photo)), expect(floor=70, score=61.2), LIMITS)
    assert_only(report, ["quality"])
    assert report.failures[0].detail == "score 61.2 (measured) below floor 70"


def test_the_measured_score_is_used_not_recomputed(photo: pyvips.Image) -> None:
    awful = encode(tagged(photo), Q=2)
    report = check_output(awful, expect(floor=70, score=90.0), LIMITS, reference=photo)
    assert_only(report, [])


def test_a_score_computed_against_the_reference(photo: pyvips.Image) -> None:
    awful = check_output(encode(tagged(photo), Q=5), expect(floor=70), LIMITS, reference=photo)
    assert_only(awful, ["quality"])
    assert "(computed) below floor 70" in awful.failures[0].detail
    fine = check_output(encode(tagged(photo), Q=95), expect(floor=70), LIMITS, reference=photo)
    assert_only(fine, [])
    assert "(computed) meets floor 70" in fine.checks[2].detail


def test_quality_skips_and_unmeasurable_floors(photo: pyvips.Image) -> None:
    jpeg = encode(tagged(photo), Q=5)
    no_floor = check_output(jpeg, expect(floor=None, score=10.0), LIMITS)
    assert_only(no_floor, [])
    assert no_floor.checks[2].detail.startswith("skipped")
    png = encode(tagged(photo), ".png")
    lossless = check_output(png, expect(mime="image/png", lossy=False, floor=90), LIMITS)
    assert_only(lossless, [])
    assert lossless.checks[2].detail == "skipped: lossless output"
    # a floor with nothing to measure it by is not silently passed
    assert_only(check_output(jpeg, expect(floor=70), LIMITS), ["quality"])


# -- animations ------------------------------------------------------------------------


def strip(frames: list[pyvips.Image]) -> pyvips.Image:
    image = pyvips.Image.arrayjoin(frames, across=1).copy()
    image.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    image.set_type(pyvips.GValue.array_int_type, "delay", [80] * len(frames))
    return image


@pytest.mark.parametrize(
    ("suffix", "mime", "lossy"), [(".gif", "image/gif", False), (".webp", "image/webp", True)]
)
def test_synthetic_animation_dimensions(suffix: str, mime: str, lossy: bool) -> None:
    base = synthetic(80, 50)
    body = encode(strip([base, base.flip("horizontal"), base.flip("vertical")]), suffix)
    assert_only(check_output(body, expect(80, 50, mime, lossy, frames=3), LIMITS), [])
    report = check_output(body, expect(80, 50, mime, lossy, frames=2), LIMITS)
    assert_only(report, ["dimensions"])
    assert report.failures[0].detail == "80x50 x 3 frames, expected 80x50 x 2 frames"
    assert_only(check_output(body, expect(80, 150, mime, lossy), LIMITS), ["dimensions"])


@pytest.mark.parametrize(
    ("suffix", "mime", "lossy"), [(".gif", "image/gif", False), (".webp", "image/webp", True)]
)
def test_identical_consecutive_frames_merged_by_the_encoder_pass(
    suffix: str, mime: str, lossy: bool
) -> None:
    """Both encoders fold a frame identical to the previous one into it (found by the fuzz
    test: a damaged GIF whose second frame decoded like the first came out with one)."""
    base = synthetic(80, 50)
    body = encode(strip([base, base, base.flip("vertical")]), suffix)
    report = check_output(body, expect(80, 50, mime, lossy, frames=3), LIMITS)
    assert_only(report, [])
    assert report.checks[1].detail == (
        "80x50 x 2 frames: 3 rendered, identical consecutive frames merged"
    )
    # Fewer frames never excuse a wrong size, and more frames than rendered still fail.
    assert_only(check_output(body, expect(80, 40, mime, lossy, frames=3), LIMITS), ["dimensions"])
    assert_only(check_output(body, expect(80, 50, mime, lossy, frames=1), LIMITS), ["dimensions"])


def test_shared_animated_gif_dimensions() -> None:
    path = shared_data() / "skimage" / "no_time_for_that_tiny.gif"
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared test images are incomplete")
    body = path.read_bytes()
    gif = expect(14, 25, "image/gif", lossy=False, frames=24)
    report = check_output(body, gif, LIMITS)
    assert_only(report, [])
    assert report.checks[1].detail == "14x25 x 24 frames as requested"
    assert_only(check_output(body, expect(14, 25, "image/gif", False), LIMITS), ["dimensions"])
    assert_only(check_output(body, expect(14, 600, "image/gif", False), LIMITS), ["dimensions"])


# -- robustness ------------------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn, body: bytes) -> bytes:
    cut = draw(st.integers(0, len(body)))
    data = bytearray(body[:cut] if draw(st.booleans()) else body)
    for _ in range(draw(st.integers(0, 8))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


GOOD_JPEG = encode(synthetic(96, 64), Q=80)
GOOD_PNG = encode(synthetic(96, 64), ".png")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([("image/jpeg", GOOD_JPEG), ("image/png", GOOD_PNG)]))
def test_never_raises_on_damaged_bytes(data: st.DataObject, case: tuple[str, bytes]) -> None:
    mime, body = case
    report = check_output(data.draw(damaged(body)), expect(96, 64, mime, floor=70), LIMITS)
    assert [check.name for check in report.checks] == list(CHECKS)
    if not report.checks[0].ok:
        assert all(check.detail == NOT_RUN for check in report.checks[1:])


# -- ICC profiles ----------------------------------------------------------------------


def icc_profile(
    space: bytes, description: str, colorants: Sequence[Sequence[float]] | None = None
) -> bytes:
    """A minimal ICC v2 profile: header, a ``desc`` tag and optionally the colorants."""
    text = description.encode("latin-1") + b"\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(79))]
    for signature, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), colorants or (), strict=False):
        fixed = struct.pack(">iii", *(round(v * 65536) for v in xyz))
        tags.append((signature, b"XYZ \0\0\0\0" + fixed))
    offset = 132 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += struct.pack(">4sII", signature, offset + len(data), len(body))
        data += body
    header = bytearray(128)
    header[0:4] = struct.pack(">I", offset + len(data))
    header[8:12] = b"\x02\x10\0\0"
    header[12:16], header[16:20], header[20:24], header[36:40] = b"mntr", space, b"XYZ ", b"acsp"
    return bytes(header) + struct.pack(">I", len(tags)) + table + data


def test_srgb_profile_recognition() -> None:
    assert srgb_profile(libvips_srgb())[0]  # ICC v4, mluc description, matrix
    assert srgb_profile(icc_profile(b"RGB ", "c2", SRGB))[0]  # named oddly, sRGB primaries
    assert srgb_profile(icc_profile(b"RGB ", "sRGB IEC61966-2.1"))[0]  # LUT-only: by name
    assert not srgb_profile(icc_profile(b"RGB ", "sRGB IEC61966-2.1", ADOBE_RGB))[0]
    assert not srgb_profile(icc_profile(b"RGB ", "Wide Gamut"))[0]
    assert not srgb_profile(icc_profile(b"CMYK", "U.S. Web Coated (SWOP) v2"))[0]
    grey = icc_profile(b"GRAY", "Dot Gain 20%")
    assert srgb_profile(grey, grey=True)[0] and not srgb_profile(grey)[0]
    for broken in [b"", b"junk" * 40, libvips_srgb()[:140], libvips_srgb()[:128] + b"\xff" * 8]:
        ok, why = srgb_profile(broken)
        assert not ok and why.startswith("unreadable ICC profile")
