"""Human QA sampling: a configured share of sources, stratified by source, content class and
processing path so rare strata are seen too, goes to the review queue."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Protocol

from proxy.qa.sampling import should_sample, stratum
from proxy.sources.paths import canonical_path
from proxy.stores.base import Job
from proxy.stores.protocols import QAStore, ReviewStore, SourceStore

KIND = "sample"


class SampleStore(SourceStore, QAStore, ReviewStore, Protocol):
    """A source's class, the sampling strata, and the review queue the sample goes to."""


class SampleTask:
    def __init__(self, store: SampleStore, rate: float) -> None:
        self.store = store
        self.rate = rate

    async def __call__(self, job: Job) -> None:
        path = canonical_path(job.subject)
        record = await asyncio.to_thread(self.store.source, path)
        content = record.content_class if record else None
        processing = str(job.payload.get("processing", "unknown"))
        key = stratum(path, content, processing)
        decide = partial(_decide, rate=self.rate)
        if await asyncio.to_thread(self.store.count_in_stratum, key, decide):
            payload = {"stratum": key, "rate": self.rate, **job.payload}
            await asyncio.to_thread(self.store.open_review, path, KIND, path, payload)


def _decide(seen: int, sampled: int, *, rate: float) -> bool:
    return should_sample(seen, sampled, rate)
