"""Each purge adapter against a loopback fake CDN with its API base URL configured, and the
sender's durability: a purge made while the CDN is down arrives after it is back, across a
restart (a new sender on the reopened store)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.cdn.outbox import PurgeSender
from proxy.cdn.tags import tag_for, tags_for
from proxy.config import CdnConfig
from proxy.sources.paths import SourcePath
from proxy.stores import open_store
from tests.cdn_fake import FakeCdn


@pytest.fixture
def fake() -> Iterator[FakeCdn]:
    cdn = FakeCdn()
    yield cdn
    cdn.close()


def send_all(db: Path, config: CdnConfig) -> int:
    store = open_store(f"sqlite:///{db}")

    async def run() -> int:
        sender = PurgeSender(store, config)
        try:
            total = 0
            while sent := await sender.send_once():
                total += sent
            return total
        finally:
            await sender.aclose()

    try:
        return asyncio.run(run())
    finally:
        store.close()


def queue(db: Path, *prefixes: str, reason: str = "override") -> None:
    store = open_store(f"sqlite:///{db}")
    for prefix in prefixes:
        store.bump_generation(prefix, reason=reason)
    store.close()


def test_tags_are_short_stable_and_reveal_nothing() -> None:
    tags = tags_for("prod", SourcePath("shop/shoes/red.jpg"))
    assert tags == [
        tag_for("prod", "shop/shoes/red.jpg"),
        tag_for("prod", "shop/shoes"),
        tag_for("prod", "shop"),
        tag_for("prod", ""),
    ]
    assert len(set(tags)) == 4 and all(len(tag) == 17 and tag.isalnum() for tag in tags)
    assert tags == tags_for("prod", SourcePath("shop/shoes/red.jpg"))  # stable
    assert tag_for("staging", "shop") != tag_for("prod", "shop")
    assert not any("shop" in tag for tag in tags)


def test_webhook_gets_tags_paths_reason_and_a_valid_signature(
    fake: FakeCdn, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    queue(db, "shop/red shoe.jpg", "shop")
    config = CdnConfig(webhook_url=fake.url + "/hook", webhook_secret="k3y")
    assert send_all(db, config) == 2
    [call] = fake.seen()
    assert call.method == "POST" and call.path == "/hook"
    body = call.json()
    assert sorted(body["tags"]) == sorted(
        [tag_for("loupe", "shop/red shoe.jpg"), tag_for("loupe", "shop")]
    )
    assert sorted(body["paths"]) == ["/img/shop", "/img/shop/red%20shoe.jpg"]
    assert body["reason"] == "override"
    expected = "sha256=" + hmac.new(b"k3y", call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Loupe-Signature"] == expected


def test_fastly_purges_by_surrogate_key(fake: FakeCdn, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    queue(db, "a.jpg")
    config = CdnConfig(fastly_service_id="SVC", fastly_token="tok", fastly_api_url=fake.url)
    send_all(db, config)
    [call] = fake.seen()
    assert (call.method, call.path) == ("POST", "/service/SVC/purge")
    assert call.headers["Fastly-Key"] == "tok"
    assert call.headers["Surrogate-Key"] == tag_for("loupe", "a.jpg")


def test_cloudflare_purges_by_tag(fake: FakeCdn, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    queue(db, "a.jpg")
    config = CdnConfig(
        cloudflare_zone_id="Z1", cloudflare_token="tok", cloudflare_api_url=fake.url + "/v4"
    )
    send_all(db, config)
    [call] = fake.seen()
    assert (call.method, call.path) == ("POST", "/v4/zones/Z1/purge_cache")
    assert call.headers["Authorization"] == "Bearer tok"
    assert call.json() == {"tags": [tag_for("loupe", "a.jpg")]}


def test_cloudflare_refusal_in_the_body_is_a_failure(tmp_path: Path) -> None:
    refusing = FakeCdn(answer=b'{"success": false, "errors": [{"code": 1134}]}')
    try:
        db = tmp_path / "s.db"
        queue(db, "a.jpg")
        config = CdnConfig(
            cloudflare_zone_id="Z1", cloudflare_token="t", cloudflare_api_url=refusing.url
        )
        send_all(db, config)
        store = open_store(f"sqlite:///{db}")
        [left] = store.purges("pending")
        store.close()
        assert left.attempts == 1 and "not accepted" in (left.last_error or "")
    finally:
        refusing.close()


@pytest.mark.parametrize("method", ["PURGE", "BAN"])
def test_varnish_gets_purge_or_ban_with_the_tags(
    fake: FakeCdn, tmp_path: Path, method: str
) -> None:
    db = tmp_path / "s.db"
    queue(db, "a.jpg", "b")
    config = CdnConfig(varnish_url=fake.url + "/", varnish_method=method)  # type: ignore[arg-type]
    send_all(db, config)
    [call] = fake.seen()
    assert call.method == method
    assert set(call.headers["xkey"].split()) == {tag_for("loupe", "a.jpg"), tag_for("loupe", "b")}


def test_a_purge_made_while_the_cdn_is_down_arrives_after_it_is_back_across_a_restart(
    fake: FakeCdn, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    config = CdnConfig(webhook_url=fake.url, backoff_s=0.05, repeat_after_s=0)
    fake.down = True
    queue(db, "late.jpg", reason="purge")
    send_all(db, config)  # fails: kept, backing off
    assert fake.seen() == []
    store = open_store(f"sqlite:///{db}")
    assert store.purge_counts()["pending"] == 1
    store.close()
    fake.down = False
    asyncio.run(asyncio.sleep(0.1))  # the backoff passes
    assert send_all(db, config) == 1  # a new sender: the process restarted
    assert fake.tags() == {tag_for("loupe", "late.jpg")}
    store = open_store(f"sqlite:///{db}")
    assert store.purge_counts()["pending"] == 0
    store.close()


def test_a_purge_failing_past_dead_after_is_dead_lettered(fake: FakeCdn, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    fake.down = True
    queue(db, "x.jpg")
    asyncio.run(asyncio.sleep(0.02))
    send_all(db, CdnConfig(webhook_url=fake.url, dead_after_s=0.01))
    store = open_store(f"sqlite:///{db}")
    counts = store.purge_counts()
    store.close()
    assert counts["dead"] == 1 and counts["pending"] == 0


def test_cdn_secrets_are_redacted_and_the_env_names_the_webhook() -> None:
    from proxy.config import load_config, redacted

    config = load_config(
        environ={
            "LOUPE_CDN_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "LOUPE_CDN_WEBHOOK_SECRET": "hush",
            "LOUPE_CDN_FASTLY_TOKEN": "fk",
            "LOUPE_CDN_CLOUDFLARE_TOKEN": "ck",
        }
    )
    assert config.cdn.webhook_url == "http://127.0.0.1:9/hook" and config.cdn.purges
    shown = redacted(config)["cdn"]
    assert shown["webhook_secret"] == shown["fastly_token"] == shown["cloudflare_token"] == "***"
    assert "hush" not in str(redacted(config))


def test_the_webhook_gets_each_purge_twice_the_second_after_the_delay(
    fake: FakeCdn, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    queue(db, "twice.jpg")
    config = CdnConfig(webhook_url=fake.url, repeat_after_s=0.1)
    send_all(db, config)
    assert len(fake.seen()) == 1
    asyncio.run(asyncio.sleep(0.15))
    send_all(db, config)
    assert [call.json()["tags"] for call in fake.seen()] == [[tag_for("loupe", "twice.jpg")]] * 2
    send_all(db, config)
    assert len(fake.seen()) == 2


def test_a_sender_stopped_mid_send_gives_its_purges_back_at_once(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    queue(db, "slow.jpg")
    store = open_store(f"sqlite:///{db}")

    class Hanging:
        name = "hanging"

        async def purge(self, batch: object) -> None:
            await asyncio.sleep(60)  # a CDN that never answers

    async def run() -> None:
        sender = PurgeSender(store, CdnConfig(), adapters=[Hanging()])
        task = asyncio.create_task(sender.send_once())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sender.aclose()

    try:
        asyncio.run(run())
        assert [item.prefix for item in store.claim_purges(10, 30)] == ["slow.jpg"]  # not leased
    finally:
        store.close()
