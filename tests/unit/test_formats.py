"""The formats table: its Literals agree with its rows, and every output format really is
what its row says: written by its saver, read back by its loader, sniffed as its source
format, with alpha and animation where the row claims them."""

from __future__ import annotations

from typing import Any, get_args

import pytest
import pyvips

from proxy.formats import (
    ALPHA_FORMATS,
    ANIMATED_FORMATS,
    FORMATS,
    LOSSY_FORMATS,
    OUTPUTS,
    TABLE,
    OutputFormat,
    SourceFormat,
    allowed_sources,
    output,
    output_by_mime,
    source_by_loader,
    source_suffixes,
)
from proxy.params import Format
from proxy.processing.validate import sniff


def test_literals_are_the_table() -> None:
    assert get_args(OutputFormat) == tuple(fmt.name for fmt in TABLE if fmt.saver)
    assert get_args(SourceFormat) == tuple(fmt.name for fmt in TABLE if fmt.source)
    assert get_args(Format) == ("auto", *get_args(OutputFormat))


def test_names_and_mime_types_are_unique() -> None:
    assert len(FORMATS) == len(TABLE)
    mimes = [fmt.mime for fmt in TABLE]
    assert len(set(mimes)) == len(mimes)
    assert all(mime.startswith("image/") for mime in mimes)


def test_lossy_formats_keep_the_predictor_order() -> None:
    # The quality predictor's one-hot follows this order: the shipped models depend on it.
    assert LOSSY_FORMATS == ("jpeg", "webp", "avif")
    assert sorted(ALPHA_FORMATS) == ["avif", "gif", "png", "webp"]
    assert sorted(ANIMATED_FORMATS) == ["gif", "webp"]


def test_lookups() -> None:
    for name, fmt in OUTPUTS.items():
        assert output(name) is fmt
        assert output_by_mime(fmt.mime) is fmt
    assert output_by_mime("image/heif") is None  # a source format, never served
    assert source_by_loader("heifload_buffer") == "heif"  # AVIF sources are HEIF
    assert source_by_loader("jpegload_source") == "jpeg"
    assert source_by_loader("magickload_buffer") is None
    assert allowed_sources(svg=False) == set(get_args(SourceFormat)) - {"svg"}
    assert allowed_sources(svg=True) == set(get_args(SourceFormat))


def test_source_suffixes() -> None:
    suffixes = [suffix for fmt in TABLE for suffix in fmt.suffixes]
    assert len(set(suffixes)) == len(suffixes)  # one format per file name ending
    assert all(fmt.suffixes for fmt in TABLE if fmt.source)
    assert all(s.startswith(".") and s == s.lower() for s in suffixes)
    expected = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".heic", ".heif", ".tif"}
    assert source_suffixes(svg=False) == expected | {".tiff"}
    assert source_suffixes(svg=True) == expected | {".tiff", ".svg"}


def _picture() -> pyvips.Image:
    """A 16x16 RGBA picture: green, half transparent."""
    rgb = pyvips.Image.black(16, 16, bands=3).add([10, 200, 30]).cast("uchar")
    return rgb.bandjoin(128).copy(interpretation="srgb")


def _save(image: pyvips.Image, name: OutputFormat) -> bytes:
    fmt = output(name)
    assert fmt.saver is not None
    options: dict[str, Any] = dict(fmt.save_options)
    if fmt.lossy:
        options["Q"] = 80
    return bytes(image.write_to_buffer(fmt.saver, **options))


@pytest.mark.parametrize("name", get_args(OutputFormat))
def test_output_round_trips_through_its_saver_and_loader(name: OutputFormat) -> None:
    fmt = output(name)
    body = _save(_picture(), name)
    image = pyvips.Image.new_from_buffer(body, "")
    assert str(image.get("vips-loader")).removesuffix("_buffer") == fmt.loader
    assert (image.width, image.height) == (16, 16)
    assert bool(image.hasalpha()) == fmt.alpha
    sniffed = sniff(body)
    assert sniffed == (name if fmt.source else "heif")
    assert sniffed is not None and source_by_loader(str(image.get("vips-loader"))) == sniffed


@pytest.mark.parametrize("name", sorted(ANIMATED_FORMATS))
def test_animated_outputs_keep_every_frame(name: OutputFormat) -> None:
    frame = _picture()
    pages = pyvips.Image.arrayjoin([frame, frame.invert()], across=1).copy()
    pages.set_type(pyvips.GValue.gint_type, "page-height", frame.height)
    image = pyvips.Image.new_from_buffer(_save(pages, name), "", n=-1)
    assert int(image.get("n-pages")) == 2
    assert image.height == 2 * frame.height
