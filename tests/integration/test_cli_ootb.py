"""The command line as a newcomer meets it, run as real processes: --version, a config
print without secrets, an environment full of other LOUPE_* variables, a missing --root,
a port already in use, loupe sign guarding what it signs, ingest relative to the root."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from proxy import __version__
from proxy.signing import verify
from tests.support import REPO


def loupe(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "PYTHONPATH": str(REPO), **(env or {})},
        cwd=cwd,
    )


def test_version() -> None:
    done = loupe("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"loupe {__version__}"


def test_config_print_redacts_secrets() -> None:
    env = {
        "LOUPE_ADMIN_TOKEN": "tok-s3cret",
        "LOUPE_VLM_API_KEY": "key-s3cret",
        "LOUPE_SIGNING_KEYS": "sig-s3cret",
    }
    done = loupe("config", env=env)
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout and '"token": "***"' in done.stdout


def test_other_loupe_variables_are_left_alone_and_typos_are_named() -> None:
    env = {"LOUPE_TEST_POSTGRES": "postgresql://x", "LOUPE_SHARED_DIR": "/nowhere"}
    assert loupe("config", env=env).returncode == 0
    typo = loupe("config", env={"LOUPE_SERVER_PROT": "9000"})
    assert typo.returncode == 2
    assert "unknown setting LOUPE_SERVER_PROT" in typo.stderr and "LOUPE_SERVER_PORT" in typo.stderr


def test_a_missing_root_is_an_error_unless_create_root(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    done = loupe("serve", "--root", str(missing), "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 2
    assert f"source root {missing} does not exist (--create-root" in done.stderr
    assert "Traceback" not in done.stderr and not missing.exists()


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        root = tmp_path / "new-root"
        done = loupe(
            "serve",
            "--root",
            str(root),
            "--create-root",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"loupe: port {port} is already in use (127.0.0.1:{port})"
    )
    assert "Traceback" not in done.stderr and "Running on" not in done.stderr + done.stdout
    assert "serving" not in (done.stderr + done.stdout).lower()
    assert root.is_dir()  # --create-root made it


def test_sign_only_what_the_server_would_take() -> None:
    good = loupe("sign", "/img/a.jpg?w=300&fm=pjpg&utm_source=news", "--key", "k")
    assert good.returncode == 0, good.stderr
    url = good.stdout.strip()
    path, _, query = url.partition("?")
    assert "utm_source" not in url and "left out utm_source" in good.stderr
    assert verify(["k"], path, query) is True
    for bad, fragment in [
        ("/meta/a.jpg?w=3", "only image URLs are signed"),
        ("/a.jpg?w=3", "only image URLs are signed"),
        ("/img/", "only image URLs are signed"),
        ("/img/../secret.jpg?w=3", "only image URLs are signed"),
        ("/img/a/%2e%2e/b.jpg", "only image URLs are signed"),
        ("https://cdn.example.com/other/a.jpg", "only image URLs are signed"),
        ("/img/a.jpg?w=0", "w must be between 1 and 8192"),
        ("/img/a.jpg?rot=45", "rot must be one of"),
        ("/img/a.jpg?wdth=3", "unknown parameter 'wdth'"),
    ]:
        done = loupe("sign", bad, "--key", "k")
        assert done.returncode == 2 and fragment in done.stderr, (bad, done.stderr)
        assert done.stdout == ""


def test_ingest_takes_a_folder_relative_to_the_root(tmp_path: Path, data_root: Path) -> None:
    root = tmp_path / "images"
    (root / "shop").mkdir(parents=True)
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "shop" / "hats.png")
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    done = loupe(
        "ingest",
        "shop",
        "--root",
        str(root),
        "--data-dir",
        str(tmp_path / "d"),
        "--no-process",
        cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    assert "1 images" in done.stdout
