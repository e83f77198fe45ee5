"""Where model files are found: the configured ``--models-dir`` first, then the repo's own
``models/`` (models trained here, such as the quality predictor, ship with the code)."""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[1] / "models"


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
