"""Hostile inputs, generated on the spot (pyvips or raw bytes), for the security tests.

Nothing here is stored in the repository: every builder is deterministic and small, so
the tests can write a fresh corpus into a temporary source root.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import httpx
import pyvips

PROBLEM = "application/problem+json"


def noise(width: int, height: int, *, seed: int = 1) -> pyvips.Image:
    """A deterministic sRGB noise image (it compresses badly, so files are not tiny)."""
    rng = random.Random(seed)
    pixels = rng.randbytes(width * height * 3)
    image = pyvips.Image.new_from_memory(pixels, width, height, 3, "uchar")
    return image.copy(interpretation="srgb")


def gradient(width: int, height: int) -> pyvips.Image:
    """A smooth, deterministic sRGB image (small files, visible structure)."""
    x = pyvips.Image.xyz(width, height)[0] * (255 / max(1, width - 1))
    y = pyvips.Image.xyz(width, height)[1] * (255 / max(1, height - 1))
    return (x.bandjoin([y, (x + y) / 2])).cast("uchar").copy(interpretation="srgb")


def jpeg(width: int = 64, height: int = 48, *, seed: int = 1) -> bytes:
    return bytes(noise(width, height, seed=seed).jpegsave_buffer(Q=90, keep="none"))


def png(width: int = 64, height: int = 48, *, seed: int = 1) -> bytes:
    return bytes(noise(width, height, seed=seed).pngsave_buffer(compression=1, keep="none"))


def truncated(blob: bytes, fraction: float = 0.6) -> bytes:
    return blob[: int(len(blob) * fraction)]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_dimension_bomb(width: int = 60_000, height: int = 60_000, size: int = 100_000) -> bytes:
    """A structurally valid PNG (correct CRCs) whose IHDR claims ``width`` x ``height`` 8-bit
    greyscale pixels, with an IDAT holding only the first ~``size`` bytes of scanlines."""
    rng = random.Random(60_000)
    row = width + 1  # filter byte + one byte per pixel
    raw = bytearray(rng.randbytes(size))
    for start in range(0, len(raw), row):
        raw[start] = 0  # filter type None
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + png_chunk(b"IEND", b"")
    )


def gif_frames(count: int = 10_000) -> bytes:
    """A 1x1 animated GIF with ``count`` frames, written by hand (~23 bytes a frame)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)  # global table, 2 colours
    palette = b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (
        b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor 1x1 at 0,0
        + b"\x02\x02\x44\x01\x00"  # LZW min code 2: clear, pixel 0, end
    )
    return header + palette + loop + frame * count + b"\x3b"


def jpeg_zip_polyglot() -> bytes:
    """A real JPEG with a real ZIP archive appended (JAR/GIFAR style)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("payload/Evil.class", b"\xca\xfe\xba\xbe" + b"\x00" * 64)
        bundle.writestr("index.html", "<script>alert(document.domain)</script>")
    return jpeg(seed=7) + archive.getvalue()


def jpeg_with_script_comment() -> bytes:
    """A real JPEG whose COM segment carries HTML/JS (content-sniffing XSS)."""
    body = jpeg(seed=8)
    comment = b"<html><script>alert(1)</script></html>"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return body[:2] + segment + body[2:]


HTML = (
    b"<!DOCTYPE html>\n<html><head><title>not an image</title></head>"
    b"<body><script>alert(document.cookie)</script></body></html>\n"
)


def _exif_segment(tiff: bytes) -> bytes:
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _with_app1(tiff: bytes, width: int, height: int) -> bytes:
    body = bytes(gradient(width, height).jpegsave_buffer(Q=90, keep="none"))
    assert body[:2] == b"\xff\xd8"
    return body[:2] + _exif_segment(tiff) + body[2:]


def _ifd0(entry: bytes, next_ifd: int = 0) -> bytes:
    """A little-endian TIFF header and an IFD0 holding one 12-byte ``entry``."""
    return b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", next_ifd)


def broken_exif_variants(width: int = 64, height: int = 40) -> dict[str, bytes]:
    """JPEGs whose APP1 Exif block is malformed in different ways; the pixels are fine."""
    orientation = 0x0112
    garbage_type = _ifd0(struct.pack("<HHII", orientation, 0x7777, 0xFFFFFFFF, 0xFFFFFFF0))
    huge_count = _ifd0(struct.pack("<HHII", orientation, 3, 0x40000000, 0x7FFFFFF0))
    ifd_past_end = b"MM\x00*" + struct.pack(">I", 0x7FFFFFF0)
    loop_ifd = _ifd0(struct.pack("<HHIHH", orientation, 3, 1, 1, 0), next_ifd=8)  # IFD0 again
    out_of_range = _ifd0(struct.pack("<HHIHH", orientation, 3, 1, 0x77, 0))
    truncated_tiff = b"II*\x00\x08"
    return {
        "garbage-type": _with_app1(garbage_type, width, height),
        "huge-count": _with_app1(huge_count, width, height),
        "ifd-past-end": _with_app1(ifd_past_end, width, height),
        "ifd-loop": _with_app1(loop_ifd, width, height),
        "orientation-119": _with_app1(out_of_range, width, height),
        "truncated-tiff": _with_app1(truncated_tiff, width, height),
    }


def is_problem(response: httpx.Response, status: int | None = None) -> dict[str, object]:
    """Assert ``response`` is an RFC 9457 problem (with ``status`` if given); its body."""
    assert response.headers.get("content-type", "").startswith(PROBLEM), (
        f"{response.status_code} {response.headers.get('content-type')}: {response.text[:200]}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    for field in ("type", "title", "status", "detail"):
        assert field in body, f"problem lacks {field!r}: {body}"
    assert body["status"] == response.status_code, body
    if status is not None:
        assert response.status_code == status, f"{response.status_code} != {status}: {body}"
    return body
