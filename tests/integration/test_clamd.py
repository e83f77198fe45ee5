"""Malware scanning through a real clamd (Debian package ``clamav-daemon``).

There is no virus database offline, so the fixture writes its own: an MD5 signature of one
generated PNG (``.hdb``) and a hex body signature (``.ndb``) that matches a marker inside
a JPEG comment. A flagged source is 422 ``malware-detected``, a clean one is served, and
with clamd gone a source that still needs scanning is 503 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration import nasty
from tests.integration.imaging import NO_MODERN
from tests.support import LoupeServer

MARKER = b"LOUPE-TEST-MALWARE-MARKER-7f3a"
TIMEOUT = 30.0


def clamd_binary() -> str:
    found = shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.skip("clamd not installed (Debian/Ubuntu: apt-get install clamav-daemon)")
    return found


def flagged_png() -> bytes:
    return nasty.png(24, 24, seed=666)


def marked_jpeg() -> bytes:
    body = nasty.jpeg(24, 24, seed=667)
    segment = b"\xff\xfe" + struct.pack(">H", len(MARKER) + 2) + MARKER
    return body[:2] + segment + body[2:]


@dataclass
class Clamd:
    socket: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_for(sock_path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"clamd exited:\n{log.read_text(errors='replace')}")
        if sock_path.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(2)
                try:
                    probe.connect(str(sock_path))
                    probe.sendall(b"zPING\0")
                    if probe.recv(16).startswith(b"PONG"):
                        return
                except OSError:
                    pass
        time.sleep(0.1)
    raise RuntimeError(f"clamd did not come up:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    binary = clamd_binary()
    base = tmp_path_factory.mktemp("clamd")
    db = base / "db"
    db.mkdir()
    png = flagged_png()
    (db / "loupe.hdb").write_text(f"{hashlib.md5(png).hexdigest()}:{len(png)}:Loupe.Test.Hash\n")
    (db / "loupe.ndb").write_text(f"Loupe.Test.Pattern:0:*:{MARKER.hex()}\n")
    sock_path = base / "clamd.sock"
    log = base / "clamd.log"
    conf = base / "clamd.conf"
    conf.write_text(
        f"LocalSocket {sock_path}\n"
        f"DatabaseDirectory {db}\n"
        f"LogFile {log}\n"
        f"TemporaryDirectory {base}\n"
        f"PidFile {base / 'clamd.pid'}\n"
        "Foreground yes\n"
        "SelfCheck 3600\n"
    )
    output = (base / "clamd.out").open("wb")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=output, stderr=subprocess.STDOUT)
    running = Clamd(sock_path, process, log)
    try:
        _wait_for(sock_path, process, log)
        yield running
    finally:
        running.stop()
        output.close()


@pytest.fixture(scope="module")
def scanned(clamd: Clamd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("clamd-root")
    (root / "flagged.png").write_bytes(flagged_png())
    (root / "marked.jpg").write_bytes(marked_jpeg())
    (root / "clean.png").write_bytes(nasty.png(24, 24, seed=665))
    (root / "later.png").write_bytes(nasty.png(24, 24, seed=664))
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("clamd-data"),
        env={"LOUPE_SECURITY_CLAMD": str(clamd.socket), "LOUPE_SECURITY_CLAMD_TIMEOUT_S": "3"},
    )
    yield running
    running.stop()


def img(server: LoupeServer, path: str, query: str = "w=16&fm=png") -> httpx.Response:
    return httpx.get(f"{server.url}/img/{path}?{query}", headers=NO_MODERN, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("path", "signature"),
    [("flagged.png", "Loupe.Test.Hash"), ("marked.jpg", "Loupe.Test.Pattern")],
)
def test_flagged_source_is_422(scanned: LoupeServer, path: str, signature: str) -> None:
    for _ in range(2):  # and stays refused: never cached as an image
        body = nasty.is_problem(img(scanned, path), 422)
        assert body["type"] == "https://loupe.dev/problems/malware-detected", body
        assert signature in str(body["detail"]), body
    assert scanned.metric("loupe_renders_total") == 0


def test_clean_source_is_served(scanned: LoupeServer) -> None:
    response = img(scanned, "clean.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"


def test_scanner_down_is_503_with_retry_after(scanned: LoupeServer, clamd: Clamd) -> None:
    assert img(scanned, "clean.png").status_code == 200
    clamd.stop()
    assert not clamd.socket.exists() or clamd.process.poll() is not None
    response = img(scanned, "later.png")
    body = nasty.is_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    assert "scanner" in str(body["detail"]), body
    # Unscanned bytes are never served, whatever the variant.
    nasty.is_problem(img(scanned, "clean.png", "w=12&fm=png"), 503)
    nasty.is_problem(img(scanned, "flagged.png", "w=12&fm=png"), 503)
    assert httpx.get(scanned.url + "/healthz", timeout=5).status_code == 200
