"""Hints for the prompt: sidecar captions and titles, EXIF, the folder; never an exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.alt.context import (
    MAX_FIELD_CHARS,
    MAX_SIDECAR_BYTES,
    AltContext,
    context_for,
    exif_value,
    read_sidecar,
)
from tests.support import shared_data


def jpeg_with_exif(**fields: str) -> bytes:
    image = pyvips.Image.black(32, 24).copy()
    for name, value in fields.items():
        image.set_type(pyvips.GValue.gstr_type, name, value)
    data: bytes = image.jpegsave_buffer()
    return data


# --- sidecars ---------------------------------------------------------------------------------


def test_sidecar_beside_the_full_name(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"")
    (tmp_path / "photo.jpg.json").write_text('{"caption": "Beach", "title": "Summer"}')
    (tmp_path / "photo.json").write_text('{"caption": "the other one"}')
    assert read_sidecar(source) == {"caption": "Beach", "title": "Summer"}


def test_sidecar_beside_the_stem(tmp_path: Path) -> None:
    (tmp_path / "photo.json").write_text('\ufeff{"caption": "Beach"}', encoding="utf-8")
    assert read_sidecar(tmp_path / "photo.jpg") == {"caption": "Beach"}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '"caption"', "\xff\xfe", "[" * 5000])
def test_bad_sidecar_is_none(tmp_path: Path, content: str) -> None:
    (tmp_path / "photo.jpg.json").write_bytes(content.encode("latin-1"))
    assert read_sidecar(tmp_path / "photo.jpg") is None


def test_oversized_sidecar_is_none(tmp_path: Path) -> None:
    padding = "x" * MAX_SIDECAR_BYTES
    (tmp_path / "photo.jpg.json").write_text(json.dumps({"caption": "Beach", "pad": padding}))
    assert read_sidecar(tmp_path / "photo.jpg") is None


def test_no_sidecar_is_none(tmp_path: Path) -> None:
    assert read_sidecar(tmp_path / "photo.jpg") is None
    (tmp_path / "photo.jpg.json").mkdir()  # a directory of that name is not a sidecar
    assert read_sidecar(tmp_path / "photo.jpg") is None


# --- context_for ------------------------------------------------------------------------------


def test_context_from_path_sidecar_and_exif() -> None:
    blob = jpeg_with_exif(
        **{
            "exif-ifd0-ImageDescription": "Red leather boot",
            "exif-ifd0-Make": "Canon",
            "exif-ifd0-Model": "Canon EOS 5D",
            "exif-ifd0-Artist": "Jane Doe",
            "exif-ifd0-Copyright": "Jane Doe 2021",
            "exif-ifd2-DateTimeOriginal": "2021:05:04 10:11:12",
        }
    )
    sidecar = {"caption": "  New\nseason  ", "title": "Boots", "credit": "Jane Doe"}
    context = context_for("/shop/shoes/red-boot.jpg", blob, sidecar)
    assert context.folder == "shop/shoes"
    assert context.filename == "red-boot.jpg"
    assert context.caption == "New season"
    assert context.title == "Boots"
    assert dict(context.exif) == {
        "description": "Red leather boot",
        "date": "2021-05-04 10:11:12",
        "camera": "Canon EOS 5D",
    }
    assert "Jane" not in json.dumps(context.to_json())  # artist and copyright never leave


def test_context_to_json_round_trips() -> None:
    context = AltContext("a/b", "c.png", caption="x", exif={"date": "2020-01-01"})
    assert context.to_json() == {
        "folder": "a/b",
        "filename": "c.png",
        "caption": "x",
        "title": None,
        "exif": {"date": "2020-01-01"},
    }
    assert json.loads(json.dumps(context.to_json())) == context.to_json()


def test_context_for_caps_and_cleans_hints() -> None:
    sidecar = {"caption": "word " * 200, "title": 42, "x": None}
    context = context_for("top.png", b"", sidecar)
    assert context.folder == "" and context.filename == "top.png"
    assert context.caption is not None and len(context.caption) <= MAX_FIELD_CHARS + 1
    assert context.title is None


def test_context_for_a_shared_image() -> None:
    path = shared_data() / "skimage" / "hubble_deep_field.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is not in the shared data")
    context = context_for("skimage/hubble_deep_field.jpg", path.read_bytes())
    assert context.folder == "skimage"
    assert context.exif.get("date", "").startswith("2012-09-17")


@pytest.mark.parametrize(
    "blob", [b"", b"\x00" * 10, b"\xff\xd8\xff\xe1garbage", b"GIF89a", b"<svg", b"RIFF\x00\x00"]
)
def test_context_for_garbage_does_not_raise(blob: bytes) -> None:
    context = context_for("a/b/c.jpg", blob)
    assert context == AltContext("a/b", "c.jpg")


@settings(max_examples=40, deadline=None)
@given(path=st.text(max_size=40), blob=st.binary(max_size=64))
def test_context_for_never_raises(path: str, blob: bytes) -> None:
    context_for(path, blob, {"caption": path})


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("Canon (Canon, ASCII, 6 components, 6 bytes)", "Canon"),
        ("A (b) (A (b), ASCII, 6 components, 6 bytes)", "A (b)"),
        ("2012:09:17 (2012:09:17, ASCII, 11 components, 11 bytes)", "2012:09:17"),
        ("plain", "plain"),
        ("  (  , ASCII, 1 components, 1 bytes)", None),
        (42, None),
    ],
)
def test_exif_value(raw: object, value: str | None) -> None:
    assert exif_value(raw) == value
