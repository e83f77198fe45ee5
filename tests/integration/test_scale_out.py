"""Two ``loupe serve`` nodes and one ``loupe worker`` on this machine's PostgreSQL and Redis:
one truth for overrides, alt text, the cache and the queue."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from proxy.curation.decisions import SNAPSHOT_MEMO_S
from tests.support import REPO, LoupeServer, postgres_schema, shared_dir, wait_for

REDIS_URL = os.environ.get("LOUPE_TEST_REDIS", "redis://127.0.0.1:6379/0")
TOKEN = "cluster"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def cluster(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LoupeServer, LoupeServer, str]]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis not reachable at {REDIS_URL} (.ci/run starts one): {exc}")
    root = tmp_path_factory.mktemp("cluster-root")
    for number in ("01", "03", "06", "12"):
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", root / f"k{number}.png")
    prefix = f"loupe-test-{uuid.uuid4().hex[:8]}:"
    env = {"LOUPE_REDIS_PREFIX": prefix, "LOUPE_LANE_WORKERS": "0"}  # the worker does jobs
    with postgres_schema() as store:
        args = (
            "--store", store, "--redis", REDIS_URL, "--admin-token", TOKEN,
            "--models-dir", str(shared_dir() / "models"),
        )  # fmt: skip
        a = LoupeServer(root, tmp_path_factory.mktemp("node-a"), env=env, args=args)
        b = LoupeServer(root, tmp_path_factory.mktemp("node-b"), env=env, args=args)
        try:
            yield a, b, store
        finally:
            a.stop()
            b.stop()
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)


def crop_of(node: LoupeServer, path: str, **params: object) -> str:
    response = httpx.get(f"{node.url}/img/{path}", params=params, timeout=60)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.headers["x-loupe-crop"]


def test_an_override_made_on_a_is_used_by_b(cluster: tuple[LoupeServer, LoupeServer, str]) -> None:
    a, b, _ = cluster
    assert "by=ai" in crop_of(b, "k12.png", w=160, h=90, fit="crop")
    put = httpx.put(
        f"{a.url}/admin/api/overrides/k12.png",
        json={"aspect": "16:9", "rect": [0, 0, 768, 432]},
        headers=AUTH,
        timeout=30,
    )
    assert put.status_code == 200, put.text
    # B's cached variant was purged through Redis; its override memo lasts at most 2 s
    wait_for(lambda: "by=user" in crop_of(b, "k12.png", w=160, h=90, fit="crop"), timeout=10)
    assert "by=user" in crop_of(b, "k12.png", w=320, h=180, fit="crop")


def test_alt_text_set_on_a_is_served_by_b(cluster: tuple[LoupeServer, LoupeServer, str]) -> None:
    a, b, _ = cluster
    put = httpx.put(
        f"{a.url}/admin/api/alt/k01.png", json={"text": "Red barns."}, headers=AUTH, timeout=30
    )
    assert put.status_code == 200
    meta = httpx.get(f"{b.url}/meta/k01.png", timeout=60).json()
    assert meta["alt"]["text"] == "Red barns." and meta["alt"]["status"] == "user"


def test_simultaneous_first_requests_on_both_nodes_compute_once(
    cluster: tuple[LoupeServer, LoupeServer, str],
) -> None:
    a, b, _ = cluster
    before = a.metric("loupe_renders_total") + b.metric("loupe_renders_total")
    barrier = threading.Barrier(8)
    states: list[str] = []
    lock = threading.Lock()

    def fetch(node: LoupeServer) -> None:
        barrier.wait()
        response = httpx.get(f"{node.url}/img/k03.png?w=333&fm=webp", timeout=60)
        assert response.status_code == 200
        with lock:
            states.append(response.headers["x-loupe-cache"])

    threads = [threading.Thread(target=fetch, args=((a, b)[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = a.metric("loupe_renders_total") + b.metric("loupe_renders_total")
    assert after - before == 1, states
    assert states.count("miss") == 1 and len(states) == 8


def test_a_purge_on_a_empties_b(cluster: tuple[LoupeServer, LoupeServer, str]) -> None:
    a, b, _ = cluster
    url = "/img/k06.png?w=222&fm=jpeg"
    httpx.get(b.url + url, timeout=60)
    assert httpx.get(b.url + url, timeout=60).headers["x-loupe-cache"] == "hit"
    purged = httpx.post(f"{a.url}/admin/api/purge/k06.png", headers=AUTH, timeout=10)
    assert purged.status_code == 200
    wait_for(
        lambda: httpx.get(b.url + url, timeout=60).headers["x-loupe-cache"] == "miss",
        timeout=10,
        what="B to drop k06.png",
    )


@pytest.fixture(scope="module")
def deaf(
    cluster: tuple[LoupeServer, LoupeServer, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    """A node on the same store and Redis that hears none of the others' purge messages:
    its own key prefix is another channel (and its own shared entries, which no purge of
    the others ever drops)."""
    a, _b, store = cluster
    prefix = f"loupe-test-deaf-{uuid.uuid4().hex[:8]}:"
    args = (
        "--store", store, "--redis", REDIS_URL, "--admin-token", TOKEN,
        "--models-dir", str(shared_dir() / "models"),
    )  # fmt: skip
    env = {"LOUPE_REDIS_PREFIX": prefix, "LOUPE_LANE_WORKERS": "0"}
    node = LoupeServer(a.root, tmp_path_factory.mktemp("node-deaf"), env=env, args=args)
    try:
        yield node
    finally:
        node.stop()
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def test_a_node_that_missed_the_purge_serves_a_decision_within_the_memo_time(
    cluster: tuple[LoupeServer, LoupeServer, str], deaf: LoupeServer
) -> None:
    a, _b, _ = cluster
    url = f"{deaf.url}/img/k01.png?w=200&h=200&fit=crop&fm=jpeg"
    first = httpx.get(url, timeout=60)
    assert first.status_code == 200 and "by=ai" in first.headers["x-loupe-crop"]
    assert httpx.get(url, timeout=60).headers["x-loupe-cache"] == "hit"  # kept on that node
    put = httpx.put(
        f"{a.url}/admin/api/overrides/k01.png",
        json={"aspect": "1:1", "rect": [0, 0, 512, 512]},
        headers=AUTH,
        timeout=30,
    )
    assert put.status_code == 200, put.text
    decided = time.monotonic()
    wait_for(
        lambda: "by=user" in httpx.get(url, timeout=60).headers["x-loupe-crop"],
        timeout=15,
        interval=0.2,
        what="the node that missed the purge to serve the override",
    )
    elapsed = time.monotonic() - decided
    assert elapsed < SNAPSHOT_MEMO_S + 3.0, f"took {elapsed:.1f} s"


def test_a_worker_process_does_the_jobs_and_a_killed_one_loses_nothing(
    cluster: tuple[LoupeServer, LoupeServer, str], tmp_path: Path
) -> None:
    a, b, store = cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    env.update({"LOUPE_LANE_POLL_S": "0.05", "LOUPE_LANE_LEASE_S": "2"})
    command = [
        sys.executable, "-m", "proxy", "worker", "--store", store, "--redis", REDIS_URL,
        "--root", str(a.root), "--data-dir", str(tmp_path / "w"),
        "--models-dir", str(shared_dir() / "models"),
    ]  # fmt: skip
    first = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)

    def jobs() -> dict[str, int]:
        counts: dict[str, int] = httpx.get(
            f"{a.url}/admin/api/metrics", headers=AUTH, timeout=10
        ).json()["jobs"]
        return counts

    try:
        wait_for(lambda: jobs().get("running") or jobs().get("done"), timeout=60, what="work")
    finally:
        os.kill(first.pid, signal.SIGKILL)  # mid-job, most likely
        first.wait()
    second = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: set(jobs()) == {"done"}, timeout=90, what="every job done after the kill")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
    meta = httpx.get(f"{b.url}/meta/k03.png", timeout=60).json()
    assert meta["alt"]["status"] == "empty"  # the VLM is off: empty, and nothing to review
    items = httpx.get(
        f"{b.url}/admin/api/review", params={"component": "alt"}, headers=AUTH, timeout=10
    ).json()["items"]
    assert not {item["path"] for item in items} & {"k03.png", "k06.png"}


def test_a_node_keeps_serving_when_redis_is_down(data_root: Path, tmp_path: Path) -> None:
    """The shared tier is an optimisation: without it a node renders, caches and purges
    locally."""
    from tests.support import free_port

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "k.png")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    node = LoupeServer(root, tmp_path / "data", args=("--redis", dead, "--admin-token", TOKEN))
    try:
        first = httpx.get(f"{node.url}/img/k.png?w=120", timeout=60)
        assert first.status_code == 200 and first.headers["x-loupe-cache"] == "miss"
        again = httpx.get(f"{node.url}/img/k.png?w=120", timeout=60)
        assert again.headers["x-loupe-cache"] == "hit"
        purged = httpx.post(f"{node.url}/admin/api/purge/k.png", headers=AUTH, timeout=30)
        assert purged.status_code == 200
        after = httpx.get(f"{node.url}/img/k.png?w=120", timeout=60)
        assert after.headers["x-loupe-cache"] == "miss"
    finally:
        node.stop()


def test_a_replaced_file_leaves_the_shared_tier_with_no_request(
    cluster: tuple[LoupeServer, LoupeServer, str], data_root: Path
) -> None:
    a, b, _ = cluster
    name = f"changing-{uuid.uuid4().hex[:6]}.png"
    target = a.root / name
    shutil.copy(data_root / "kodak" / "kodim06.png", target)
    time.sleep(0.5)  # the watchers see a new file (only remembered)
    assert httpx.get(f"{b.url}/img/{name}?w=90&fm=jpeg", timeout=60).status_code == 200
    client = redis.Redis.from_url(REDIS_URL)
    tagged = lambda: [key for key in client.scan_iter(f"loupe-test-*:tag:{name}")]  # noqa: E731
    wait_for(tagged, timeout=5, what="the shared entry")
    temporary = target.with_name("." + name)
    shutil.copy(data_root / "kodak" / "kodim07.png", temporary)
    temporary.replace(target)
    wait_for(lambda: not tagged(), timeout=20, what="the shared tier to drop the old bytes")
