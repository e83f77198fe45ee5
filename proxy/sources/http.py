"""An HTTP origin: ``/img/NAME/path`` -> ``<origin url>path``, fetched through httpx
with pooled connections, timeouts, a redirect limit, a streaming byte cap and the SSRF
guard on every hop.

The URL is the base with the canonical path appended, every segment percent-encoded
(``%`` and ``;`` included), and checked to have the base's scheme, host, port and path
prefix: no spelling of a path can reach another host, port or folder. An https origin is
never followed to plain http. The identity of a source is the SHA-256 of its bytes (what
moderation judges and the caches key on); the origin's ETag/Last-Modified are only used
to revalidate (conditional GET) once ``revalidate_after_s`` has passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import httpx
from cachetools import LRUCache

from proxy.cache.singleflight import SingleFlight
from proxy.errors import (
    Forbidden,
    OriginFailed,
    OriginTimeout,
    SourceChanged,
    SourceNotFound,
    SourceTooLarge,
)
from proxy.sources.base import SourceRef
from proxy.sources.gate import FetchGate
from proxy.sources.netguard import IPAddress, resolve_allowed
from proxy.sources.paths import BadPath, SourcePath, joined

# RFC 3986 pchar without "%" (every escape in a source path is the path's own text) and
# without ";" (path parameters: Tomcat reads "..;" as "..").
SEGMENT_SAFE = "!$&'()*+,=:@-._~"
BODY_STATUSES = frozenset({200, 203})


@dataclass(frozen=True)
class OriginPolicy:
    allow_hosts: tuple[str, ...]
    allow_private: bool
    max_redirects: int
    revalidate_after_s: float
    max_bytes: int
    # Whole-fetch cap (all hops and the body): the read timeout alone is per chunk, so an
    # origin trickling a byte at a time could otherwise hold a request indefinitely.
    fetch_deadline_s: float = 60.0


@dataclass
class _Known:
    identity: str
    validator: dict[str, str]  # headers for a conditional GET
    size: int
    checked_at: float


def _host_allowed(host: str, allow_hosts: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return not allow_hosts or any(
        host == allowed or (allowed.startswith(".") and host.endswith(allowed))
        for allowed in (a.lower() for a in allow_hosts)
    )


Resolver = Callable[..., Awaitable[list[IPAddress]]]
BODY_CACHE_BYTES = 64 * 1024 * 1024


class HttpSource:
    def __init__(
        self,
        name: str,
        base_url: str,
        policy: OriginPolicy,
        client: httpx.AsyncClient,
        resolve: Resolver = resolve_allowed,
        gate: FetchGate | None = None,
    ):
        self.name = name
        # Shared by every origin: how many downloads may run (and wait) at once.
        self.gate = gate or FetchGate(4, 32, 2)
        # One download per URL (and validators) at a time, whoever asks.
        self._flights: SingleFlight[tuple[httpx.Response, bytes]] = SingleFlight()
        self._resolve = resolve
        self.base_url = base_url
        self._base = urlsplit(base_url)
        if not self._base.path.endswith("/"):
            self._base = self._base._replace(path=self._base.path + "/")
        self.policy = policy
        self.client = client
        self._known: LRUCache[str, _Known] = LRUCache(maxsize=10_000)
        # Bodies fetched by locate(), for the reads that follow it: every variant rendered
        # from one download, not one download per variant.
        self._bodies: LRUCache[str, bytes] = LRUCache(maxsize=BODY_CACHE_BYTES, getsizeof=len)
        # Told when a revalidation finds other bytes (or none) than this node knew:
        # ``(NAME/path, new identity or None)``; the app purges everywhere.
        self.on_change: Callable[[SourcePath, str | None], None] | None = None

    def url_for(self, path: SourcePath) -> str:
        """The base URL with ``path`` below it, or ``BadPath``: never anything else."""
        encoded = "/".join(quote(segment, safe=SEGMENT_SAFE) for segment in path.split("/"))
        base = self._base
        url = urlunsplit((base.scheme, base.netloc, base.path + encoded, base.query, ""))
        if not self._below_base(url):
            raise BadPath(f"path {path!r} does not stay below origin {self.name!r}")
        return url

    def _below_base(self, url: str) -> bool:
        """Same scheme, user, host, port and query as the base; a path that starts with the
        base's and has no segment a server could read as a dot segment or a separator."""
        got, base = urlsplit(url), self._base
        same = (got.scheme, got.netloc, got.query, got.fragment) == (
            base.scheme,
            base.netloc,
            base.query,
            "",
        ) and (got.hostname, got.port) == (base.hostname, base.port)
        if not same or not got.path.startswith(base.path):
            return False
        for segment in got.path[len(base.path) :].split("/"):
            plain = unquote(segment)
            if plain in ("", ".", "..") or "/" in plain or "\\" in plain or ";" in segment:
                return False
        return True

    async def _send(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """GET with redirects followed by hand, so every hop passes the guard."""
        secure = urlsplit(url).scheme == "https"
        for _hop in range(self.policy.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Forbidden(f"origin redirected to a non-HTTP URL {url!r}")
            if secure and parts.scheme != "https":
                raise Forbidden(f"https origin {self.name!r} redirected to plain http")
            host = parts.hostname
            if not _host_allowed(host, self.policy.allow_hosts):
                raise Forbidden(f"host {host!r} is not on origin {self.name!r}'s allow list")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = await self._resolve(host, port, allow_private=self.policy.allow_private)
            response = await self._connect_any(addresses, url, host, parts.netloc, headers)
            if response.is_redirect and "location" in response.headers:
                await response.aclose()
                url = urljoin(url, response.headers["location"])
                continue
            return response
        raise OriginFailed(
            f"origin {self.name!r} redirected more than {self.policy.max_redirects} times"
        )

    async def _connect_any(
        self,
        addresses: list[IPAddress],
        url: str,
        host: str,
        netloc: str,
        headers: dict[str, str],
    ) -> httpx.Response:
        """Connect to the checked addresses in order (IPv6 then IPv4, say) until one answers."""
        https = url.startswith("https:")
        failure: httpx.ConnectError | None = None
        for address in addresses:
            request = self.client.build_request(
                "GET",
                httpx.URL(url).copy_with(host=str(address)),
                headers={**headers, "Host": netloc.rsplit("@", 1)[-1]},
                extensions={"sni_hostname": host} if https else {},
            )
            try:
                return await self.client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def _fetch(self, url: str, conditional: dict[str, str]) -> tuple[httpx.Response, bytes]:
        try:
            async with asyncio.timeout(self.policy.fetch_deadline_s):
                response = await self._send(url, {"Accept": "image/*", **conditional})
                try:
                    status = response.status_code
                    if status == 304 and conditional:
                        return response, b""
                    if status in (404, 410):
                        raise SourceNotFound(f"origin {self.name!r} has no {url!r}")
                    if status not in BODY_STATUSES:  # an unasked-for 304, a 206, a 204...
                        raise OriginFailed(f"origin {self.name!r} answered {status}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.policy.max_bytes:
                        limit = self.policy.max_bytes
                        raise SourceTooLarge(
                            f"origin declares {declared} bytes; the limit is {limit}"
                        )
                    chunks, total = [], 0
                    async for chunk in response.aiter_bytes():
                        total += len(chunk)
                        if total > self.policy.max_bytes:
                            raise SourceTooLarge(
                                f"origin sent more than the {self.policy.max_bytes}-byte limit"
                            )
                        chunks.append(chunk)
                    return response, b"".join(chunks)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError):
            raise OriginTimeout(f"origin {self.name!r} timed out") from None
        except httpx.TransportError as exc:
            raise OriginFailed(f"origin {self.name!r} failed: {type(exc).__name__}") from None

    async def _download(
        self, url: str, conditional: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """``_fetch``, single-flighted per URL and admitted by the gate before any byte
        moves: 48 requests for one new image make one download."""

        async def admitted() -> tuple[httpx.Response, bytes]:
            async with self.gate.admit():
                return await self._fetch(url, conditional)

        key = url + "\n" + "\n".join(f"{k}: {v}" for k, v in sorted(conditional.items()))
        fetched, _joined = await self._flights.run(key, admitted)
        return fetched

    def _keep(self, url: str, identity: str, body: bytes) -> None:
        if len(body) <= BODY_CACHE_BYTES:
            self._bodies[f"{url}\n{identity}"] = body

    @staticmethod
    def _validator(response: httpx.Response) -> dict[str, str]:
        etag = response.headers.get("etag")
        modified = response.headers.get("last-modified")
        if etag:
            return {"If-None-Match": etag}
        if modified:
            return {"If-Modified-Since": modified}
        return {}

    async def locate(self, path: SourcePath) -> SourceRef:
        url = self.url_for(path)
        known = self._known.get(url)
        now = time.monotonic()
        if known and now - known.checked_at < self.policy.revalidate_after_s:
            return SourceRef(path, known.identity, known.size)
        try:
            response, body = await self._download(url, known.validator if known else {})
        except SourceNotFound:
            if known is not None:  # it was there: gone now
                self._known.pop(url, None)
                self._changed(path, None)
            raise
        if response.status_code == 304 and known:
            known.checked_at = now
            return SourceRef(path, known.identity, known.size)
        identity = content_identity(body)
        self._known[url] = _Known(identity, self._validator(response), len(body), now)
        self._keep(url, identity, body)
        if known is not None and known.identity != identity:  # a new ETag, other bytes
            self._changed(path, identity)
        return SourceRef(path, identity, len(body))

    def _changed(self, path: SourcePath, identity: str | None) -> None:
        if self.on_change is not None:
            self.on_change(joined(self.name, path), identity)

    def blocking_reader(self, ref: SourceRef, max_bytes: int) -> Callable[[], bytes] | None:
        """Bytes fetched by ``locate`` are handed over as they are; others need the loop."""
        slot = f"{self.url_for(ref.path)}\n{ref.identity}"
        body = self._bodies.get(slot)
        if body is None or len(body) > max_bytes:
            return None
        return lambda: body

    async def read(self, ref: SourceRef, max_bytes: int) -> bytes:
        url = self.url_for(ref.path)
        body = self._bodies.get(f"{url}\n{ref.identity}")
        if body is None:
            _, body = await self._download(url, {})
            if content_identity(body) != ref.identity:  # never other bytes than located
                raise SourceChanged(f"origin {self.name!r} changed {ref.path!r} meanwhile")
            self._keep(url, ref.identity, body)
        if len(body) > max_bytes:
            raise SourceTooLarge(f"source is {len(body)} bytes; the limit is {max_bytes}")
        return body


def content_identity(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
