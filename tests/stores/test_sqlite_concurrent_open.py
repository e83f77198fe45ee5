"""Several processes opening one new embedded store at once (the workers of ``loupe serve``
and ``loupe worker`` on a fresh machine). Switching a new SQLite file to WAL answers
"database is locked" at once, without waiting, when another process switches it too; the
store serialises that step with a lock file beside the database."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from proxy.sources.paths import SourcePath
from proxy.stores import open_store
from proxy.stores.base import SourceRecord


def test_a_connection_is_set_up_only_under_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "loupe.db"
    held = os.open(tmp_path / "loupe.db.open.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # as another process setting up its connection would
    opened = threading.Event()

    def open_it() -> None:
        open_store(f"sqlite:///{database}").close()
        opened.set()

    thread = threading.Thread(target=open_it)
    thread.start()
    try:
        time.sleep(0.3)
        assert not opened.is_set(), "set up a connection while another process held the lock"
    finally:
        os.close(held)
    thread.join(timeout=30)
    assert opened.is_set()


def _open_and_write(url: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        store = open_store(url)
        store.record_source(SourceRecord(SourcePath(f"from-{os.getpid()}.png")))
        store.close()
    except Exception as exc:  # reported to the test, which fails on any
        errors.put(repr(exc))


@pytest.mark.parametrize("round_", range(8))
def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path, round_: int) -> None:
    url = f"sqlite:///{tmp_path / 'loupe.db'}"
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(6), context.Queue()
    workers = [
        context.Process(target=_open_and_write, args=(url, barrier, errors)) for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert errors.empty(), errors.get()
    store = open_store(url)
    try:
        assert all(store.source(SourcePath(f"from-{w.pid}.png")) for w in workers)
    finally:
        store.close()
