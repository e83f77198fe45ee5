"""Admission for origin downloads, before a byte moves: at most ``concurrent`` at once and
``waiting`` more queued; past that a request is shed with 503 + Retry-After. With each body
capped at ``limits.max_source_bytes``, this bounds the memory origin fetches can take."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from proxy.errors import Overloaded


class FetchGate:
    def __init__(self, concurrent: int, waiting: int, retry_after_s: int) -> None:
        self.concurrent = concurrent
        self.waiting = waiting
        self.retry_after_s = retry_after_s
        self._running = 0
        self._queued = 0
        self._free = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        async with self._free:
            if self._running >= self.concurrent and self._queued >= self.waiting:
                raise Overloaded(
                    f"{self._running} origin downloads running and {self._queued} waiting",
                    retry_after_s=self.retry_after_s,
                )
            self._queued += 1
            try:
                await self._free.wait_for(lambda: self._running < self.concurrent)
            finally:
                self._queued -= 1
            self._running += 1
        try:
            yield
        finally:
            async with self._free:
                self._running -= 1
                self._free.notify()
