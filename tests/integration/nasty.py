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


def gif_lzw_run(pixels: int, min_code: int = 2) -> bytes:
    """GIF image data (LZW, in sub-blocks) for ``pixels`` pixels of colour 0, written as a
    real encoder would: each code one pixel longer than the last until the table is full,
    then the longest code again and again (a "deferred clear"). 100 MP fit in ~40 KB."""
    clear, end = 1 << min_code, (1 << min_code) + 1
    first = end + 1
    out, bits, count = bytearray(), 0, 0

    def put(code: int, table_size: int) -> None:
        nonlocal bits, count
        width = min_code + 1
        while table_size >= (1 << width) and width < 12:
            width += 1
        bits |= code << count
        count += width
        while count >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            count -= 8

    put(clear, first)
    next_code, run, left, emitted = first, 1, pixels, 0
    while left > 0:
        length = min(run, left)
        # The decoder has one entry fewer than the encoder (it adds on the next code).
        put(0 if length == 1 else first + length - 2, next_code - 1 if emitted else next_code)
        emitted += 1
        left -= length
        if next_code < 4096:
            next_code += 1
            run = length + 1
    put(end, next_code - 1)
    if count:
        out.append(bits & 0xFF)
    blocks = b"".join(
        bytes([len(out[i : i + 255])]) + out[i : i + 255] for i in range(0, len(out), 255)
    )
    return bytes([min_code]) + blocks + b"\x00"


def gif_canvas_bomb(width: int, height: int, frames: int) -> bytes:
    """An animated GIF with a ``width`` x ``height`` logical screen: one frame covering it,
    then ``frames - 1`` frames of 1x1. Tiny on disk; every frame is composited onto the
    whole canvas when the animation is decoded."""
    palette = b"\x00\x00\x00\xff\xff\xff\x00\x00\x00\xff\xff\xff"
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x81, 0, 0) + palette
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms

    def frame(w: int, h: int) -> bytes:
        return control + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + gif_lzw_run(w * h)

    return header + loop + frame(width, height) + frame(1, 1) * (frames - 1) + b"\x3b"


def _riff_chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def webp_canvas_bomb(width: int, height: int, frames: int) -> bytes:
    """An animated WebP whose VP8X canvas is ``width`` x ``height`` and whose ``frames``
    ANMF frames are each one lossless pixel: a few KB for any canvas."""
    pixel = bytes(pyvips.Image.black(1, 1, bands=3).webpsave_buffer(lossless=True, keep="none"))
    assert pixel[12:16] == b"VP8L", pixel[:20]
    bitstream = pixel[20 : 20 + struct.unpack("<I", pixel[16:20])[0]]
    canvas = _riff_chunk(b"VP8X", b"\x02\x00\x00\x00" + _u24(width - 1) + _u24(height - 1))
    animation = _riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))
    placement = _u24(0) + _u24(0) + _u24(0) + _u24(0) + _u24(100) + b"\x00"
    frame = _riff_chunk(b"ANMF", placement + _riff_chunk(b"VP8L", bitstream))
    body = b"WEBP" + canvas + animation + frame * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


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
