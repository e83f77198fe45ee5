"""The model manifest: parsing, verifying files (present / missing / mismatch) and
``loupe models check``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from proxy import cli
from proxy.manifest import (
    MANIFEST,
    ManifestError,
    ModelEntry,
    check,
    format_table,
    load,
    locate,
    parse,
    sha256_of,
    verify,
)
from proxy.model_files import find_model
from tests.support import shared_dir

VALID = """
[tiny]
file = "sub/tiny.onnx"
task = "testing"
sha256 = "{sha}"
bytes = {size}
license = "MIT"
source = "written by the test"
"""


def entry_for(data: bytes, file: str = "tiny.onnx") -> ModelEntry:
    return ModelEntry(
        name="tiny",
        file=file,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        license="MIT",
        source="test",
    )


def shared_models_or_skip() -> Path:
    folder = shared_dir() / "models"
    # Models trained here ship in the repo's models/; the others must be in shared/models.
    absent = [e.file for e in load().values() if find_model(e.file, folder) is None]
    if absent:
        pytest.skip(f"{', '.join(absent)} not found in {folder} (set LOUPE_SHARED_DIR)")
    return folder


# --------------------------------------------------------------------------------------
# Parsing.


def test_the_repo_manifest_lists_the_detectors() -> None:
    entries = load(MANIFEST)
    assert {"yunet", "u2netp"} <= set(entries)
    for name, entry in entries.items():
        assert entry.name == name
        assert len(entry.sha256) == 64 and entry.bytes > 0
        assert entry.license and entry.source and entry.file
    assert entries["yunet"].file == "face_detection_yunet_2023mar.onnx"
    assert entries["u2netp"].bytes == 4_574_861


def test_parse_a_valid_entry() -> None:
    sha = "AB" * 32
    (entry,) = parse(VALID.format(sha=sha, size=12)).values()
    assert entry == ModelEntry(
        "tiny", "sub/tiny.onnx", "ab" * 32, 12, "MIT", "written by the test", "testing"
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[tiny\n", "not valid TOML"),
        ("tiny = 3\n", "must be a table"),
        ('[tiny]\nfile = "a.onnx"\n', "lacks sha256, bytes, license, source"),
        (VALID.format(sha="ab" * 31, size=1), "64 hex digits"),
        (VALID.format(sha="zz" * 32, size=1), "64 hex digits"),
        (VALID.format(sha="ab" * 32, size=-1), "non-negative integer"),
        (VALID.format(sha="ab" * 32, size='"12"'), "non-negative integer"),
        (VALID.format(sha="ab" * 32, size=1).replace("sub/tiny", "/abs"), "relative path"),
        (VALID.format(sha="ab" * 32, size=1).replace("sub/tiny", "../up"), "relative path"),
        (VALID.format(sha="ab" * 32, size=1).replace('"MIT"', "3"), "license must be"),
    ],
)
def test_parse_refuses_malformed_manifests(text: str, complaint: str) -> None:
    with pytest.raises(ManifestError, match=complaint):
        parse(text)


def test_load_of_a_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load(tmp_path / "manifest.toml")


# --------------------------------------------------------------------------------------
# Verifying files.


def test_present_missing_and_mismatching_files(tmp_path: Path) -> None:
    data = b"model bytes" * 1000
    (tmp_path / "tiny.onnx").write_bytes(data)
    assert sha256_of(tmp_path / "tiny.onnx") == hashlib.sha256(data).hexdigest()

    present = locate(entry_for(data), tmp_path)
    assert present.state == "present" and present.ok
    assert present.path == (tmp_path / "tiny.onnx").resolve()

    missing = locate(entry_for(data, "absent-model-file.onnx"), tmp_path)
    assert missing.state == "missing" and missing.path is None and not missing.ok
    assert str(tmp_path.resolve()) in missing.detail

    same_size = bytes([data[0] ^ 1]) + data[1:]
    wrong_sha = verify(entry_for(same_size), tmp_path / "tiny.onnx")
    assert wrong_sha.state == "mismatch" and "sha256" in wrong_sha.detail

    wrong_size = verify(entry_for(data + b"!"), tmp_path / "tiny.onnx")
    assert wrong_size.state == "mismatch" and "bytes" in wrong_size.detail


def test_sha256_is_streamed_over_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB: several chunks
    (tmp_path / "big.bin").write_bytes(data)
    assert sha256_of(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()


def test_check_reports_every_entry_in_order(tmp_path: Path) -> None:
    good, bad = b"good", b"bad"
    (tmp_path / "good.onnx").write_bytes(good)
    (tmp_path / "bad.onnx").write_bytes(b"BAD")
    entries = {
        "good": entry_for(good, "good.onnx"),
        "bad": entry_for(bad, "bad.onnx"),
        "gone": entry_for(good, "gone-model-file.onnx"),
    }
    statuses = check(tmp_path, entries)
    assert [s.state for s in statuses] == ["present", "mismatch", "missing"]
    table = format_table(statuses).splitlines()
    assert table[0].split()[:3] == ["model", "state", "bytes"]
    assert [line.split()[:2] for line in table[1:]] == [
        ["tiny", "present"],
        ["tiny", "mismatch"],
        ["tiny", "missing"],
    ]


def test_the_shared_models_match_the_manifest() -> None:
    statuses = check(shared_models_or_skip())
    assert all(s.ok for s in statuses), [(s.entry.name, s.detail) for s in statuses]


# --------------------------------------------------------------------------------------
# loupe models check


def test_cli_all_present(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_models_or_skip()
    assert cli.main(["models", "check", "--models-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("present") == len(load())
    assert "yunet" in out and "u2netp" in out


def test_cli_default_models_dir_comes_from_the_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_models_or_skip()
    for name in list(os.environ):
        if name.startswith("LOUPE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOUPE_STORAGE_MODELS_DIR", str(folder))
    assert cli.main(["models", "check"]) == 0
    assert str(folder.resolve()) in capsys.readouterr().out


def test_cli_mismatch_and_missing_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = load()
    first = next(iter(entries.values()))
    (tmp_path / first.file).write_bytes(b"\0" * first.bytes)  # right size, wrong bytes
    assert cli.main(["models", "check", "--models-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "mismatch" in out and "sha256" in out
    others = [e for e in entries.values() if e is not first]
    if all(find_model(e.file, tmp_path) is None for e in others):
        states = [line.split()[1] for line in out.splitlines()[1:]]
        assert states.count("missing") == len(others)
