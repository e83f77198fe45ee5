#!/usr/bin/env python3
"""Loupe end to end against raw pyvips in-process, on the same images and transforms.

    python3 bench/serve_bench.py            # full run, about 2 minutes
    python3 bench/serve_bench.py --quick    # about 1 minute, noisier

It measures, in one run:

1. raw pyvips in this process (``thumbnail_buffer`` + ``webpsave_buffer``/``jpegsave_buffer``)
   with 1, W (the server's render threads) and 8 threads: this machine's ceiling;
2. a real ``loupe serve`` on 127.0.0.1, cold (every URL new to the result cache) and warm
   (the same URLs again), with 1 and 8 concurrent clients (wrk if installed, else httpx);
3. the peak RSS of a fresh server hammered by 8 clients on the 24 MP JPEG;
4. issue #14 (``--only-quality-goals`` runs this phase alone): on a server with its lane off,
   each picture's first request (cold: its perceptual hash, class and decisions unknown)
   with a browser's Accept at ``w=600`` against a cold ``fm=jpeg&q=80`` of another picture
   of the set, and ``fm=jpeg``/``fm=webp`` ``q=auto`` against their fixed quality (goal:
   <= 1.3x); the 24 MP photo at full size with a browser's Accept against its fixed-quality
   JPEG (200, never 503, <= 2x); then on a server with its lane on, how long each 1 MP
   answer takes to become final (goal: <= 30 s).

and prints the ratios against the goals (cold/raw >= 0.9, warm/cold >= 25, RSS < 300 MB).
See bench/README.md for what each number means. This is a script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pyvips

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from proxy.config import ImagesConfig  # noqa: E402  (the repo, not an installed copy)

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "rotate.lua"
SHARED = Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))
LARGE = "generated/large_6000x4000_flower_upscaled.jpg"
DEFAULT_IMAGES = (
    "kodak/kodim01.png",
    "kodak/kodim03.png",
    "wikipedia/001.png",
    "wikipedia/004.png",
    LARGE,
)
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

QUALITY_IMAGES = tuple(
    f"kodak/kodim{n:02d}.png" for n in (1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 14, 16, 17, 18, 19)
)
BROWSER = {"Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"}
GOAL_FIRST_COST = 1.3
GOAL_LARGE_COST = 2.0
GOAL_FINAL_S = 30.0
GOAL_COLD_RAW = 0.9
GOAL_WARM_COLD = 25.0
GOAL_RSS_MB = 300.0


# --------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Transform:
    key: str
    label: str
    query: str
    raw: Callable[[bytes], bytes]  # the brief's plain pyvips equivalent
    matched: Callable[[bytes], bytes]  # the same, with Loupe's encoder options


def _webp_crop(blob: bytes) -> pyvips.Image:
    return pyvips.Image.thumbnail_buffer(blob, 400, height=300, crop="centre", size="down")


def _jpeg_width(blob: bytes) -> pyvips.Image:
    # height huge: bound by width only (thumbnail's default box is width x width)
    return pyvips.Image.thumbnail_buffer(blob, 600, height=10_000_000, size="down")


DEFAULTS = ImagesConfig()

TRANSFORMS = (
    Transform(
        "webp",
        "400x300 crop WebP",
        "w=400&h=300&fit=crop&crop=center&fm=webp&q=80",
        lambda b: bytes(_webp_crop(b).webpsave_buffer(Q=80)),
        # Loupe's default encoder settings (proxy.processing.finalize.save_options):
        lambda b: bytes(
            _webp_crop(b).webpsave_buffer(
                Q=80,
                effort=DEFAULTS.webp_effort,
                smart_subsample=DEFAULTS.webp_smart_subsample,
                keep="icc",
            )
        ),
    ),
    Transform(
        "jpeg",
        "600w JPEG",
        "w=600&fm=jpeg&q=80",
        lambda b: bytes(_jpeg_width(b).jpegsave_buffer(Q=80)),
        lambda b: bytes(
            _jpeg_width(b).jpegsave_buffer(
                Q=80, optimize_coding=True, interlace=DEFAULTS.jpeg_progressive, keep="icc"
            )
        ),
    ),
)


# --------------------------------------------------------------------------- results


@dataclass
class Measured:
    scenario: str
    transform: str
    concurrency: int
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    cpu_ms_per_op: float | None = None  # process CPU (raw) or server CPU (Loupe) per image
    server_cores: float | None = None
    client_cores: float | None = None
    other_cores: float | None = None  # busy CPU of processes outside the benchmark
    note: str = ""

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def machine_busy_s() -> float:
    """CPU seconds all processes of this machine have used (``/proc/stat``, boot to now)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / CLK_TCK


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- raw pyvips


