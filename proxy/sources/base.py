"""The interface every source implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SourceRef:
    """A located source: its key and an identity that changes whenever its bytes do."""

    path: str
    identity: str
    size: int
    inner: SourceRef | None = None  # the routed source's own ref, when a router wrapped it


class Source(Protocol):
    async def locate(self, path: str) -> SourceRef:
        """Find ``path`` cheaply (no body read); raises ``SourceNotFound``/``Forbidden``."""

    async def read(self, ref: SourceRef, max_bytes: int) -> bytes:
        """The source's bytes; raises ``SourceTooLarge`` past ``max_bytes``."""
