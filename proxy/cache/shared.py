"""The tier nodes share through Redis: rendered results and AI results behind each node's own
memory and disk, a cross-node lock so a first request that reaches two nodes at once is
computed once, and a purge channel so a purge on one node empties every node.

Values are encoded explicitly (a JSON header, then the body), never pickled: whoever can
write to Redis must not be able to run code in the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aredis

from proxy.cache.results import CachedImage
from proxy.config import RedisConfig

log = logging.getLogger(__name__)
HEADER = struct.Struct(">I")
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def encode(item: CachedImage) -> bytes:
    meta = json.dumps(
        {
            "content_type": item.content_type,
            "etag": item.etag,
            "headers": item.headers,
            "pending": list(item.pending),
        }
    ).encode()
    return HEADER.pack(len(meta)) + meta + item.body


def decode(raw: bytes) -> CachedImage | None:
    """None for anything that is not a well-formed entry (a foreign or damaged value)."""
    try:
        (size,) = HEADER.unpack_from(raw)
        meta = json.loads(raw[HEADER.size : HEADER.size + size])
        headers = meta["headers"]
        if not isinstance(headers, dict):
            return None
        return CachedImage(
            body=raw[HEADER.size + size :],
            content_type=str(meta["content_type"]),
            etag=str(meta["etag"]),
            headers={str(k): str(v) for k, v in headers.items()},
            pending=tuple(str(k) for k in meta.get("pending", ())),
        )
    except (struct.error, ValueError, KeyError, TypeError):
        return None


class SharedTier:
    def __init__(self, config: RedisConfig, node: str) -> None:
        assert config.url is not None
        self.config = config
        self.node = node
        self.prefix = config.prefix
        self.client = aredis.from_url(config.url, socket_timeout=2, socket_connect_timeout=2)
        self.channel = f"{self.prefix}purge"
        self._listener: asyncio.Task[None] | None = None

    def _result(self, key: str) -> str:
        return f"{self.prefix}result:{key}"

    def _tag(self, tag: str) -> str:
        return f"{self.prefix}tag:{tag}"

    async def get(self, key: str) -> CachedImage | None:
        try:
            raw = await self.client.get(self._result(key))
        except redis.RedisError as exc:  # the shared tier is an optimisation: degrade
            log.warning("redis get failed: %s", exc)
            return None
        return decode(bytes(raw)) if raw else None  # type: ignore[arg-type]

    async def put(self, key: str, item: CachedImage, tag: str) -> None:
        if len(item.body) > self.config.max_item_bytes:
            return
        ttl = self.config.result_ttl_s
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self._result(key), encode(item), ex=ttl)
                pipe.sadd(self._tag(tag), key)
                pipe.expire(self._tag(tag), ttl)
                await pipe.execute()
        except redis.RedisError as exc:
            log.warning("redis put failed: %s", exc)

    async def purge(self, tag: str) -> int:
        """Drop a source's shared results and tell every node to drop its own. With Redis
        down the local purge still happens; the other nodes' copies age out (logged)."""
        try:
            keys = await self.client.smembers(self._tag(tag))
            names = [self._result(k.decode() if isinstance(k, bytes) else str(k)) for k in keys]
            dropped = int(await self.client.delete(*names)) if names else 0
            await self.client.delete(self._tag(tag))
            await self.client.publish(self.channel, json.dumps({"tag": tag, "node": self.node}))
        except redis.RedisError as exc:
            log.error("purge of %s could not reach Redis (other nodes keep theirs): %s", tag, exc)
            return 0
        return dropped

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[bool]:
        """Try to become the one node computing ``key``; yields whether this node is it."""
        name = f"{self.prefix}lock:{key}"
        token = secrets.token_hex(8)
        ttl_ms = int(self.config.lock_ttl_s * 1000)
        try:
            held = bool(await self.client.set(name, token, nx=True, px=ttl_ms))
        except redis.RedisError as exc:
            log.warning("redis lock failed, computing locally: %s", exc)
            held = True  # no coordination available: compute rather than wait
            token = ""
        try:
            yield held
        finally:
            if held and token:
                with contextlib.suppress(redis.RedisError):
                    await self.client.eval(RELEASE, 1, name, token)

    async def wait_for(self, key: str, deadline_s: float) -> CachedImage | None:
        """Another node holds the lock: poll for its result until the lock goes away."""
        name = f"{self.prefix}lock:{key}"
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        delay = 0.01
        while loop.time() < end:
            found = await self.get(key)
            if found is not None:
                return found
            try:
                if not await self.client.exists(name):
                    return await self.get(key)  # released: its result is there, or it failed
            except redis.RedisError:
                return None
            await asyncio.sleep(delay)
            delay = min(0.1, delay * 1.5)
        return None

    def listen(self, on_purge: Callable[[str], Awaitable[object]]) -> None:
        """Start following the purge channel (every node, its own purges included)."""

        async def follow() -> None:
            while True:
                try:
                    pubsub = self.client.pubsub()
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        body: dict[str, Any] = json.loads(message["data"])
                        if body.get("node") != self.node:
                            await on_purge(str(body["tag"]))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("purge channel lost (%s); resubscribing", exc)
                    await asyncio.sleep(1)

        self._listener = asyncio.create_task(follow(), name="loupe-purge-listener")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.client.aclose()


class SharedKV:
    """A blocking JSON key-value view of Redis for the AI caches (analysis, decisions),
    which run in worker threads."""

    def __init__(self, config: RedisConfig, namespace: str) -> None:
        assert config.url is not None
        self.client = redis.Redis.from_url(config.url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = f"{config.prefix}{namespace}:"
        self.ttl = config.result_ttl_s * 4

    def get(self, key: str) -> Any:
        try:
            raw = self.client.get(self.prefix + key)
        except redis.RedisError:
            return None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def set(self, key: str, value: Any) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.set(self.prefix + key, json.dumps(value), ex=self.ttl)

    def close(self) -> None:
        self.client.close()
