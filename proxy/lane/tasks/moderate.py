"""Moderation ahead of the first request: ingest scans new sources in the lane, so their
first visitor does not wait for the scan."""

from __future__ import annotations

import asyncio

from proxy.lane.reading import SourceBytes
from proxy.moderation import Moderator
from proxy.stores.base import Job

KIND = "moderation"


class ModerateTask:
    def __init__(self, moderator: Moderator, sources: SourceBytes) -> None:
        self.moderator = moderator
        self.sources = sources

    async def __call__(self, job: Job) -> None:
        if await asyncio.to_thread(self.moderator.known_status, job.subject) is not None:
            return
        blob = await self.sources.read(job.subject)
        await asyncio.to_thread(self.moderator.scan, job.subject, blob)