def run_raw(
    name: str,
    transform: Transform,
    fn: Callable[[bytes], bytes],
    blobs: Sequence[bytes],
    threads: int,
    duration: float,
) -> Measured:
    """``threads`` workers pull the next source round-robin until the deadline."""
    order = itertools.cycle(blobs)
    lock = threading.Lock()
    latencies: list[float] = []

    def worker(deadline: float) -> None:
        while time.perf_counter() < deadline:
            with lock:
                blob = next(order)
            started = time.perf_counter()
            fn(blob)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    busy0, cpu0, start = machine_busy_s(), time.process_time(), time.perf_counter()
    pool = [
        threading.Thread(target=worker, args=(start + duration,), daemon=True)
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    other = max(0.0, machine_busy_s() - busy0 - cpu) / wall
    ops = len(latencies)
    return Measured(
        name,
        transform.key,
        threads,
        ops,
        wall,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        cpu_ms_per_op=cpu / ops * 1000 if ops else None,
        server_cores=cpu / wall,
        other_cores=other,
    )


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def proc_status_kb(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Child processes (hypercorn with workers would have some; the default has none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class Server:
    """``loupe serve`` on a free loopback port, in its own session; ``stop`` always kills it."""

    def __init__(self, root: Path, data_dir: Path, env: dict[str, str], log_level: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        environ.update(env)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("wb")
        self.client = httpx.Client(base_url=self.url, timeout=60)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--root", str(root), "--host", HOST,
             "--port", str(self.port), "--data-dir", str(data_dir), "--log-level", log_level],
            env=environ, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"loupe serve exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if self.client.get("/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"loupe serve did not become ready:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def metrics(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(("loupe_cache_total", "loupe_renders_total")):
                name, _, value = line.rpartition(" ")
                found[name] = float(value)
        return found

    def cpu(self) -> float:
        return cpu_seconds(self.pid) + sum(cpu_seconds(c) for c in descendants(self.pid))

    def hwm_kb(self) -> int:
        """VmHWM (peak RSS) of the server and of any children, added up."""
        pids = [self.pid, *descendants(self.pid)]
        return sum(proc_status_kb(p, "VmHWM") for p in pids)

    def rss_kb(self) -> int:
        return sum(proc_status_kb(p, "VmRSS") for p in [self.pid, *descendants(self.pid)])

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def cache_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    def get(metrics: dict[str, float], result: str) -> float:
        return metrics.get(f'loupe_cache_total{{result="{result}"}}', 0.0)

    return {r: int(get(after, r) - get(before, r)) for r in ("hit", "miss", "coalesced")}


# --------------------------------------------------------------------------- load clients


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu_s: float | None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    base_url: str, paths: Sequence[str], concurrency: int, duration: float, unique: bool,
    salt: int, workdir: Path, *, script: Path = LUA, extra_env: dict[str, str] | None = None,
    grace_s: float = 90, threads: int = 1,
) -> dict[str, float]:  # fmt: skip
    """One wrk run driven by ``script`` (rotate.lua's environment protocol), its JSON summary.
    One wrk thread: rotate.lua's counter is per thread (two would repeat cold URLs), and one
    epoll thread drives 8 connections at these rates with a few % of a core."""
    paths_file = workdir / f"paths-{salt}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    result_file = workdir / f"wrk-{salt}.json"
    env = dict(os.environ)
    env.update(
        BENCH_PATHS=str(paths_file), BENCH_RESULT=str(result_file),
        BENCH_UNIQUE="1" if unique else "0", BENCH_SALT=str(salt), **(extra_env or {}),
    )  # fmt: skip
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
               "--timeout", "60s", "-s", str(script), base_url]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=duration + grace_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    data: dict[str, float] = json.loads(result_file.read_text())
    return data


def wrk_load(
    base_url: str, paths: Sequence[str], concurrency: int, duration: float, unique: bool,
    salt: int, workdir: Path, threads: int = 1,
) -> LoadResult:  # fmt: skip
    cpu0 = children_cpu()
    data = run_wrk(base_url, paths, concurrency, duration, unique, salt, workdir, threads=threads)
    errors = int(sum(data[k] for k in ("connect", "read", "write", "status", "timeout")))
    return LoadResult(
        int(data["requests"]), data["duration_us"] / 1e6, errors,
        data["p50_us"] / 1000, data["p99_us"] / 1000, children_cpu() - cpu0,
    )  # fmt: skip


def httpx_load(
    base_url: str, paths: Sequence[str], concurrency: int, duration: float, unique: bool,
    salt: int,
) -> LoadResult:  # fmt: skip
    """The fallback client: asyncio + httpx, ``concurrency`` keep-alive connections."""
    counter = itertools.count(salt)
    cycle = itertools.cycle(paths)
    latencies: list[float] = []
    errors = 0

    def next_path() -> str:
        path = next(cycle)
        return f"{path}&bg={next(counter) % 0xFFFFFF:06x}" if unique else path

    async def worker(client: httpx.AsyncClient, deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await client.get(next_path())
                ok = response.status_code < 400
            except httpx.HTTPError:
                ok = False
            if time.perf_counter() > deadline:
                break  # like wrk: what completes after the deadline is not counted
            latencies.append(time.perf_counter() - started)
            errors += not ok

    async def main() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
            start = time.perf_counter()
            await asyncio.gather(*(worker(client, start + duration) for _ in range(concurrency)))
            return time.perf_counter() - start

    cpu0 = time.process_time()
    seconds = asyncio.run(main())
    return LoadResult(
        len(latencies), seconds, errors, percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000, time.process_time() - cpu0,
    )  # fmt: skip


@dataclass
class Runner:
    client: str  # wrk or httpx
    workdir: Path
    salt: int = 0
    wrk_threads: int = 1

    def load(
        self, server: Server, name: str, transform: str, paths: Sequence[str], concurrency: int,
        duration: float, *, unique: bool,
    ) -> tuple[Measured, dict[str, int]]:  # fmt: skip
        self.salt += 1_000_003  # every run gets its own bg range: no URL is ever repeated
        before, cpu0 = server.metrics(), server.cpu()
        busy0, own0 = machine_busy_s(), time.process_time()
        if self.client == "wrk":
            got = wrk_load(
                server.url, paths, concurrency, duration, unique, self.salt, self.workdir,
                self.wrk_threads,
            )  # fmt: skip
        else:
            got = httpx_load(server.url, paths, concurrency, duration, unique, self.salt)
        server_cpu = server.cpu() - cpu0
        own = time.process_time() - own0
        if self.client == "wrk":
            own += got.client_cpu_s or 0.0
        other = max(0.0, machine_busy_s() - busy0 - server_cpu - own) / got.seconds
        time.sleep(0.3 if unique else 0.05)  # let abandoned in-flight renders land
        delta = cache_delta(before, server.metrics())
        measured = Measured(
            name, transform, concurrency, got.requests, got.seconds, got.p50_ms, got.p99_ms,
            errors=got.errors,
            cpu_ms_per_op=server_cpu / got.requests * 1000 if got.requests else None,
            server_cores=server_cpu / got.seconds if got.seconds else None,
            client_cores=(got.client_cpu_s / got.seconds) if got.client_cpu_s else None,
            other_cores=other,
        )  # fmt: skip
        return measured, delta


# --------------------------------------------------------------------------- checks


def image_size(body: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(body, "")
    return image.width, image.height


def prime_and_compare(server: Server, images: Sequence[str], blobs: dict[str, bytes]) -> list[str]:
    """GET every warm URL once (this fills the cache) and check Loupe's output size and format
    against raw pyvips', so the two sides really do the same work."""
    problems = []
    for transform in TRANSFORMS:
        for image in images:
            response = server.client.get(f"/img/{image}?{transform.query}")
            if response.status_code != 200:
                problems.append(f"{image} {transform.key}: HTTP {response.status_code}")
                continue
            theirs = image_size(response.content)
            ours = image_size(transform.raw(blobs[image]))
            mime = response.headers.get("content-type", "")
            if theirs != ours or transform.key not in mime:
                problems.append(f"{image} {transform.key}: loupe {theirs} {mime} vs pyvips {ours}")
    return problems


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Plan:
    raw_s: float
    cold_s: float
    warm_s: float
    rss_s: float


FULL = Plan(raw_s=4.0, cold_s=8.0, warm_s=5.0, rss_s=8.0)
QUICK = Plan(raw_s=1.5, cold_s=3.0, warm_s=2.0, rss_s=3.0)


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """Loupe's defaults (memory + disk result cache included), with two exceptions."""
    return {
        # a fixed AVIF effort: no calibration thread burning CPU during the first seconds
        "LOUPE_IMAGES_AVIF_EFFORT": "2",
        "LOUPE_SERVER_PROCESSING_THREADS": str(args.server_threads),
        "LOUPE_SERVER_WORKERS": "1",  # one process (--cores N measures several)
    }


def default_threads() -> int:
    from proxy.config import ServerConfig

    return int(ServerConfig().render_threads)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases (about 1 minute)")
    parser.add_argument("--data", type=Path, default=SHARED / "data", help="image folder")
    parser.add_argument(
        "--images", default=",".join(DEFAULT_IMAGES), help="comma-separated paths under --data"
    )
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--server-threads", type=int, default=default_threads(),
        help="LOUPE_SERVER_PROCESSING_THREADS for the server (default: Loupe's default)",
    )  # fmt: skip
    parser.add_argument(
        "--server-log-level", default="info", choices=["debug", "info", "warning", "error"],
        help="the server's --log-level (info is Loupe's default)",
    )  # fmt: skip
    parser.add_argument(
        "--cores", type=int, metavar="N",
        help="scale mode (bench/scale_bench.py): N raw pyvips processes against "
        "loupe serve --workers 1 and --workers N",
    )  # fmt: skip
    parser.add_argument(
        "--only-quality-goals", action="store_true", help="phase 4 (issue #14) alone"
    )
    parser.add_argument(
        "--quality-images", default=",".join(QUALITY_IMAGES),
        help="distinct pictures for phase 4 (each is asked for cold once)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def detail_table(results: Sequence[Measured]) -> str:
    rows = [["scenario", "transform", "conc", "n", "img|req/s", "p50 ms", "p99 ms",
             "cpu ms/img", "srv cores", "cli cores", "other cores", "errors"]]  # fmt: skip
    for m in results:
        rows.append([
            m.scenario, m.transform, str(m.concurrency), str(m.ops), fmt(m.rate),
            fmt(m.p50_ms), fmt(m.p99_ms), fmt(m.cpu_ms_per_op), fmt(m.server_cores, 2),
            fmt(m.client_cores, 2), fmt(m.other_cores, 2), str(m.errors),
        ])  # fmt: skip
    return table(rows)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary_table(
    results: Sequence[Measured], threads: int, peak_rss_mb: float
) -> tuple[str, bool]:
    def find(scenario: str, transform: str, conc: int) -> Measured | None:
        for m in results:
            if (m.scenario, m.transform, m.concurrency) == (scenario, transform, conc):
                return m
        return None

    def rate(scenario: str, transform: str, conc: int) -> float:
        found = find(scenario, transform, conc)
        return found.rate if found else 0.0

    def cpu(scenario: str, transform: str, conc: int) -> float:
        found = find(scenario, transform, conc)
        return (found.cpu_ms_per_op or 0.0) if found else 0.0

    rows = [["check", "transform", "value", "goal", "result"]]
    all_ok = True
    for t in TRANSFORMS:
        checks = [
            ("cold c=1 / raw pyvips 1 thread", rate("loupe cold", t.key, 1)
             / max(rate("raw pyvips", t.key, 1), 1e-9), GOAL_COLD_RAW, ">="),
            (f"cold c=8 / raw pyvips {threads} threads (= server workers)",
             rate("loupe cold", t.key, 8) / max(rate("raw pyvips", t.key, threads), 1e-9),
             GOAL_COLD_RAW, ">="),
            ("warm c=8 / cold c=8", rate("loupe warm", t.key, 8)
             / max(rate("loupe cold", t.key, 8), 1e-9), GOAL_WARM_COLD, ">="),
        ]  # fmt: skip
        for label, value, goal, _op in checks:
            ok = value >= goal
            all_ok &= ok
            rows.append([label, t.label, f"{value:.2f}", f">= {goal:g}", verdict(ok)])
        info = rate("loupe cold", t.key, 8) / max(rate("raw pyvips", t.key, 8), 1e-9)
        rows.append(["(info) cold c=8 / raw pyvips 8 threads", t.label, f"{info:.2f}", "", ""])
        matched = rate("loupe cold", t.key, 8) / max(
            rate("raw pyvips, Loupe encoder opts", t.key, threads), 1e-9
        )
        rows.append([f"(info) cold c=8 / raw w/ Loupe encoder opts, {threads} thr",
                     t.label, f"{matched:.2f}", "", ""])  # fmt: skip
        efficiency = cpu("raw pyvips", t.key, threads) / max(cpu("loupe cold", t.key, 8), 1e-9)
        rows.append(["(info) raw CPU ms/img / Loupe cold c=8 CPU ms/img", t.label,
                     f"{efficiency:.2f}", "", ""])  # fmt: skip
        opts = cpu("raw pyvips, Loupe encoder opts", t.key, threads) / max(
            cpu("loupe cold", t.key, 8), 1e-9
        )
        rows.append(["(info) same, raw w/ Loupe encoder opts", t.label, f"{opts:.2f}", "", ""])
    ok = 0 < peak_rss_mb < GOAL_RSS_MB
    all_ok &= ok
    rows.append(["peak RSS, 8 clients on the 24 MP JPEG", "both", f"{peak_rss_mb:.0f} MB",
                 f"< {GOAL_RSS_MB:g} MB", verdict(ok)])  # fmt: skip
    return table(rows), all_ok


def paths_for(images: Sequence[str], transform: Transform) -> list[str]:
    return [f"/img/{image}?{transform.query}" for image in images]


def benchmark(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> int:
    if args.only_quality_goals:
        started = time.monotonic()
        verdicts = quality_goals(args, workdir, stack)
        print()
        for label, ok, value in verdicts:
            print(f"{verdict(ok)}  {label}: {value}")
        overall = all(ok for _, ok, _ in verdicts)
        print(f"overall: {verdict(overall)} ({time.monotonic() - started:.0f} s)")
        return 0
    plan = QUICK if args.quick else FULL
    images = [s.strip() for s in args.images.split(",") if s.strip()]
    missing = [i for i in [*images, LARGE] if not (args.data / i).is_file()]
    if missing:
        log(f"serve_bench: images not found under {args.data}: {', '.join(missing)}")
        return 2
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "httpx"
    if client == "wrk" and not shutil.which("wrk"):
        log("serve_bench: wrk not found (apt-get install -y wrk), or use --client httpx")
        return 2
    threads = args.server_threads
    blobs = {image: (args.data / image).read_bytes() for image in {*images, LARGE}}
    rotation = [blobs[image] for image in images]
    results: list[Measured] = []
    started = time.monotonic()
    cores = os.cpu_count() or 1
    log(f"serve_bench: {cores} cores, client={client}, server render threads={threads}, "
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"images: {', '.join(images)}")  # fmt: skip

    busy0 = machine_busy_s()
    time.sleep(1.0)
    background = machine_busy_s() - busy0
    log(f"  other processes were using {background:.2f} cores before the start"
        + (" (busy: expect noisy numbers)" if background > 0.25 else ""))  # fmt: skip

    # 1. raw pyvips, in this process, before any server runs
    pyvips.cache_set_max(0)  # as the server does: no libvips operation cache
    for t in TRANSFORMS:
        for blob in rotation:  # warm libvips and the page cache
            t.raw(blob)
            t.matched(blob)
        for n in sorted({1, threads, 8}):
            log(f"  raw pyvips {t.key} x{n} ...")
            results.append(run_raw("raw pyvips", t, t.raw, rotation, n, plan.raw_s))
        results.append(
            run_raw("raw pyvips, Loupe encoder opts", t, t.matched, rotation, threads, plan.raw_s)
        )

    runner = Runner(client, workdir)
    # 2. cold then warm, on one server with its default caches (memory + disk)
    log("  starting loupe serve (cold/warm) ...")
    server = Server(args.data, workdir / "data-main", server_env(args),
                    args.server_log_level)  # fmt: skip
    stack.callback(server.stop)
    log(f"  server pid {server.pid} on {server.url}, RSS after start "
        f"{server.rss_kb() / 1024:.0f} MB")  # fmt: skip
    for t in TRANSFORMS:  # a few cold renders so first-request costs are not in the numbers
        for i, path in enumerate(paths_for(images, t)):
            server.client.get(f"{path}&bg={i + 1:06x}").raise_for_status()
    for t in TRANSFORMS:
        for conc in (1, 8):
            log(f"  loupe cold {t.key} c={conc} ...")
            measured, delta = runner.load(
                server, "loupe cold", t.key, paths_for(images, t), conc, plan.cold_s, unique=True
            )
            if delta["hit"] or delta["coalesced"]:
                measured.note = f"NOT ALL MISSES: {delta}"
                log(f"  warning: cold run saw cache {delta}")
            results.append(measured)
    problems = prime_and_compare(server, images, blobs)  # fills the cache for the warm runs
    for problem in problems:
        log(f"  warning: output mismatch: {problem}")
    for t in TRANSFORMS:
        for conc in (1, 8):
            log(f"  loupe warm {t.key} c={conc} ...")
            measured, delta = runner.load(
                server, "loupe warm", t.key, paths_for(images, t), conc, plan.warm_s, unique=False
            )
            if delta["miss"]:
                measured.note = f"NOT ALL HITS: {delta}"
                log(f"  warning: warm run saw cache {delta}")
            results.append(measured)
    main_hwm = server.hwm_kb()
    server.stop()

    # 3. peak RSS: a fresh server, 8 clients, cold renders of the 24 MP JPEG (both transforms)
    log("  starting a fresh loupe serve for peak RSS ...")
    fresh = Server(args.data, workdir / "data-rss", server_env(args),
                   args.server_log_level)  # fmt: skip
    stack.callback(fresh.stop)
    idle_mb = fresh.rss_kb() / 1024
    large_paths = [f"/img/{LARGE}?{t.query}" for t in TRANSFORMS]
    log("  loupe cold 24 MP c=8 (peak RSS) ...")
    measured, _ = runner.load(
        fresh, "loupe cold 24MP (RSS)", "both", large_paths, 8, plan.rss_s, unique=True
    )
    results.append(measured)
    peak_rss_mb = fresh.hwm_kb() / 1024
    fresh.stop()
    quality_verdicts = quality_goals(args, workdir, stack)
    elapsed = time.monotonic() - started

    print()
    print(f"Loupe vs raw pyvips: {cores} cores, client {client} (it shares the cores with the "
          f"server), server render threads {threads}, {'quick' if args.quick else 'full'} "
          f"run in {elapsed:.0f} s")  # fmt: skip
    print(f"images (round-robin): {', '.join(images)}")
    print()
    print(detail_table(results))
    print()
    print(f"server RSS: {idle_mb:.0f} MB idle after start; peak (VmHWM) {peak_rss_mb:.0f} MB "
          f"after 8 clients on the 24 MP JPEG; {main_hwm / 1024:.0f} MB peak for the "
          f"whole cold+warm server")  # fmt: skip
    busy = [m for m in results if (m.other_cores or 0.0) > 0.25]
    if busy:
        worst = max(m.other_cores or 0.0 for m in busy)
        print(f"warning: other processes used up to {worst:.2f} cores during {len(busy)} of "
              f"{len(results)} runs (column 'other cores'): those numbers are low; rerun on "
              "an idle machine for figures you can compare")  # fmt: skip
    for m in results:
        if m.note:
            print(f"note: {m.scenario} {m.transform} c={m.concurrency}: {m.note}")
    for problem in problems:
        print(f"note: output mismatch: {problem}")
    print()
    text, all_ok = summary_table(results, threads, peak_rss_mb)
    print(text)
    print()
    for label, ok, value in quality_verdicts:
        print(f"{verdict(ok)}  {label}: {value}")
    all_ok = all_ok and all(ok for _, ok, _ in quality_verdicts)
    print(f"overall: {verdict(all_ok)}")
    if args.json:
        args.json.write_text(json.dumps({
            "cores": cores, "client": client, "server_threads": threads, "quick": args.quick,
            "images": images, "peak_rss_mb": peak_rss_mb, "idle_rss_mb": idle_mb,
            "results": [asdict(m) | {"rate": m.rate} for m in results],
        }, indent=2))  # fmt: skip
    return 0


def quality_goals(
    args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack
) -> list[tuple[str, bool, str]]:
    """Phase 4 (issue #14): cold first answers against fixed quality, the 24 MP photo, and
    the time until answers are final. Every figure is a ratio to a baseline of this run."""
    pictures = [s.strip() for s in args.quality_images.split(",") if s.strip()]
    pictures = [p for p in pictures if (args.data / p).is_file()]
    env = {**server_env(args), "LOUPE_LANE_WORKERS": "0"}  # no background work: cold costs
    log("  phase 4: loupe serve with its lane off (cold first answers) ...")
    server = Server(args.data, workdir / "data-q14", env, args.server_log_level)
    stack.callback(server.stop)
    server.client.get(f"/img/{LARGE}?w=64&fm=jpeg&q=80").raise_for_status()  # warm the models

    def timed(path: str, query: str, headers: dict[str, str]) -> tuple[float, httpx.Response]:
        began = time.perf_counter()
        response = server.client.get(f"/img/{path}?{query}", headers=headers)
        return time.perf_counter() - began, response

    comparisons = (  # (name, q=auto query, baseline query, Accept)
        ("default (browser Accept, w=600)", "w=600", "w=600&fm=jpeg&q=80", BROWSER),
        ("q=auto fm=jpeg", "w=600&fm=jpeg", "w=600&fm=jpeg&q=80", BROWSER),
        ("q=auto fm=webp", "w=600&fm=webp", "w=600&fm=webp&q=80", BROWSER),
    )
    verdicts: list[tuple[str, bool, str]] = []
    for index, (name, auto_q, fixed_q, headers) in enumerate(comparisons):
        mine = pictures[index :: len(comparisons)]  # each picture is cold exactly once
        auto_s = fixed_s = 0.0
        statuses = []
        for i, picture in enumerate(mine):
            # The baseline on the same picture (a fixed quality uses no hash, class or
            # decision, so the order does not warm anything for q=auto); alternated.
            order = [(auto_q, True), (fixed_q, False)][:: 1 if i % 2 == 0 else -1]
            for query, is_auto in order:
                seconds, response = timed(picture, query, headers)
                statuses.append(response.status_code)
                if is_auto:
                    auto_s += seconds
                    assert response.headers.get("x-loupe-stage") == "provisional", picture
                else:
                    fixed_s += seconds
        ratio = auto_s / fixed_s if fixed_s else float("inf")
        log(f"  {name}: {len(mine)} cold pictures, q=auto {auto_s * 1000 / len(mine):.0f} ms "
            f"vs fixed {fixed_s * 1000 / len(mine):.0f} ms each")  # fmt: skip
        verdicts.append((f"cold {name} <= {GOAL_FIRST_COST}x fixed (n={len(mine)})",
                         ratio <= GOAL_FIRST_COST and set(statuses) == {200},
                         f"{ratio:.2f}x"))  # fmt: skip
    # The 24 MP photo at full size: fixed JPEG first, then q=auto with a browser's Accept.
    fixed_s, fixed = timed(LARGE, "fm=jpeg&q=80", BROWSER)
    large_s, large = timed(LARGE, "", BROWSER)
    log(f"  24 MP full size: fixed JPEG {fixed_s:.2f} s ({fixed.status_code}), q=auto "
        f"{large_s:.2f} s ({large.status_code}, {large.headers.get('content-type')})")  # fmt: skip
    ratio = large_s / fixed_s
    verdicts.append((f"24 MP at full size, browser Accept: 200 in <= {GOAL_LARGE_COST}x fixed JPEG",
                     large.status_code == 200 and ratio <= GOAL_LARGE_COST,
                     f"{large.status_code}, {ratio:.2f}x"))  # fmt: skip
    log_text = server.log_path.read_text(errors="replace")
    count_503 = log_text.count(" 503 ")
    verdicts.append(("no 503 on an idle server", count_503 == 0, str(count_503)))
    server.stop()

    # Time to final: a server with its lane on, one 1 MP answer at a time.
    log("  phase 4: loupe serve with its lane on (time to final, 1 MP outputs) ...")
    lane_env = {**server_env(args), "LOUPE_LANE_POLL_S": "0.1"}
    busy = Server(args.data, workdir / "data-q14-lane", lane_env, args.server_log_level)
    stack.callback(busy.stop)
    waits = []
    for picture in pictures[:3]:
        began = time.monotonic()
        query = "w=1224"  # 1224x816: 1 MP
        first = busy.client.get(f"/img/{picture}?{query}", headers=BROWSER)
        stage = first.headers.get("x-loupe-stage")
        while stage != "final" and time.monotonic() - began < 2 * GOAL_FINAL_S:
            time.sleep(0.25)
            stage = busy.client.get(f"/img/{picture}?{query}", headers=BROWSER).headers.get(
                "x-loupe-stage"
            )
        waits.append(time.monotonic() - began if stage == "final" else float("inf"))
        log(f"  {picture} {query}: final after {waits[-1]:.1f} s")
    busy.stop()
    worst = max(waits) if waits else float("inf")
    verdicts.append((f"every 1 MP answer final within {GOAL_FINAL_S:g} s of the first request",
                     worst <= GOAL_FINAL_S, f"worst {worst:.1f} s"))  # fmt: skip
    return verdicts


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="loupe-bench-"))
    try:
        with contextlib.ExitStack() as stack:  # stops every server it started, whatever happens
            if args.cores:
                from scale_bench import scale_benchmark  # bench/ is on sys.path as the script's

                return scale_benchmark(args, workdir, stack)
            return benchmark(args, workdir, stack)
    except KeyboardInterrupt:
        log("serve_bench: interrupted; servers stopped")
        return 130
    finally:
        if args.keep:
            log(f"serve_bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
