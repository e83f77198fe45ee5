"""Purge adapters: how one batch of tags reaches each kind of CDN. Every endpoint is the
operator's own configuration, so it is called directly (loopback and private addresses
included): the SSRF guard protects origins named by requests, not these."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Protocol

import httpx

from proxy.config import CdnConfig

SIGNATURE_HEADER = "X-Loupe-Signature"


class PurgeFailed(Exception):
    """The CDN did not take the purge (down, refused, timed out): it is retried."""


@dataclass(frozen=True)
class PurgeBatch:
    tags: tuple[str, ...]
    paths: tuple[str, ...]  # the URL prefixes the tags stand for, /img/<source or folder>
    reason: str


class Adapter(Protocol):
    name: str

    async def purge(self, batch: PurgeBatch) -> None:
        """Raises ``PurgeFailed`` unless the CDN accepted the purge."""


async def _send(client: httpx.AsyncClient, name: str, request: httpx.Request) -> httpx.Response:
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        raise PurgeFailed(f"{name}: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise PurgeFailed(f"{name}: HTTP {response.status_code}: {response.text[:200]}")
    return response


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook:
    """POST ``{"tags": [...], "paths": [...], "reason": "..."}``, HMAC-signed when a secret
    is configured (``X-Loupe-Signature: sha256=<hex of the body>``)."""

    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str | None) -> None:
        self.client, self.url, self.secret = client, url, secret

    async def purge(self, batch: PurgeBatch) -> None:
        body = json.dumps(
            {"tags": list(batch.tags), "paths": list(batch.paths), "reason": batch.reason},
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        request = self.client.build_request("POST", self.url, content=body, headers=headers)
        await _send(self.client, self.name, request)


class Fastly:
    """Purge by surrogate key: ``POST /service/{id}/purge`` with the keys in the
    ``Surrogate-Key`` header (Fastly's batch purge)."""

    name = "fastly"

    def __init__(self, client: httpx.AsyncClient, api: str, service: str, token: str) -> None:
        self.client, self.token = client, token
        self.url = f"{api.rstrip('/')}/service/{service}/purge"

    async def purge(self, batch: PurgeBatch) -> None:
        headers = {
            "Fastly-Key": self.token,
            "Surrogate-Key": " ".join(batch.tags),
            "Accept": "application/json",
        }
        await _send(
            self.client, self.name, self.client.build_request("POST", self.url, headers=headers)
        )


class Cloudflare:
    """Purge by cache tag: ``POST /zones/{zone}/purge_cache`` with ``{"tags": [...]}``."""

    name = "cloudflare"

    def __init__(self, client: httpx.AsyncClient, api: str, zone: str, token: str) -> None:
        self.client, self.token = client, token
        self.url = f"{api.rstrip('/')}/zones/{zone}/purge_cache"

    async def purge(self, batch: PurgeBatch) -> None:
        request = self.client.build_request(
            "POST",
            self.url,
            json={"tags": list(batch.tags)},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response = await _send(self.client, self.name, request)
        try:
            accepted = response.json().get("success") is True
        except (ValueError, AttributeError):
            accepted = False
        if not accepted:
            raise PurgeFailed(f"cloudflare: not accepted: {response.text[:200]}")


class HttpPurge:
    """Varnish and the like: one ``PURGE`` (or ``BAN``) request carrying the tags in a
    header (``xkey`` for varnish-modules' xkey, space-separated)."""

    name = "varnish"

    def __init__(self, client: httpx.AsyncClient, url: str, method: str, header: str) -> None:
        self.client, self.url, self.method, self.header = client, url, method, header

    async def purge(self, batch: PurgeBatch) -> None:
        headers = {self.header: " ".join(batch.tags), "X-Loupe-Reason": batch.reason[:200]}
        request = self.client.build_request(self.method, self.url, headers=headers)
        await _send(self.client, self.name, request)


def build_adapters(config: CdnConfig, client: httpx.AsyncClient) -> list[Adapter]:
    adapters: list[Adapter] = []
    if config.webhook_url:
        adapters.append(Webhook(client, config.webhook_url, config.webhook_secret))
    if config.fastly_service_id and config.fastly_token:
        adapters.append(
            Fastly(client, config.fastly_api_url, config.fastly_service_id, config.fastly_token)
        )
    if config.cloudflare_zone_id and config.cloudflare_token:
        adapters.append(
            Cloudflare(
                client,
                config.cloudflare_api_url,
                config.cloudflare_zone_id,
                config.cloudflare_token,
            )
        )
    if config.varnish_url:
        adapters.append(
            HttpPurge(client, config.varnish_url, config.varnish_method, config.varnish_header)
        )
    return adapters
