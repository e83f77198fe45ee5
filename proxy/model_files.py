"""Where model files are found: the configured ``--models-dir`` first, then the repo's own
``models/`` (models trained here, such as the quality predictor, ship with the code)."""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1] / "models"
_INSTALLED = Path(sys.prefix) / "share" / "loupe" / "models"  # pyproject's data-files
# The repo's models/ in a checkout or editable install; the wheel's copy otherwise.
BUNDLED = _CHECKOUT if (_CHECKOUT / "manifest.toml").is_file() else _INSTALLED


def search_path(models_dir: Path) -> list[Path]:
    candidates = [models_dir, Path.cwd() / "models", BUNDLED]
    unique: list[Path] = []
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def find_model(relative: str, models_dir: Path) -> Path | None:
    for folder in search_path(models_dir):
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return None
