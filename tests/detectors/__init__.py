"""Tests of the model-backed detectors, on the real model files in ``../shared/models``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pyvips

from proxy.manifest import load, locate
from proxy.model_files import find_model
from tests.support import shared_dir


def shared_models(model: str) -> Path:
    """The shared models folder, or skip when the model's file is absent there; fail when it
    is there with other bytes than the manifest's (that is a broken checkout, not a skip)."""
    entry = load()[model]
    folder = shared_dir() / "models"
    if not (folder / entry.file).is_file():
        pytest.skip(f"{entry.file} not found in {folder} (set LOUPE_SHARED_DIR)")
    status = locate(entry, folder)
    assert status.ok, f"{status.path}: {status.detail}"
    return folder


def empty_models_dir(tmp_path: Path, model: str) -> Path:
    """A models folder without the file, or skip when the search path finds it elsewhere
    (``./models`` or the repo's ``models/``)."""
    file = load()[model].file
    found = find_model(file, tmp_path)
    if found is not None:
        pytest.skip(f"{file} is also at {found}: cannot simulate a missing model")
    return tmp_path


def tampered_models_dir(source: Path, tmp_path: Path, model: str) -> Path:
    """A models folder holding the model's file with one byte changed (same size)."""
    file = load()[model].file
    target = tmp_path / file
    shutil.copyfile(source / file, target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return tmp_path


def image(relative: str) -> pyvips.Image:
    """An image of ``../shared/data``, or skip."""
    path = shared_dir() / "data" / relative
    if not path.is_file():
        pytest.skip(f"shared image {path} not found (set LOUPE_SHARED_DIR)")
    return pyvips.Image.new_from_file(str(path))


def flat(width: int, height: int, colour: tuple[int, int, int]) -> pyvips.Image:
    canvas = pyvips.Image.black(width, height, bands=3).new_from_image(list(colour))
    return canvas.cast("uchar").copy(interpretation="srgb")
