"""Route ``/img/{path}`` to a source: ``NAME/...`` goes to origin NAME, the rest to the
local folder."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from proxy.sources.base import Source, SourceRef
from proxy.sources.paths import SourcePath, split_first


class SourceRouter:
    def __init__(
        self, local: Source, origins: Mapping[str, Source], client: httpx.AsyncClient | None = None
    ) -> None:
        self.local = local
        self.origins = dict(origins)
        self._client = client

    def _route(self, path: SourcePath) -> tuple[Source, SourcePath]:
        name, rest = split_first(path)
        origin = self.origins.get(name)
        return (origin, rest) if origin is not None and rest is not None else (self.local, path)

    async def locate(self, path: SourcePath) -> SourceRef:
        source, inner = self._route(path)
        ref = await source.locate(inner)
        return SourceRef(path, ref.identity, ref.size, inner=ref)

    async def read(self, ref: SourceRef, max_bytes: int) -> bytes:
        source, _ = self._route(ref.path)
        return await source.read(ref.inner or ref, max_bytes)

    def blocking_reader(self, ref: SourceRef, max_bytes: int) -> Callable[[], bytes] | None:
        source, _ = self._route(ref.path)
        return source.blocking_reader(ref.inner or ref, max_bytes)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
