"""A real ``loupe serve`` with a webhook CDN: every image response carries the source's,
its folders' and the deployment's tags, and each decision that changes what is served
reaches the webhook with the right tag (the outbox is written by the decision's own
transaction and sent by the lane)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.cdn.tags import tag_for, tags_for
from proxy.sources.paths import SourcePath
from tests.cdn_fake import FakeCdn
from tests.integration.listeners import Answer, Listener
from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for

TOKEN = "cdn"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def cdn() -> Iterator[FakeCdn]:
    fake = FakeCdn()
    yield fake
    fake.close()


class Origin:
    """An HTTP origin whose one picture can be replaced: a new body, a new ETag."""

    def __init__(self, data_root: Path) -> None:
        self.bodies = [(data_root / "kodak" / f"kodim{n}.png").read_bytes() for n in ("01", "12")]
        self.version = 0
        self.listener = Listener(self.reply)

    def reply(self, path: str, headers: dict[str, str]) -> Answer:
        etag = f'"v{self.version}"'
        if headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Content-Type": "image/png"}, self.bodies[self.version]


@pytest.fixture(scope="module")
def origin(data_root: Path) -> Iterator[Origin]:
    found = Origin(data_root)
    yield found
    found.listener.server.shutdown()


@pytest.fixture(scope="module")
def node(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory, cdn: FakeCdn, origin: Origin
) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("cdn-root")
    (root / "shop" / "shoes").mkdir(parents=True)
    for number, name in (("03", "shop/shoes/red.png"), ("06", "a.png"), ("12", "b.png")):
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", root / name)
    env = {
        **FAST_LANE,
        "LOUPE_CDN_WEBHOOK_URL": cdn.url + "/purge",
        "LOUPE_CDN_POLL_S": "0.05",
        "LOUPE_CDN_DEPLOYMENT": "test",
        "LOUPE_MODERATION_ENABLED": "true",
        "LOUPE_MODERATION_REVIEW_THRESHOLD": "0",  # every picture goes past a human
        "LOUPE_SOURCES_RESCAN_S": "0",  # notifications alone must do it
        "LOUPE_SOURCES_ALLOW_PRIVATE_NETWORKS": "true",
        "LOUPE_SOURCES_REVALIDATE_AFTER_S": "0",
    }
    args = (
        "--admin-token", TOKEN, "--models-dir", str(shared_dir() / "models"),
        "--origin", f"far=http://127.0.0.1:{origin.listener.port}/",
    )  # fmt: skip
    running = LoupeServer(root, tmp_path_factory.mktemp("cdn-data"), env=env, args=args)
    yield running
    running.stop()


def calls_with(cdn: FakeCdn, tag: str, reason: str) -> list[dict[str, Any]]:
    return [
        body
        for body in (call.json() for call in cdn.seen())
        if tag in body["tags"] and reason in body["reason"]
    ]


def arrives(cdn: FakeCdn, path: str, reason: str) -> dict[str, Any]:
    tag = tag_for("test", path)
    found = wait_for(lambda: calls_with(cdn, tag, reason), timeout=10, what=f"{reason} {path}")
    body: dict[str, Any] = found[-1]
    assert "/img/" + path in body["paths"]
    return body


def test_image_responses_carry_source_folder_and_deployment_tags(node: LoupeServer) -> None:
    response = httpx.get(f"{node.url}/img/shop/shoes/red.png?w=64&fm=jpeg&q=80", timeout=60)
    assert response.status_code == 200, response.text
    tags = tags_for("test", SourcePath("shop/shoes/red.png"))
    assert response.headers["surrogate-key"] == " ".join(tags)
    assert response.headers["cache-tag"] == ",".join(tags)
    # (q=80: a final answer; a provisional q=auto one is kept short at the edge anyway)
    # under moderation review: kept short in browsers and at the edge alike
    assert "max-age=60" in response.headers["cache-control"]
    assert "surrogate-control" not in response.headers
    [item] = wait_for(lambda: items(node, "moderation", "shop/shoes/red.png"), what="review")
    decide(node, item, "accept")
    approved = httpx.get(f"{node.url}/img/shop/shoes/red.png?w=64&fm=jpeg&q=80", timeout=60)
    assert approved.headers["surrogate-control"] == "max-age=31536000"
    again = httpx.get(
        f"{node.url}/img/shop/shoes/red.png?w=64&fm=jpeg&q=80",
        headers={"If-None-Match": approved.headers["etag"]},
        timeout=60,
    )
    assert again.status_code == 304 and again.headers["surrogate-key"] == " ".join(tags)


def test_an_override_purges_the_source(node: LoupeServer, cdn: FakeCdn) -> None:
    put = httpx.put(
        f"{node.url}/admin/api/overrides/a.png",
        json={"aspect": "1:1", "rect": [0, 0, 300, 300]},
        headers=AUTH,
        timeout=60,
    )
    assert put.status_code == 200, put.text
    arrives(cdn, "a.png", "override")


def test_a_rule_purges_the_folder(node: LoupeServer, cdn: FakeCdn) -> None:
    put = httpx.put(
        f"{node.url}/admin/api/rules",
        json={"prefix": "shop/", "rule": "never-crop", "reason": "packshots"},
        headers=AUTH,
        timeout=10,
    )
    assert put.status_code == 200, put.text
    arrives(cdn, "shop", "rule")


def test_the_admin_purge_reaches_the_cdn(node: LoupeServer, cdn: FakeCdn) -> None:
    purged = httpx.post(f"{node.url}/admin/api/purge/b.png", headers=AUTH, timeout=10)
    assert purged.status_code == 200
    arrives(cdn, "b.png", "purge")


def items(node: LoupeServer, component: str, path: str) -> list[dict[str, Any]]:
    listed = httpx.get(
        f"{node.url}/admin/api/review", params={"component": component}, headers=AUTH, timeout=10
    ).json()["items"]
    return [item for item in listed if item["path"] == path]


def decide(node: LoupeServer, item: dict[str, Any], action: str) -> None:
    body = {"action": action, "seconds": 1, "reason": "checked"}
    decided = httpx.post(
        f"{node.url}/admin/api/review/{item['id']}", json=body, headers=AUTH, timeout=10
    )
    assert decided.status_code == 200, decided.text


def test_a_crop_review_decision_purges_the_source(node: LoupeServer, cdn: FakeCdn) -> None:
    query = "w=160&h=90&fit=crop&ctx=hero&fm=webp&q=80"
    served = httpx.get(f"{node.url}/img/b.png?{query}", timeout=60)
    assert served.status_code == 200
    [item] = wait_for(lambda: items(node, "crop", "b.png"), what="the hero crop's review")
    decide(node, item, "accept")
    arrives(cdn, "b.png", "review")


def test_a_moderation_verdict_purges_the_source(node: LoupeServer, cdn: FakeCdn) -> None:
    served = httpx.get(f"{node.url}/img/a.png?w=50&fm=jpeg&q=80", timeout=60)
    assert served.status_code == 200  # under review: served, briefly cacheable
    [item] = wait_for(lambda: items(node, "moderation", "a.png"), what="a moderation review")
    decide(node, item, "reject")
    arrives(cdn, "a.png", "moderation")
    assert httpx.get(f"{node.url}/img/a.png?w=50&fm=jpeg&q=80", timeout=60).status_code == 451


def test_pending_and_failed_purges_are_reported(node: LoupeServer) -> None:
    metrics = httpx.get(f"{node.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    assert metrics["purges"]["dead"] == 0 and metrics["purges"]["failed"] == []
    assert node.metric("loupe_cdn_purges_dead") == 0
    assert "loupe_cdn_purges_pending" in httpx.get(f"{node.url}/metrics", timeout=10).text


def job_version(node: LoupeServer, path: str) -> str | None:
    database = node.log.parent / "loupe.db"
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT payload FROM jobs WHERE kind = 'fingerprint' AND subject = ?", (path,)
        ).fetchone()
    if row is None:
        return None
    version = json.loads(row[0]).get("version")
    return None if version is None else str(version)


def test_a_replaced_file_is_purged_within_20_s_with_no_request(
    node: LoupeServer, cdn: FakeCdn, data_root: Path
) -> None:
    url = f"{node.url}/img/shop/shoes/red.png?w=64&fm=jpeg"
    before = httpx.get(url, timeout=60)
    assert before.status_code == 200
    old = wait_for(lambda: job_version(node, "shop/shoes/red.png"), what="the lane's jobs")
    target = node.root / "shop" / "shoes" / "red.png"
    temporary = target.with_name(".red.png.tmp")
    shutil.copy(data_root / "kodak" / "kodim24.png", temporary)
    temporary.replace(target)
    replaced = time.monotonic()
    arrives(cdn, "shop/shoes/red.png", "source-changed")
    took = time.monotonic() - replaced
    print(f"replaced file purged at the webhook after {took:.2f} s")
    assert took < 20
    new = wait_for(
        lambda: (job_version(node, "shop/shoes/red.png") or old) != old,
        what="the lane's jobs queued again for the new bytes",
    )
    assert new
    after = httpx.get(url, timeout=60)
    assert after.headers["x-loupe-cache"] == "miss" and after.content != before.content


def test_a_deleted_file_is_purged_with_no_request(node: LoupeServer, cdn: FakeCdn) -> None:
    (node.root / "b.png").unlink()
    arrives(cdn, "b.png", "source-deleted")
    assert httpx.get(f"{node.url}/img/b.png?w=64", timeout=60).status_code == 404


def test_a_changed_etag_at_an_origin_purges_the_source(
    node: LoupeServer, cdn: FakeCdn, origin: Origin
) -> None:
    url = f"{node.url}/img/far/pic.png?w=64&fm=jpeg"
    first = httpx.get(url, timeout=60)
    assert first.status_code == 200, first.text
    origin.version = 1
    second = httpx.get(url, timeout=60)
    assert second.status_code == 200 and second.content != first.content
    arrives(cdn, "far/pic.png", "source-changed")


def test_a_purge_made_while_the_cdn_is_down_arrives_after_a_restart(
    data_root: Path, tmp_path: Path
) -> None:
    """The CDN is down when the decision is made and the node stops before it comes back:
    the outbox in the store keeps the purge, and the restarted node sends it."""
    down = FakeCdn()
    root, data = tmp_path / "root", tmp_path / "data"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim06.png", root / "late.png")
    env = {
        **FAST_LANE,
        "LOUPE_CDN_WEBHOOK_URL": down.url,
        "LOUPE_CDN_POLL_S": "0.05",
        "LOUPE_CDN_BACKOFF_S": "0.1",
        "LOUPE_CDN_MAX_BACKOFF_S": "0.2",
    }
    args = ("--admin-token", TOKEN)
    try:
        down.down = True
        first = LoupeServer(root, data, env=env, args=args)
        try:
            purged = httpx.post(f"{first.url}/admin/api/purge/late.png", headers=AUTH, timeout=10)
            assert purged.status_code == 200
            wait_for(lambda: first.metric("loupe_cdn_purges_pending") == 1, what="pending")
            time.sleep(0.3)  # a few failed sends
        finally:
            first.stop()
        assert down.seen() == []
        down.down = False
        second = LoupeServer(root, data, env=env, args=args)
        try:
            tag = tag_for("loupe", "late.png")
            wait_for(lambda: tag in down.tags(), timeout=10, what="the purge after the restart")
        finally:
            second.stop()
    finally:
        down.close()
