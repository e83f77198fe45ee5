"""Test helpers: the shared data folder, and real ``loupe serve`` processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))


def shared_data() -> Path:
    """``../shared/data``, or skip: the images are never copied into the repo."""
    data = shared_dir() / "data"
    if not data.is_dir():
        pytest.skip(f"shared images not found at {data} (set LOUPE_SHARED_DIR)")
    return data


POSTGRES_URL = os.environ.get("LOUPE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A store URL on a fresh, private schema of the test PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"loupe_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL} (.ci/run starts one): {exc}")
    with admin:
        admin.execute(f"CREATE SCHEMA {name}")
        sep = "&" if "?" in POSTGRES_URL else "?"
        try:
            yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{name}"
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def wait_for(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy (background work landing)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(interval)


FAST_LANE = {
    "LOUPE_LANE_POLL_S": "0.05",
    "LOUPE_LANE_BACKOFF_S": "0.2",
    "LOUPE_LANE_MAX_ATTEMPTS": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoupeServer:
    """A real ``loupe serve`` subprocess (hypercorn) on a free loopback port: one serving
    process unless ``LOUPE_SERVER_WORKERS`` in ``env`` asks for more."""

    def __init__(
        self,
        root: Path,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        environ.setdefault("LOUPE_IMAGES_AVIF_EFFORT", "2")  # skip calibration in tests
        environ.setdefault("LOUPE_SERVER_WORKERS", "1")  # tests read the server's own /proc
        environ.update(env or {})
        self.log = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log_handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "serve",
                "--root",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--create-root",
                *args,
            ],
            env=environ,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"loupe serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"loupe serve did not start:\n{self.log.read_text()}")

    def metric(self, name: str, labels: str = "") -> float:
        """One sample from ``/metrics`` (0 when absent), e.g. ``metric("loupe_renders_total")``."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)"
        found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_handle.close()


def broken_crop_models(folder: Path) -> Path:
    """A models folder with YuNet and u2netp one byte off: found first, then refused
    (sha256 mismatch), so smart crops run without their models."""
    from proxy import model_files
    from proxy.manifest import load

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("yunet", "u2netp"):
        entry = load()[name]
        data = bytearray((model_files.SHIPPED / entry.file).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / entry.file).write_bytes(bytes(data))
    return folder


def constant_predictor(folder: Path, value: float, margins: Mapping[str, int] | None) -> Path:
    """A real ONNX quality predictor that always answers ``value`` (input [N, 16] -> [N, 1]),
    with a calibration beside it when ``margins`` is given: for tests that need a predictor
    known to guess low (or high)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from proxy.manifest import sha256_of
    from proxy.quality import margin
    from proxy.quality.training import INPUTS

    weights = numpy_helper.from_array(np.zeros((INPUTS, 1), dtype=np.float32), "w")
    bias = numpy_helper.from_array(np.array([value], dtype=np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["product"]),
            helper.make_node("Add", ["product", "b"], ["variable"]),
        ],
        "constant_quality",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, INPUTS])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "quality" / "quality_predictor.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    if margins is not None:
        margin.save(path, margin.Calibration(sha256_of(path), margin.COVERAGE, dict(margins)))
    return path
