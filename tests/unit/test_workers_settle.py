"""``proxy.server.workers.settle``: the per-worker defaults decided for a machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from proxy.config import load_config
from proxy.server import workers
from proxy.server.workers import PER_WORKER_BYTES, Machine, default_workers, settle

BIG = Machine(cores=16, memory_bytes=128 * 1024**3)


def test_one_worker_per_core_with_two_threads_and_one_libvips_thread() -> None:
    server = settle(load_config(environ={}), BIG, {}).server
    assert (server.workers, server.processing_threads, server.vips_concurrency) == (16, 2, 1)


def test_memory_caps_the_workers() -> None:
    assert default_workers(Machine(16, 3 * PER_WORKER_BYTES + 1)) == 3
    assert default_workers(Machine(16, PER_WORKER_BYTES // 2)) == 1
    assert default_workers(Machine(4, None)) == 4


def test_one_worker_keeps_libvips_default_and_gets_the_cores_as_threads() -> None:
    config = load_config(environ={"LOUPE_SERVER_WORKERS": "1"})
    server = settle(config, BIG, {}).server
    assert (server.workers, server.processing_threads, server.vips_concurrency) == (1, 16, None)
    assert settle(config, Machine(2, None), {}).server.processing_threads == 2  # as before


def test_what_was_asked_for_wins() -> None:
    config = load_config(
        environ={
            "LOUPE_SERVER_WORKERS": "4",
            "LOUPE_SERVER_PROCESSING_THREADS": "3",
            "LOUPE_SERVER_VIPS_CONCURRENCY": "2",
        }
    )
    server = settle(config, BIG, {}).server
    assert (server.workers, server.processing_threads, server.vips_concurrency) == (4, 3, 2)
    unset = load_config(environ={"LOUPE_SERVER_WORKERS": "4"})
    assert settle(unset, BIG, {"VIPS_CONCURRENCY": "3"}).server.vips_concurrency is None


def test_the_memory_tier_is_shared_out() -> None:
    config = load_config(environ={"LOUPE_SERVER_WORKERS": "4"})
    settled = settle(config, BIG, {})
    assert settled.cache.memory_bytes == config.cache.memory_bytes // 4
    alone = settle(load_config(environ={"LOUPE_SERVER_WORKERS": "1"}), BIG, {})
    assert alone.cache.memory_bytes == config.cache.memory_bytes


def test_run_folders_of_dead_supervisors_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f"loupe-run-{dead.stdout.strip()}-abc"
    alive = tmp_path / f"loupe-run-{os.getpid()}-def"
    for folder in (orphan, alive):
        (folder / "metrics").mkdir(parents=True)
    workers._remove_orphaned_run_dirs(tmp_path)
    assert not orphan.exists() and alive.exists()
