"""The lane's purge sender: takes due purges from the store's outbox, turns prefixes into
tags, sends each batch to every configured CDN, and records the outcome. A CDN that is down
gets the batch again with exponential backoff (the rows wait in the store, across restarts);
one still failing after ``cdn.dead_after_s`` is dead-lettered (``loupe_cdn_purges_dead``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import httpx

from proxy.cdn.adapters import Adapter, PurgeBatch, PurgeFailed, build_adapters
from proxy.cdn.tags import tag_for
from proxy.config import CdnConfig
from proxy.stores.base import PurgeItem
from proxy.stores.protocols import PurgeStore
from proxy.urls import encode_component

log = logging.getLogger(__name__)


def url_prefix(prefix: str) -> str:
    """``/img/<prefix>``: the URLs a purge of ``prefix`` covers start with it."""
    return "/img/" + "/".join(encode_component(part) for part in prefix.split("/") if part)


class PurgeSender:
    def __init__(
        self,
        store: PurgeStore,
        config: CdnConfig,
        adapters: Sequence[Adapter] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.client = client or httpx.AsyncClient(
            timeout=config.timeout_s, follow_redirects=False, trust_env=False
        )
        self.adapters = list(build_adapters(config, self.client) if adapters is None else adapters)
        self.lease_s = config.timeout_s * max(1, len(self.adapters)) + 10.0

    def retry_in(self, attempts: int) -> float:
        return float(min(self.config.max_backoff_s, self.config.backoff_s * 2 ** (attempts - 1)))

    async def send_once(self) -> int:
        """Send one batch of due purges; returns how many purges it held (0: none due)."""
        items = await asyncio.to_thread(self.store.claim_purges, self.config.batch, self.lease_s)
        if not items:
            return 0
        batch = self.batch_of(items)
        try:
            for adapter in self.adapters:
                await adapter.purge(batch)
        except asyncio.CancelledError:  # shutting down mid-send: due again at once, not
            await asyncio.shield(asyncio.to_thread(self.store.release_purges, items))
            raise  # after the lease (a restarted node would wait for it)
        except PurgeFailed as exc:
            dead = await asyncio.to_thread(
                self.store.purges_failed, items, str(exc), self.retry_in, self.config.dead_after_s
            )
            level = logging.ERROR if dead else logging.WARNING
            log.log(
                level, "CDN purge of %d tags failed (%d dead-lettered): %s", len(items), dead, exc
            )
            return len(items)
        repeat = self.config.repeat_after_s if self.adapters else 0.0
        await asyncio.to_thread(self.store.purges_sent, items, repeat)
        if self.adapters:
            log.info("CDN purge sent: %d tags (%s)", len(items), batch.reason)
        return len(items)

    def batch_of(self, items: Sequence[PurgeItem]) -> PurgeBatch:
        reasons = sorted({item.reason for item in items})
        return PurgeBatch(
            tags=tuple(tag_for(self.config.deployment, item.prefix) for item in items),
            paths=tuple(url_prefix(item.prefix) for item in items),
            reason=", ".join(reasons),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; a store outage is logged and waited out."""
        while not stop.is_set():
            try:
                sent = await self.send_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the purge outbox is unreachable; retrying")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.config.poll_s)

    async def aclose(self) -> None:
        await self.client.aclose()
