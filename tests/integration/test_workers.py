"""``loupe serve --workers 2``: two serving processes on one port, supervised, sharing one
single-flight (file locks, no Redis) and reporting node-wide metrics."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.support import FAST_LANE, LoupeServer, free_port, wait_for

PHOTO = "k03.png"
TOKEN = "workers"


@pytest.fixture(scope="module")
def node(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("workers-root")
    shutil.copy(data_root / "kodak" / "kodim03.png", root / PHOTO)
    server = LoupeServer(
        root,
        tmp_path_factory.mktemp("workers-data"),
        env={"LOUPE_SERVER_WORKERS": "2", "LOUPE_LANE_WORKERS": "0"},
        args=("--admin-token", TOKEN),
    )
    yield server
    server.stop()


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.add(int(entry.name))
    return found


def worker_pid(client: httpx.Client) -> int:
    body = client.get("/readyz").json()
    assert body["worker"]["of"] == 2
    return int(body["worker"]["pid"])


def pinned_clients(server: LoupeServer) -> tuple[httpx.Client, httpx.Client]:
    """Two keep-alive clients whose connections were accepted by different workers."""
    first = httpx.Client(base_url=server.url, timeout=30)
    mine = worker_pid(first)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        second = httpx.Client(base_url=server.url, timeout=30)
        if worker_pid(second) != mine:
            return first, second
        second.close()
    raise AssertionError("every new connection went to the same worker")


def metric(server: LoupeServer, name: str, labels: str = "") -> float:
    return server.metric(name, labels)


def test_both_workers_serve_on_one_port(node: LoupeServer) -> None:
    a, b = pinned_clients(node)
    with closing(a), closing(b):
        pids = {worker_pid(a), worker_pid(b)}
    assert pids == children(node.process.pid)  # the supervisor's own children
    assert node.process.pid not in pids


def test_responses_are_not_held_back_by_nagle(node: LoupeServer) -> None:
    """TCP_NODELAY on the workers' sockets: else each response's second write waited for
    the client's delayed ACK, 40 ms per request on a keep-alive connection."""
    with httpx.Client(base_url=node.url, timeout=10) as client:
        client.get("/healthz")
        took = []
        for _ in range(8):
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            took.append(time.perf_counter() - started)
    assert sorted(took)[len(took) // 2] < 0.03, took


def test_metrics_add_up_every_worker(node: LoupeServer) -> None:
    before = metric(node, "loupe_requests_total", 'route="/healthz",status="200"')
    a, b = pinned_clients(node)
    with closing(a), closing(b):
        for _ in range(3):
            assert a.get("/healthz").status_code == 200
        for _ in range(4):
            assert b.get("/healthz").status_code == 200
        for client in (a, b):  # whichever worker answers, it reports both workers' requests
            text = client.get("/metrics").text
            found = re.search(
                r'^loupe_requests_total\{route="/healthz",status="200"\} ([0-9.]+)$', text, re.M
            )
            assert found is not None
            assert float(found.group(1)) - before == 7


def cold_pair(server: LoupeServer, url: str) -> list[str]:
    """The same cold URL asked of both workers at once: their cache states, sorted."""
    a, b = pinned_clients(server)
    states: list[str] = []
    bodies: list[bytes] = []
    go = threading.Barrier(2)

    def fetch(client: httpx.Client) -> None:
        go.wait()
        response = client.get(url)
        assert response.status_code == 200, response.text
        states.append(response.headers["x-loupe-cache"])
        bodies.append(response.content)

    with closing(a), closing(b):
        threads = [threading.Thread(target=fetch, args=(c,)) for c in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    return sorted(states)


def test_a_cold_url_is_rendered_once_across_workers(node: LoupeServer) -> None:
    renders = metric(node, "loupe_renders_total")
    states = cold_pair(node, f"/img/{PHOTO}?w=640&q=auto&fm=webp")  # q=auto: slow enough
    assert states == ["coalesced", "miss"]
    assert metric(node, "loupe_renders_total") - renders == 1


def test_with_redis_each_worker_is_a_node_of_the_shared_tier(
    data_root: Path, tmp_path: Path
) -> None:
    import redis

    url = os.environ.get("LOUPE_TEST_REDIS", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis not reachable at {url} (.ci/run starts one): {exc}")
    shutil.copy(data_root / "kodak" / "kodim03.png", tmp_path / PHOTO)
    prefix = f"loupe-test-{os.getpid()}-{time.monotonic_ns()}:"
    env = {"LOUPE_SERVER_WORKERS": "2", "LOUPE_LANE_WORKERS": "0", "LOUPE_REDIS_PREFIX": prefix}
    server = LoupeServer(tmp_path, tmp_path / "data", env=env, args=("--redis", url))
    try:
        states = cold_pair(server, f"/img/{PHOTO}?w=480&q=auto&fm=webp")
        assert states == ["coalesced", "miss"]
        assert metric(server, "loupe_renders_total") == 1
    finally:
        server.stop()
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def test_a_purge_answered_by_one_worker_reaches_the_other(node: LoupeServer) -> None:
    url = f"/img/{PHOTO}?w=200&fm=jpeg&q=70"
    a, b = pinned_clients(node)
    with closing(a), closing(b):
        assert a.get(url).headers["x-loupe-cache"] in ("miss", "hit")
        assert b.get(url).headers["x-loupe-cache"] == "hit"  # from the disk: now in B's memory
        assert b.get(url).headers["x-loupe-cache"] == "hit"
        purged = a.post(f"/admin/api/purge/{PHOTO}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert purged.status_code == 200, purged.text
        assert b.get(url).headers["x-loupe-cache"] == "miss"  # B forgot its memory copy too


def test_a_killed_worker_is_restarted(node: LoupeServer) -> None:
    before = children(node.process.pid)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = wait_for(
        lambda: (found := children(node.process.pid)) - before and len(found) == 2 and found,
        timeout=10,
        what="a new worker",
    )
    assert victim not in after
    a, b = pinned_clients(node)  # both serve again
    with closing(a), closing(b):
        assert {worker_pid(a), worker_pid(b)} == after
    assert "was killed by SIGKILL" in node.log.read_text()


def test_sigterm_stops_every_worker(node: LoupeServer) -> None:
    pids = children(node.process.pid)
    assert len(pids) == 2
    node.process.send_signal(signal.SIGTERM)
    assert node.process.wait(timeout=20) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_workers_that_cannot_start_stop_the_node(tmp_path: Path) -> None:
    """A broken store: the workers die before serving, so the supervisor exits 1 rather
    than restarting them for ever."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--workers", "2", "--root", str(tmp_path),
         "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
         "--store", "sqlite:////proc/nowhere/loupe.db"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "could not start: stopping" in done.stderr


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server = LoupeServer(
        tmp_path, tmp_path / "data", env={"LOUPE_SERVER_WORKERS": "2", "LOUPE_LANE_WORKERS": "0"}
    )
    try:
        pids = wait_for(lambda: len(found := children(server.process.pid)) == 2 and found)
        server.process.kill()  # no chance to stop them itself
        server.process.wait()
        wait_for(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids),
            timeout=15,
            what="the orphaned workers to stop",
        )
    finally:
        server.stop()


def test_every_worker_answers_final_once_verified(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Worker 0's lane verifies a provisional answer; the other worker, which holds the
    provisional one in its memory tier, must answer final too, not serve it for its max-age."""
    root = tmp_path_factory.mktemp("workers-final-root")
    shutil.copy(data_root / "kodak" / "kodim03.png", root / PHOTO)
    env = {**FAST_LANE, "LOUPE_SERVER_WORKERS": "2", "LOUPE_IMAGES_AVIF_EFFORT": "2"}
    server = LoupeServer(root, tmp_path_factory.mktemp("workers-final-data"), env=env)
    try:
        a, b = pinned_clients(server)
        with closing(a), closing(b):
            browser = {"Accept": "image/avif,image/webp,*/*"}
            url = f"/img/{PHOTO}?w=300"
            for client in (a, b):  # both workers hold the provisional answer in memory
                first = client.get(url, headers=browser)
                assert first.headers["x-loupe-stage"] == "provisional", first.headers

            def final(client: httpx.Client) -> bool:
                return client.get(url, headers=browser).headers["x-loupe-stage"] == "final"

            wait_for(lambda: final(a), timeout=60, what="worker a's final answer")
            wait_for(lambda: final(b), timeout=5, what="worker b's final answer")
    finally:
        server.stop()
