"""Sliding-window limits on what a client may make the server do: failed admin sign-ins,
review items opened by anonymous image requests. In memory, per node; the set of clients
tracked is bounded, so a flood of addresses cannot grow it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from cachetools import LRUCache
from starlette.requests import Request

from proxy.errors import LoupeError


class TooManyRequests(LoupeError):
    """Too many attempts from one client: try again after ``retry_after_s``."""

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, round(retry_after_s)))})


def client_of(request: Request) -> str:
    """The peer address: the one identity a client cannot choose (a forwarded-for header
    is whatever the client writes, unless a proxy this server trusts wrote it)."""
    return request.client.host if request.client else "unknown"


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
