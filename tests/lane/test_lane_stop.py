"""Stopping the in-process lane (``loupe serve`` shutting down) on a real SQLite store: a
running job's thread work finishes before the store closes, within ``lane.stop_grace_s``;
past it the job is cancelled and its lease hands it on."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.config import Config, LaneConfig
from proxy.lane.lane import Lane
from proxy.stores import Store, open_store
from proxy.stores.base import Job


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'lane.db'}")
    yield opened
    opened.close()


def _config(grace_s: float) -> Config:
    return Config(lane=LaneConfig(workers=1, poll_s=0.01, stop_grace_s=grace_s))


def _run(store: Store, grace_s: float, work_s: float) -> tuple[float, list[str]]:
    """Start the lane, stop it while its one job's thread work runs; the seconds that
    ``stop`` took, and what the thread had done when it returned (it reads the store as it
    ends)."""
    started, done = threading.Event(), []

    def blocking(subject: str) -> None:
        started.set()
        time.sleep(work_s)
        done.append(f"read {len(store.job_counts())} states for {subject}")

    async def handler(job: Job) -> None:
        await asyncio.to_thread(blocking, job.subject)

    async def scenario() -> tuple[float, list[str]]:
        lane = Lane(_config(grace_s), store, {"k": handler})
        store.enqueue("k", "a.jpg")
        lane.start()
        while not started.is_set():
            await asyncio.sleep(0.01)
        begun = time.monotonic()
        await lane.stop()
        return time.monotonic() - begun, list(done)

    return asyncio.run(scenario())


def test_stop_lets_the_running_job_finish_before_the_store_closes(store: Store) -> None:
    took, done = _run(store, grace_s=10.0, work_s=0.5)
    assert done == ["read 1 states for a.jpg"]  # it ran to its end before stop returned
    assert 0.3 < took < 5.0
    assert store.job_counts() == {"done": 1}


def test_past_the_grace_the_job_is_cancelled_and_stays_leased(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="proxy.lane.lane"):
        took, done = _run(store, grace_s=0.1, work_s=1.0)
    assert took < 0.8 and done == []  # stop did not wait for the whole job
    assert "1 job(s) still running" in caplog.text
    assert store.job_counts() == {"running": 1}  # its lease returns it to the queue
    time.sleep(1.2)  # the abandoned thread ends before the fixture closes the store
