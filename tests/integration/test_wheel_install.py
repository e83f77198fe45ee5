"""Out of the box: the built wheel, installed into a fresh venv, serves model-backed smart
crops from an empty folder outside the repository, and ``loupe models check`` passes.

The venv reuses the installed dependencies (``--system-site-packages``) so the test stays
fast; Loupe itself comes only from the wheel (checked: ``proxy`` imports from the venv).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import REPO, free_port

PORTRAIT = "kodak/kodim18.png"  # a woman, full length, 512x768; one face near the top


def _build_wheel(work: Path) -> Path:
    """A wheel of the repo as it is now, built from a copy (no build/ left in the repo)."""
    tree = work / "src"
    tree.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("proxy", "models"):
        shutil.copytree(REPO / folder, tree / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    out = work / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = out.glob("loupe-*.whl")
    return wheel


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (the checkout must not leak in) and no LOUPE_* of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_") and k != "PYTHONPATH"}
    env["LOUPE_IMAGES_AVIF_EFFORT"] = "2"  # skip the AVIF calibration
    return env


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_wheel_in_a_fresh_venv_serves_model_backed_smart_crops(
    data_root: Path, tmp_path: Path
) -> None:
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
        env=_clean_env(),
    )
    env = _clean_env()
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import proxy; print(proxy.__file__)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), f"proxy imported from {where}, not from the wheel"
    installed = Path(where).parent
    size = _tree_bytes(installed) + _tree_bytes(venv / "share" / "loupe")
    print(f"\ninstalled size of loupe (package + data files): {size / 1e6:.1f} MB")

    check = subprocess.run(
        [str(venv / "bin" / "loupe"), "models", "check"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert re.search(r"^yunet\s+present .*shipped", check.stdout, re.MULTILINE), check.stdout
    assert re.search(r"^u2netp\s+present .*shipped", check.stdout, re.MULTILINE), check.stdout

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(data_root / PORTRAIT, images / "portrait.png")
    port = free_port()
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [str(venv / "bin" / "loupe"), "serve", "--root", str(images), "--port", str(port)],
            cwd=empty,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() - started < 60, log.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        print(f"start-up to /healthz: {time.monotonic() - started:.2f} s")
        # A wide window on a tall portrait: most placements cut the face out.
        query = {"w": 600, "h": 200, "fit": "crop", "crop": "smart", "fm": "jpeg"}
        response = httpx.get(base + "/img/portrait.png", params=query, timeout=60)
        assert response.status_code == 200, response.text
        crop = response.headers["x-loupe-crop"]
        assert "strategy=smart" in crop and "by=ai" in crop, crop
        assert "requested=" not in crop, f"fell back instead of using the models: {crop}"
        x, y, w, h = (int(v) for v in re.search(r"rect=([0-9,]+)", crop).group(1).split(","))  # type: ignore[union-attr]
        meta = httpx.get(base + "/meta/portrait.png", timeout=60).json()
        assert meta["unavailable"] == {}, meta["unavailable"]
        [face] = meta["faces"]
        assert x <= face["x"] and face["x"] + face["width"] <= x + w, (crop, face)
        assert y <= face["y"] and face["y"] + face["height"] <= y + h, (crop, face)
        used = {model["name"] for model in meta["models"]}
        assert {"yunet", "u2netp"} <= used, meta["models"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "Traceback" not in log.read_text(errors="replace")
