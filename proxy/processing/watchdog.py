"""Kill a libvips evaluation that runs past its deadline, from one timer thread.

libvips checks an image's kill flag in its worker loop, so setting it from another thread
stops the evaluation. This replaces a per-tick ``eval`` progress callback, which re-entered
Python (and took the GIL) dozens of times per encode: ~0.6 ms of every 30 ms JPEG render.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyvips

MAX_WAIT_S = 3600.0


class Watchdog:
    """One daemon thread, started on first use, holding a heap of armed deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        # Images are held here, not in the heap, so a finished render frees its pixels now.
        self._armed: dict[int, pyvips.Image] = {}
        self._killed: set[int] = set()
        self._tickets = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, image: pyvips.Image, deadline: float) -> Iterator[Callable[[], bool]]:
        """Arm ``deadline`` (``time.monotonic()`` clock) for evaluations of ``image``; yields
        a function that tells whether the watchdog killed it."""
        ticket = next(self._tickets)
        with self._wake:
            self._armed[ticket] = image
            heapq.heappush(self._heap, (deadline, ticket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="loupe-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        try:
            yield lambda: ticket in self._killed
        finally:
            with self._wake:
                self._armed.pop(ticket, None)
                self._killed.discard(ticket)

    def _run(self) -> None:
        with self._wake:
            while True:
                # Disarmed entries are dropped lazily, when they reach the top.
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, ticket = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    # Capped: a far-off deadline (tests use 1e18) overflows the lock's timeout.
                    self._wake.wait(min(left, MAX_WAIT_S))
                    continue
                heapq.heappop(self._heap)
                self._killed.add(ticket)
                self._armed[ticket].set_kill(True)
