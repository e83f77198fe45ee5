"""A bounded pool of image workers off the event loop.

Admission is counted, not queued without end: past ``workers + queue_limit`` renders in
flight the server answers 503 with ``Retry-After`` instead of growing memory.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from proxy.errors import DeadlineExceeded, Overloaded

T = TypeVar("T")


class ProcessingPool:
    def __init__(self, workers: int, queue_limit: int, retry_after_s: int) -> None:
        self.workers = workers
        self.capacity = workers + queue_limit
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loupe-render")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, work: Callable[[float], T], deadline_s: float) -> T:
        """Run ``work(deadline)`` in a worker; ``deadline`` is a ``time.monotonic`` instant."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise Overloaded(
                    f"{self._in_flight} renders in flight; try again shortly",
                    retry_after_s=self.retry_after_s,
                )
            self._in_flight += 1
        deadline = time.monotonic() + deadline_s
        future = self._executor.submit(work, deadline)
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=deadline_s)
        except TimeoutError:
            future.cancel()  # not started yet: never runs; started: its deadline stops it
            raise DeadlineExceeded(
                f"processing took longer than {deadline_s:g} s", retry_after_s=self.retry_after_s
            ) from None

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
