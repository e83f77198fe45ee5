"""The interface every source implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.sources.paths import SourcePath


@dataclass(frozen=True)
class SourceRef:
    """A located source: its key and an identity that changes whenever its bytes do."""

    path: SourcePath
    identity: str
    size: int
    inner: SourceRef | None = None  # the routed source's own ref, when a router wrapped it


class Source(Protocol):
    async def locate(self, path: SourcePath) -> SourceRef:
        """Find ``path`` cheaply (no body read); raises ``SourceNotFound``/``Forbidden``."""

    async def read(self, ref: SourceRef, max_bytes: int) -> bytes:
        """The source's bytes; raises ``SourceTooLarge`` past ``max_bytes``."""

    def blocking_reader(self, ref: SourceRef, max_bytes: int) -> Callable[[], bytes] | None:
        """A function that reads the bytes in the calling (worker) thread, when the source
        can do so cheaply; None means: use ``read`` on the event loop."""
