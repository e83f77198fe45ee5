"""A bounded pool of image workers off the event loop.

Admission is counted, not queued without end: past ``workers + queue_limit`` renders in
flight the server answers 503 with ``Retry-After`` instead of growing memory. A request
is admitted before its source is read, so a shed request costs no source bytes.
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


class Ticket:
    """One admitted render. Released once: by its worker when it ran, else by its owner."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._released = False
        self.handed_to_worker = False

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self.handed_to_worker:
            self.release()


class ProcessingPool:
    def __init__(
        self,
        workers: int,
        queue_limit: int,
        retry_after_s: int,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.on_change = on_change  # told the count in flight whenever it changes (a gauge)
        self.workers = workers
        self.capacity = workers + queue_limit
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loupe-render")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(self) -> Ticket:
        """Claim a place or raise ``Overloaded``; use as a context manager."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise Overloaded(
                    f"{self._in_flight} renders in flight; try again shortly",
                    retry_after_s=self.retry_after_s,
                )
            self._in_flight += 1
            if self.on_change is not None:
                self.on_change(self._in_flight)
        return Ticket(self._release)

    async def run(self, work: Callable[[float], T], deadline_s: float) -> T:
        """Admit, then run ``work(deadline)`` in a worker (``time.monotonic`` deadline)."""
        with self.admit() as ticket:
            return await self.run_admitted(ticket, work, deadline_s)

    async def run_admitted(
        self, ticket: Ticket, work: Callable[[float], T], deadline_s: float
    ) -> T:
        """Run ``work(deadline)`` for an already admitted ticket.

        The ticket is released when the worker finishes, not when the caller stops waiting:
        a render past its deadline still occupies its thread until libvips stops.
        """
        deadline = time.monotonic() + deadline_s
        future = self._executor.submit(work, deadline)  # raises after shutdown: ticket freed
        ticket.handed_to_worker = True
        future.add_done_callback(lambda _: ticket.release())
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
            if self.on_change is not None:
                self.on_change(self._in_flight)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
