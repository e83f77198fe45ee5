"""Every model comes with the install: the pretrained weights are package data beside their
licence files, and ``loupe models check`` passes with an empty ``--models-dir``."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy import cli, model_files
from proxy.manifest import load, locate, verify

SHIPPED_MODELS = ("yunet", "u2netp")


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_the_weights_ship_in_the_package_with_their_licence(name: str) -> None:
    entry = load()[name]
    status = verify(entry, model_files.SHIPPED / entry.file)
    assert status.ok, status.detail
    assert entry.license.startswith("Apache-2.0")
    assert entry.license_file, f"[{name}] names no licence file"
    licence = (model_files.SHIPPED / entry.license_file).read_text()
    assert "Apache License" in licence and "Version 2.0" in licence


def test_the_package_data_declares_the_weights() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"models_data/*"' in pyproject


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_an_empty_models_dir_finds_the_shipped_copy(name: str, tmp_path: Path) -> None:
    status = locate(load()[name], tmp_path)
    assert status.ok and status.origin == "shipped", status


def test_models_check_passes_with_nothing_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "check", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count(" present ") == len(load())


def test_a_wrong_override_fails_and_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = load()["yunet"]
    (tmp_path / entry.file).write_bytes(b"\0" * entry.bytes)  # right size, wrong bytes
    assert cli.main(["models", "check", "--models-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "mismatch" in captured.out
    assert "not usable: yunet" in captured.err
    assert "ships with the install" in captured.err and str(tmp_path) in captured.err
