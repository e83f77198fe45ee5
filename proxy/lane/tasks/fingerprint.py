"""Record a source's facts (perceptual hash, size, content class) in the store, which also
indexes the hash for near-duplicate lookups."""

from __future__ import annotations

import asyncio

import pyvips

from proxy.analysis.analyzer import Analyzer
from proxy.detectors.content import known_class
from proxy.lane.reading import SourceBytes
from proxy.lane.worker import JobFailed
from proxy.sources.paths import SourcePath, canonical_path
from proxy.stores.base import Job, SourceRecord
from proxy.stores.protocols import SourceStore

KIND = "fingerprint"


class FingerprintTask:
    def __init__(self, store: SourceStore, sources: SourceBytes, analyzer: Analyzer) -> None:
        self.store = store
        self.sources = sources
        self.analyzer = analyzer

    async def __call__(self, job: Job) -> None:
        path = canonical_path(job.subject)
        blob = await self.sources.read(path)
        try:
            record = await asyncio.to_thread(self._describe, path, blob)
        except pyvips.Error as exc:
            raise JobFailed(f"undecodable source: {exc}", permanent=True) from exc
        await asyncio.to_thread(self.store.record_source, record)

    def _describe(self, path: SourcePath, blob: bytes) -> SourceRecord:
        header = pyvips.Image.new_from_buffer(blob, "")
        analysis = self.analyzer.analyse(blob, path)  # cached by phash: shared with crops
        loader = str(header.get("vips-loader")) if "vips-loader" in header.get_fields() else ""
        content = analysis.content  # "unknown" (the classifier could not answer) is no class
        if content is not None and known_class(content[0]) is None:
            content = None
        return SourceRecord(
            path=path,
            phash=analysis.phash,
            width=analysis.width,
            height=analysis.height,
            format=loader.removesuffix("load_buffer").removesuffix("load") or None,
            bytes=len(blob),
            content_class=content[0] if content else None,
            content_confidence=round(content[1], 4) if content else None,
            faces=len(analysis.faces),
        )
