"""Sliding-window counting: at most so many events per key in a moving window. The admin
token's failed attempts and the review openings anonymous requests may cause both use it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from cachetools import LRUCache


class SlidingWindow:
    """At most ``limit`` events per ``window_s`` for each key."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_keys: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: LRUCache[str, deque[float]] = LRUCache(maxsize=max_keys)
        self._lock = threading.RLock()  # take() holds it across retry_after() and record()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may act again, or None when it may act now."""
        now = self._clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                return None
            while events and now - events[0] >= self.window_s:
                events.popleft()
            if len(events) < self.limit:
                return None
            return self.window_s - (now - events[0])

    def record(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                events = self._events[key] = deque(maxlen=self.limit)
            events.append(now)

    def take(self, key: str) -> bool:
        """Record an event if ``key`` is under its limit; whether it was."""
        with self._lock:
            if self.retry_after(key) is not None:
                return False
            self.record(key)
            return True
