"""Moderation ahead of the first request: ingest scans new sources in the lane, so their
first visitor does not wait for the scan. A known path with new bytes (a new identity) is
scanned again: the verdict belongs to the bytes it judged."""

from __future__ import annotations

import asyncio

from proxy.lane.reading import SourceBytes
from proxy.moderation import Moderator
from proxy.sources.paths import canonical_path
from proxy.stores.base import Job

KIND = "moderation"


class ModerateTask:
    def __init__(self, moderator: Moderator, sources: SourceBytes) -> None:
        self.moderator = moderator
        self.sources = sources

    async def __call__(self, job: Job) -> None:
        path = canonical_path(job.subject)
        ref = await self.sources.locate(path)
        if await asyncio.to_thread(self.moderator.known_status, path, ref.identity) is not None:
            return
        blob = await self.sources.read_located(ref)
        await asyncio.to_thread(self.moderator.scan, path, ref.identity, blob)
