"""Opening one disk cache folder from several processes at once: serialised by the folder's
lock, so no process fails with "database is locked" (a worker of ``loupe serve`` on
defaults once did)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from proxy.cache.disk import LOCK_NAME, open_disk_cache

SETTINGS: dict[str, Any] = {
    "size_limit": 1 << 20,
    "eviction_policy": "least-recently-used",
    "statistics": False,
    "tag_index": True,
}


def test_opening_waits_for_the_folder_lock(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    held = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # as another process opening the folder would
    opened = threading.Event()

    def open_it() -> None:
        open_disk_cache(tmp_path, **SETTINGS).close()
        opened.set()

    thread = threading.Thread(target=open_it)
    thread.start()
    try:
        time.sleep(0.3)
        assert not opened.is_set(), "opened while another process held the folder's lock"
    finally:
        os.close(held)
    thread.join(timeout=10)
    assert opened.is_set()


def _open_and_write(directory: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        cache = open_disk_cache(Path(directory), **SETTINGS)
        cache.set(f"key-{os.getpid()}", b"x" * 64, tag="t")
        cache.close()
    except Exception as exc:  # reported to the test, which fails on any
        errors.put(repr(exc))


@pytest.mark.parametrize("round_", range(5))
def test_processes_opening_one_folder_at_once_all_succeed(tmp_path: Path, round_: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(6), context.Queue()
    workers = [
        context.Process(target=_open_and_write, args=(str(tmp_path / "cache"), barrier, errors))
        for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert errors.empty(), errors.get()
    with open_disk_cache(tmp_path / "cache", **SETTINGS) as cache:
        assert len(cache) == 6
