"""The ``loupe`` command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import shared_dir


def loupe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``loupe`` with no LOUPE_* settings but those given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


def test_metric_prints_the_reference_score() -> None:
    folder = shared_dir() / "reference" / "ssimulacra2"
    if not folder.is_dir():
        pytest.skip(f"reference pairs not found at {folder}")
    expected = json.loads((folder / "scores.json").read_text())["005_jpeg25.png"]
    done = loupe("metric", str(folder / expected["reference"]), str(folder / "005_jpeg25.png"))
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout) - expected["ssimulacra2"]) <= 0.5


def test_metric_refuses_a_missing_file_clearly(tmp_path: Path) -> None:
    done = loupe("metric", str(tmp_path / "nope.png"), str(tmp_path / "nope2.png"))
    assert done.returncode == 2
    assert done.stderr.startswith("loupe: ")


def test_config_layers_flags_env_and_file(tmp_path: Path) -> None:
    file = tmp_path / "loupe.toml"
    file.write_text("[server]\nport = 9001\nqueue_limit = 5\n")
    env = {"LOUPE_SERVER_QUEUE_LIMIT": "7"}
    done = loupe("config", "--config", str(file), env=env)
    assert done.returncode == 0, done.stderr
    effective = json.loads(done.stdout)
    assert effective["server"]["port"] == 9001
    assert effective["server"]["queue_limit"] == 7  # environment beats the file


def test_invalid_config_is_a_clear_start_up_error(tmp_path: Path) -> None:
    file = tmp_path / "loupe.toml"
    file.write_text("[server]\nport = -1\n")
    done = loupe("serve", "--config", str(file), "--root", str(tmp_path))
    assert done.returncode == 2
    assert "server.port" in done.stderr
