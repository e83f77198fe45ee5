#!/usr/bin/env python3
"""Peak memory of one request, for the requests that cost the most: a real ``loupe serve``
per scenario, on default limits, its ``VmHWM`` (peak RSS, from ``/proc/PID/status``) read
after the answer.

    python3 bench/memory_bench.py              # every scenario, about 4 minutes
    python3 bench/memory_bench.py --only avif  # scenarios whose name contains "avif"

Each scenario starts a fresh server (so one peak cannot hide another), sends its request(s)
and reports the status, the seconds to answer and the server's peak RSS. The baseline is a
fresh server of the same run after one small render (a 600 px JPEG): the ratio says how much
a scenario adds on top of a running node. The goal (issue #15): under 1.5 GB for any single
request on default limits. Sources are generated into a temporary folder (from the shared
24 MP photo when present, else synthetic) and removed at the end; nothing leaves 127.0.0.1.
This is a script, not a test: nothing in ``tests/`` or CI runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pyvips

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from proxy.config import ImagesConfig  # noqa: E402  (the repo, not an installed copy)
from proxy.processing.avif_effort import AvifEffort  # noqa: E402

SHARED = Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))
PHOTO = SHARED / "data" / "generated" / "large_6000x4000_flower_upscaled.jpg"
MODELS = SHARED / "models"
GOAL_MB = 1536.0
ACCEPT_ALL = "image/avif,image/webp,image/*,*/*;q=0.8"
ACCEPT_OLD = "image/jpeg,image/png,*/*;q=0.8"


# --------------------------------------------------------------------------- sources


def _photo() -> pyvips.Image:
    if PHOTO.is_file():
        return pyvips.Image.new_from_file(str(PHOTO))
    noise = pyvips.Image.gaussnoise(6000, 4000, sigma=25, mean=128, seed=3).gaussblur(2)
    ramp = pyvips.Image.xyz(6000, 4000)[0] * (255 / 6000)
    return (
        (noise * 0.5 + ramp * 0.5).cast("uchar").bandjoin([noise.cast("uchar"), ramp.cast("uchar")])
    )


def _animation(width: int, height: int, frames: int) -> pyvips.Image:
    """Real frames (a moving photo crop), so every frame differs and nothing merges."""
    photo = _photo().resize(max(width / 6000, height / 4000) * 1.2)
    step = max(1, (photo.width - width) // frames)
    pages = [
        photo.crop(min(i * step, photo.width - width), 0, width, height) for i in range(frames)
    ]
    joined = pyvips.Image.arrayjoin(pages, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", height)
    return joined


def make_sources(root: Path) -> None:
    """The bench's sources: big photos and animations at the default limits."""
    photo = _photo()
    photo.jpegsave(str(root / "photo.jpg"), Q=90)  # 24 MP
    photo.resize(2.0).jpegsave(str(root / "huge.jpg"), Q=85)  # 96 MP, just under 100 MP
    # 100 MP RGBA, posterised so that it stays under the 64 MiB byte limit (~10 MB).
    posterised = (photo.resize(10000 / 6000, vscale=10000 / 4000) / 16).cast("uchar") * 16
    posterised.bandjoin(255).cast("uchar").pngsave(str(root / "huge.png"), compression=6)
    _animation(1000, 1000, 64).webpsave(str(root / "anim.webp"), Q=70, effort=0)  # 64 MP canvas
    _animation(480, 360, 256).gifsave(str(root / "anim.gif"))  # 256 frames, the frame limit


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class Server:
    def __init__(self, root: Path, work: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = Path(tempfile.mkdtemp(dir=work))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        environ.update({"PYTHONPATH": str(REPO), "LOUPE_SERVER_WORKERS": "1", **env})
        # AVIF effort calibrated as in production, once per run (not once per server).
        shutil.copy(work / "avif-effort.json", data / "avif-effort.json")
        args = ["--models-dir", str(MODELS)] if MODELS.is_dir() else []
        self.log = (data / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--root", str(root), "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(data), *args],
            env=environ, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"loupe serve exited; see {self.log.name}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("loupe serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class CountingOrigin:
    """A loopback origin serving one file slowly, counting its downloads."""

    def __init__(self, body: bytes) -> None:
        self.gets: Counter[str] = Counter()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                with lock:
                    outer.gets[self.path] += 1
                time.sleep(1.0)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Request:
    path: str
    query: str
    accept: str = ACCEPT_OLD


@dataclass
class Scenario:
    name: str
    requests: tuple[Request, ...]  # sent together
    env: dict[str, str] = field(default_factory=dict)
    origin: bool = False  # /img/o/... from a counting loopback origin


def q(path: str, query: str, accept: str = ACCEPT_OLD) -> Request:
    return Request(path, query, accept)


BIG = "w=7350&upscale=1"  # 7350x4900 = 36 MP from the 24 MP photo
SCENARIOS = [
    Scenario("jpeg q=auto 36 MP", (q("photo.jpg", f"{BIG}&fm=jpeg"),)),
    Scenario("webp q=auto 36 MP", (q("photo.jpg", f"{BIG}&fm=webp"),)),
    Scenario("avif q=auto 36 MP", (q("photo.jpg", f"{BIG}&fm=avif"),)),
    Scenario("png 36 MP", (q("photo.jpg", f"{BIG}&fm=png"),)),
    Scenario("fm=auto 36 MP (AVIF accepted)", (q("photo.jpg", BIG, ACCEPT_ALL),)),
    Scenario(
        "webp screenshot policy 36 MP (lossless tried)",
        (q("photo.jpg", f"{BIG}&fm=webp&policy=screenshot"),),
    ),
    Scenario(
        "two overlapping q=auto 36 MP",
        (q("photo.jpg", f"{BIG}&fm=jpeg"), q("photo.jpg", f"{BIG}&fm=webp")),
    ),
    Scenario("96 MP JPEG -> 40 MP q=auto", (q("huge.jpg", "w=7740&fm=jpeg"),)),
    Scenario(
        "96 MP JPEG -> 1200x1200 smart crop", (q("huge.jpg", "w=1200&h=1200&fit=crop&fm=webp"),)
    ),
    Scenario(
        "96 MP JPEG -> attention crop 20 MP",
        (q("huge.jpg", "w=4500&h=4500&fit=crop&crop=attention&fm=jpeg"),),
    ),
    Scenario("100 MP PNG (RGBA) -> w=800", (q("huge.png", "w=800&fm=webp"),)),
    Scenario("100 MP PNG (RGBA) -> 36 MP PNG", (q("huge.png", "w=6000&fm=png"),)),
    Scenario("100 MP PNG (RGBA) -> 40 MP AVIF (planned: 400)", (q("huge.png", "w=6324&fm=avif"),)),
    Scenario(
        "100 MP PNG (RGBA) -> 40 MP fm=auto (AVIF -> WebP)",
        (q("huge.png", "w=6324", ACCEPT_ALL),),
    ),
    Scenario("100 MP PNG (RGBA) -> 26 MP AVIF q=auto", (q("huge.png", "w=5100&fm=avif"),)),
    Scenario("100 MP PNG (RGBA) -> 40 MP WebP q=auto", (q("huge.png", "w=6324&fm=webp"),)),
    Scenario(
        "100 MP PNG (RGBA) -> attention crop",
        (q("huge.png", "w=3000&h=2000&fit=crop&crop=attention&fm=avif"),),
    ),
    Scenario("animated WebP 1000x1000x64 -> w=600 WebP", (q("anim.webp", "w=600&fm=webp"),)),
    Scenario("animated GIF 480x360x256 -> GIF", (q("anim.gif", "fm=gif"),)),
    Scenario("animated GIF 480x360x256 -> fm=auto", (q("anim.gif", "w=400", ACCEPT_ALL),)),
    Scenario(
        "48 simultaneous origin requests, one 96 MP image",
        tuple(q("o/huge.jpg", f"w={300 + n}&fm=jpeg") for n in range(48)),
        env={"LOUPE_SOURCES_ALLOW_PRIVATE_NETWORKS": "true"},
        origin=True,
    ),
]


@dataclass
class Result:
    name: str
    statuses: list[int]
    seconds: float
    peak_mb: float
    downloads: int | None = None


async def _send(url: str, requests: tuple[Request, ...]) -> tuple[list[int], float]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.get(f"{url}/img/{r.path}?{r.query}", headers={"Accept": r.accept})
                for r in requests
            )
        )
    return [r.status_code for r in responses], time.perf_counter() - started


