"""``loupe ingest`` and ``loupe worker`` as separate processes on one store: jobs
queued once, run by whichever worker claims them, and a worker killed mid-job loses nothing
(its lease expires and another worker finishes the job)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.stores import open_store
from tests.support import REPO, LoupeServer, postgres_schema, shared_dir, wait_for
from tests.vlm_server import VlmServer


@pytest.fixture(params=["postgresql", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """PostgreSQL (SKIP LOCKED claims) and the embedded SQLite file (leases under its write
    lock): separate worker processes share either."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def root(data_root: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    (folder / "gallery").mkdir(parents=True)
    for number in ("01", "03", "06"):
        shutil.copy(
            data_root / "kodak" / f"kodim{number}.png", folder / "gallery" / f"k{number}.png"
        )
    shutil.copy(data_root / "kodak" / "kodim03.png", folder / "gallery" / "k03-copy.png")
    return folder


def loupe(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "proxy", *args]


def environ(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    base.update({"LOUPE_LANE_POLL_S": "0.05", "LOUPE_LANE_BACKOFF_S": "0.2", **extra})
    return base


def common(root: Path, data: Path, store: str, vlm: VlmServer) -> list[str]:
    return [
        "--root", str(root), "--data-dir", str(data), "--store", store,
        "--vlm-url", vlm.url, "--models-dir", str(shared_dir() / "models"),
    ]  # fmt: skip


def test_ingest_then_separate_workers_finish_everything(
    root: Path, tmp_path: Path, store_url: str
) -> None:
    with VlmServer(mode="logprobs") as vlm:
        args = common(root, tmp_path / "data", store_url, vlm)
        queued = subprocess.run(
            loupe("ingest", str(root / "gallery"), "--no-process", "--progress", *args),
            env=environ(), cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr
        assert "4 images, 12 jobs queued" in queued.stdout  # fingerprint, alt, sample each
        assert "queueing" in queued.stderr  # the progress bar
        again = subprocess.run(
            loupe("ingest", str(root / "gallery"), "--no-process", *args),
            env=environ(), cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "0 jobs queued" in again.stdout  # idempotent

        vlm.delay_s = 2.0  # keep the first alt job in flight long enough to kill its worker
        doomed = subprocess.Popen(
            loupe("worker", "--concurrency", "1", *args),
            env=environ(LOUPE_LANE_LEASE_S="3"), cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        store = open_store(store_url)
        try:
            wait_for(lambda: store.job_counts().get("running"), timeout=60, what="a running job")
            wait_for(lambda: len(vlm.requests) >= 1, timeout=60, what="an alt call in flight")
            os.kill(doomed.pid, signal.SIGKILL)  # mid-job
            doomed.wait()
            vlm.delay_s = 0.0
            survivors = [
                subprocess.Popen(
                    loupe("worker", "--concurrency", "2", *args),
                    env=environ(LOUPE_LANE_LEASE_S="3"),
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(2)
            ]
            try:
                wait_for(
                    lambda: store.job_counts() == {"done": 12}, timeout=90, what="all jobs done"
                )
            finally:
                for process in survivors:
                    process.send_signal(signal.SIGTERM)
                for process in survivors:
                    process.wait(timeout=20)
            for name in ("k01", "k03", "k06", "k03-copy"):
                alt = store.alt(f"gallery/{name}.png")
                assert alt is not None and alt.status == "machine", name
            copy = store.alt("gallery/k03-copy.png")
            original = store.alt("gallery/k03.png")
            assert copy is not None and original is not None
            assert copy.reused_from == "gallery/k03.png" or original.reused_from == (
                "gallery/k03-copy.png"
            )
            assert store.near_duplicates(
                store.source("gallery/k03.png").phash or "",
                6,
                exclude="gallery/k03.png",  # type: ignore[union-attr]
            ) == [("gallery/k03-copy.png", 0)]
        finally:
            store.close()

        # a server on the same store lists the duplicate in /meta
        server = LoupeServer(root, tmp_path / "serve-data", args=("--store", store_url))
        try:
            meta = httpx.get(f"{server.url}/meta/gallery/k03.png", timeout=60).json()
            assert meta["duplicates"] == ["gallery/k03-copy.png"]
            assert meta["alt"]["status"] == "machine"
        finally:
            server.stop()


def test_ingest_refuses_a_folder_outside_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run(
        loupe("ingest", str(outside), "--root", str(root), "--data-dir", str(tmp_path / "d")),
        env=environ(), cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "not inside the source root" in result.stderr
    time.sleep(0)
