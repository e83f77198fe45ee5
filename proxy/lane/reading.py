"""How background jobs get a source's bytes and sidecar: through the same sources (and so
the same SSRF guard and size limits) as the request path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proxy.alt.context import read_sidecar
from proxy.sources.base import Source, SourceRef
from proxy.sources.paths import SourcePath


class SourceBytes:
    def __init__(self, source: Source, max_bytes: int, local_root: Path | None) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.local_root = local_root

    async def read(self, path: SourcePath) -> bytes:
        return await self.read_located(await self.locate(path))

    async def locate(self, path: SourcePath) -> SourceRef:
        return await self.source.locate(path)

    async def read_located(self, ref: SourceRef) -> bytes:
        return await self.source.read(ref, self.max_bytes)

    def sidecar(self, path: SourcePath) -> Mapping[str, Any] | None:
        """``photo.jpg.json`` beside a local source (caption, title); origins have none."""
        if self.local_root is None:
            return None
        candidate = (self.local_root / path).resolve()
        root = self.local_root.resolve()
        if root not in candidate.parents or not candidate.is_file():
            return None
        return read_sidecar(candidate)