def run(scenario: Scenario, root: Path, work: Path, huge: bytes, deadline: float) -> Result:
    origin = CountingOrigin(huge) if scenario.origin else None
    env = {"LOUPE_SERVER_REQUEST_DEADLINE_S": str(deadline), **scenario.env}
    if origin is not None:
        env["LOUPE_SOURCES_ORIGINS"] = f"o={origin.url}"
    server = Server(root, work, env)
    try:
        statuses, seconds = asyncio.run(_send(server.url, scenario.requests))
        time.sleep(0.5)  # background work after the answer (lane jobs) counts too
        downloads = sum(origin.gets.values()) if origin is not None else None
        return Result(scenario.name, statuses, seconds, peak_rss_mb(server.process.pid), downloads)
    finally:
        server.stop()
        if origin is not None:
            origin.close()


def baseline(root: Path, work: Path) -> float:
    server = Server(root, work, {})
    try:
        response = httpx.get(f"{server.url}/img/photo.jpg?w=600&fm=jpeg", timeout=120)
        response.raise_for_status()
        return peak_rss_mb(server.process.pid)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--deadline",
        type=float,
        default=300.0,
        help="server.request_deadline_s (default 300: every render runs to the end, so its "
        "whole peak is measured; Loupe's own default, 20 s, would cut slow ones short)",
    )
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="loupe-memory-bench-"))
    try:
        root = work / "root"
        root.mkdir()
        print(f"making sources in {root} ...", flush=True)
        make_sources(root)
        AvifEffort(ImagesConfig().avif_time_budget_s, work).get()  # writes avif-effort.json
        huge = (root / "huge.jpg").read_bytes()
        base = baseline(root, work)
        print(f"baseline: a fresh server after one 600 px JPEG peaks at {base:.0f} MB")
        print(f"request deadline: {options.deadline:g} s; every other setting at its default\n")
        header = f"{'scenario':52} {'status':>14} {'s':>6} {'peak MB':>8} {'x base':>7}  goal"
        print(header)
        print("-" * len(header))
        worst = 0.0
        for scenario in (s for s in SCENARIOS if options.only.lower() in s.name.lower()):
            result = run(scenario, root, work, huge, options.deadline)
            worst = max(worst, result.peak_mb)
            codes = Counter(result.statuses)
            status = ",".join(f"{c}x{n}" if n > 1 else str(c) for c, n in sorted(codes.items()))
            verdict = "PASS" if result.peak_mb < GOAL_MB else "FAIL"
            print(
                f"{result.name:52} {status:>14} {result.seconds:6.1f} {result.peak_mb:8.0f} "
                f"{result.peak_mb / base:7.2f}  {verdict}",
                flush=True,
            )
            if result.downloads is not None:
                print(f"{'':52} origin downloads: {result.downloads}")
        print(f"\nworst peak: {worst:.0f} MB (goal < {GOAL_MB:.0f} MB per request)")
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if options.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
