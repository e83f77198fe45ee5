"""Workers take jobs from the store's queue, run their handler, and record the outcome.

Jobs are idempotent (one row per kind and subject), leased (a worker that dies gives its job
back when the lease ends), retried with exponential backoff, and dead-lettered after
``max_attempts`` so one poisoned source cannot loop forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping

from proxy.config import LaneConfig
from proxy.stores.base import Job
from proxy.stores.protocols import JobStore

log = logging.getLogger(__name__)
Handler = Callable[[Job], Awaitable[None]]
MAX_BACKOFF_S = 3600.0


class JobFailed(Exception):
    """A handler's failure; ``permanent`` ones are dead-lettered without retrying."""

    def __init__(self, message: str, *, permanent: bool = False, retry_in_s: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_in_s = retry_in_s


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff(config: LaneConfig, attempts: int) -> float:
    return float(min(MAX_BACKOFF_S, config.backoff_s * 2 ** max(0, attempts - 1)))


class Worker:
    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, Handler],
        config: LaneConfig,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.config = config
        self.name = name or worker_name()

    async def run_once(self) -> bool:
        """Run one ready job; False when there was none."""
        job = await asyncio.to_thread(self.store.claim, self.name, self.config.lease_s)
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise JobFailed(f"no handler for job kind {job.kind!r}", permanent=True)
            await asyncio.wait_for(handler(job), timeout=self.config.lease_s)
        except asyncio.CancelledError:
            raise  # shutting down: the lease expires and another worker takes it
        except Exception as exc:
            await self._failed(job, exc)
        else:
            await asyncio.to_thread(self.store.finish, job, self.name)
        return True

    async def _failed(self, job: Job, exc: Exception) -> None:
        permanent = isinstance(exc, JobFailed) and exc.permanent
        if permanent or job.attempts >= self.config.max_attempts:
            retry: float | None = None
        elif isinstance(exc, JobFailed) and exc.retry_in_s is not None:
            retry = max(exc.retry_in_s, backoff(self.config, job.attempts))
        else:
            retry = backoff(self.config, job.attempts)
        error = f"{type(exc).__name__}: {exc}"
        status = await asyncio.to_thread(self.store.fail, job, self.name, error, retry_in_s=retry)
        level = logging.ERROR if status == "dead" else logging.WARNING
        log.log(
            level,
            "job %s %s (attempt %d) %s: %s",
            job.kind,
            job.subject,
            job.attempts,
            "dead-lettered" if status == "dead" else f"retries in {retry:.0f}s",
            error,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; store outages are logged and waited out."""
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: the queue is unreachable; retrying", self.name)
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.config.poll_s)

    async def drain(self, limit: int = 10_000) -> int:
        """Run ready jobs until none is left (ingest, tests); returns how many ran."""
        ran = 0
        while ran < limit and await self.run_once():
            ran += 1
        return ran
