"""``serve_bench.py --cores N``: Loupe on many cores against the machine's ceiling.

    python3 bench/serve_bench.py --cores 16            # about 75 s
    python3 bench/serve_bench.py --cores 2 --quick     # about 40 s

One run measures, on the same sources (768x512 JPEGs made from the Kodak PNGs) and the
same transform (a 600 px wide JPEG, q=80):

1. the ceiling: N processes of raw pyvips, one thread each, ``VIPS_CONCURRENCY=1``; then
   the same with Loupe's JPEG encoder options (``optimize_coding``), for the share of any
   gap that is encoder settings rather than serving;
2. ``loupe serve --workers 1`` (today's single process), cold (every URL new: 32
   clients) and warm (the same URLs, cache hits: 32 clients), CPU per request, RSS;
3. ``loupe serve --workers N``, the same;
4. a fresh ``--workers N`` server under 8 clients on the 24 MP JPEG: the peak RSS of
   all its processes (VmHWM added up) and their PSS (shared pages counted once).

and prints the ratios against the goals of issue #20. Not a test: nothing in CI runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pyvips
from serve_bench import (
    LARGE,
    TRANSFORMS,
    Measured,
    Runner,
    Server,
    descendants,
    fmt,
    log,
    machine_busy_s,
    proc_status_kb,
    table,
)

QUERY = "w=600&fm=jpeg&q=80"
SOURCES = ("01", "02", "03", "06", "07", "08", "11", "12")  # the landscape 768x512 ones
CONCURRENCY = 32
RSS_CLIENTS = 8

GOAL_CEILING = 0.8  # cold, N workers / N raw processes
GOAL_CPU = 1.3  # CPU per request, N workers / raw
GOAL_WARM = 8.0  # warm, N workers / one worker (16 cores)
GOAL_RSS_MB = 1536.0  # all workers after 8 clients on 24 MP sources


@dataclass(frozen=True)
class Phases:
    raw_s: float
    cold_s: float
    warm_s: float
    rss_s: float


FULL = Phases(raw_s=5.0, cold_s=8.0, warm_s=5.0, rss_s=6.0)
QUICK = Phases(raw_s=2.0, cold_s=3.0, warm_s=2.0, rss_s=3.0)


JPEG = next(t for t in TRANSFORMS if t.query == QUERY)  # serve_bench's jpeg transform


def make_sources(data: Path, folder: Path) -> list[str]:
    """768x512 JPEGs (q=90) of the Kodak PNGs, and the 24 MP JPEG, in the server's root."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number in SOURCES:
        png = data / "kodak" / f"kodim{number}.png"
        if png.is_file():
            pyvips.Image.new_from_file(str(png)).jpegsave(str(folder / f"k{number}.jpg"), Q=90)
            names.append(f"k{number}.jpg")
    large = data / LARGE
    if large.is_file():
        (folder / "large.jpg").write_bytes(large.read_bytes())
    return names


# --------------------------------------------------------------------------- the ceiling


def raw_worker(files: list[str], start: float, duration: float, matched: bool) -> None:
    """One ceiling process (run as ``scale_bench.py --raw-worker``): render round-robin
    from ``start`` (wall clock) for ``duration``, print ops and CPU seconds as JSON.
    ``matched``: with Loupe's JPEG encoder options (``optimize_coding``)."""
    raw = JPEG.matched if matched else JPEG.raw
    pyvips.cache_set_max(0)
    blobs = [Path(f).read_bytes() for f in files]
    for blob in blobs:
        raw(blob)
    time.sleep(max(0.0, start - time.time()))
    cpu0, began, ops = time.process_time(), time.perf_counter(), 0
    end = began + duration
    while time.perf_counter() < end:
        raw(blobs[ops % len(blobs)])
        ops += 1
    wall = time.perf_counter() - began
    print(json.dumps({"ops": ops, "cpu_s": time.process_time() - cpu0, "wall_s": wall}))


def ceiling(files: list[Path], processes: int, duration: float, matched: bool) -> Measured:
    env = dict(os.environ, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1")
    start = time.time() + 2.0  # every process loaded and warm before the clock starts
    command = [sys.executable, __file__, "--raw-worker", "--start", str(start),
               "--duration", str(duration), *(["--matched"] if matched else []),
               *map(str, files)]  # fmt: skip
    running = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    results = []
    for process in running:
        out, _ = process.communicate(timeout=duration + 60)
        results.append(json.loads(out.strip().splitlines()[-1]))
    ops = sum(r["ops"] for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    wall = max(r["wall_s"] for r in results)
    name = f"raw pyvips x{processes} proc" + (", Loupe's encoder opts" if matched else "")
    return Measured(
        name, "jpeg", processes, ops, wall, 0.0, 0.0,
        cpu_ms_per_op=cpu / ops * 1000 if ops else None, server_cores=cpu / wall,
    )  # fmt: skip


# --------------------------------------------------------------------------- memory


def pss_kb(pid: int) -> int:
    """Proportional set size: pages shared with other processes counted once in total."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


@dataclass
class Memory:
    processes: int
    rss_mb: float  # VmRSS, added up (shared pages counted in each)
    pss_mb: float  # PSS, added up (shared pages counted once)
    hwm_mb: float  # VmHWM (peak RSS), added up
    worker_rss_mb: list[float]
    peak_pss_mb: float | None = None  # sampled during a load (PeakSampler)

    def text(self) -> str:
        per = ", ".join(f"{mb:.0f}" for mb in self.worker_rss_mb)
        peak = f", peak PSS {self.peak_pss_mb:.0f} MB" if self.peak_pss_mb else ""
        return (
            f"{self.processes} processes: RSS {self.rss_mb:.0f} MB (workers: {per}), "
            f"PSS {self.pss_mb:.0f} MB, peak RSS {self.hwm_mb:.0f} MB{peak}"
        )


class PeakSampler:
    """The largest PSS total seen while a load runs (sampled every 0.5 s); VmHWM is kept
    by the kernel, RSS and the per-worker figures are read at :meth:`stop`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak_pss_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.5):
            self.peak_pss_mb = max(self.peak_pss_mb, memory(self.server).pss_mb)

    def stop(self) -> Memory:
        self._done.set()
        self._thread.join()
        now = memory(self.server)
        now.peak_pss_mb = max(self.peak_pss_mb, now.pss_mb)
        return now


def memory(server: Server) -> Memory:
    pids = [server.pid, *descendants(server.pid)]
    workers = pids[1:] or pids
    return Memory(
        len(pids),
        sum(proc_status_kb(p, "VmRSS") for p in pids) / 1024,
        sum(pss_kb(p) for p in pids) / 1024,
        sum(proc_status_kb(p, "VmHWM") for p in pids) / 1024,
        [proc_status_kb(p, "VmRSS") / 1024 for p in workers],
    )


# --------------------------------------------------------------------------- the run


def serve(
    args: argparse.Namespace, root: Path, data: Path, workers: int, stack: contextlib.ExitStack
) -> Server:
    env = {"LOUPE_IMAGES_AVIF_EFFORT": "2", "LOUPE_SERVER_WORKERS": str(workers),
           "LOUPE_LANE_WORKERS": "0", "LOUPE_LOG_ACCESS": "false"}  # fmt: skip
    server = Server(root, data, env, args.server_log_level)
    stack.callback(server.stop)
    if workers > 1:  # every worker up: the supervisor has them all as children
        deadline = time.monotonic() + 60
        while len(descendants(server.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
    return server


def measure_server(
    args: argparse.Namespace, runner: Runner, root: Path, data: Path, workers: int,
    paths: list[str], phases: Phases, stack: contextlib.ExitStack,
) -> tuple[Measured, Measured, Memory]:  # fmt: skip
    label = f"loupe --workers {workers}"
    log(f"  {label}: starting ...")
    server = serve(args, root, data, workers, stack)
    # first renders off the clock, in every worker: a new connection each (the kernel
    # spreads connections over the workers by address hash)
    for i in range(max(2 * len(paths), 4 * workers)):
        path = paths[i % len(paths)]
        httpx.get(f"{server.url}{path}&bg={i + 1:06x}", timeout=60).raise_for_status()
    log(f"  {label}: cold c={CONCURRENCY} ...")
    cold, delta = runner.load(
        server, f"{label} cold", "jpeg", paths, CONCURRENCY, phases.cold_s, unique=True
    )
    if delta["hit"] or delta["coalesced"]:
        cold.note = f"NOT ALL MISSES: {delta}"
    for path in paths:
        server.client.get(path).raise_for_status()
    log(f"  {label}: warm c={CONCURRENCY} ...")
    warm, delta = runner.load(
        server, f"{label} warm", "jpeg", paths, CONCURRENCY, phases.warm_s, unique=False
    )
    if delta["miss"]:
        warm.note = f"NOT ALL HITS: {delta}"
    used = memory(server)
    server.stop()
    return cold, warm, used


def peak_memory(
    args: argparse.Namespace, runner: Runner, root: Path, data: Path, workers: int,
    phases: Phases, stack: contextlib.ExitStack,
) -> tuple[Measured, Memory, Memory]:  # fmt: skip
    log(f"  loupe --workers {workers}: {RSS_CLIENTS} clients on the 24 MP JPEG ...")
    server = serve(args, root, data, workers, stack)
    idle = memory(server)
    paths = [f"/img/large.jpg?{t.query}" for t in TRANSFORMS]  # serve_bench's RSS phase
    sampler = PeakSampler(server)
    measured, _ = runner.load(
        server, f"loupe --workers {workers} 24MP", "both", paths, RSS_CLIENTS, phases.rss_s,
        unique=True,
    )  # fmt: skip
    used = sampler.stop()
    server.stop()
    return measured, idle, used


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def scale_benchmark(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> int:
    cores = int(args.cores)
    phases = QUICK if args.quick else FULL
    root = workdir / "sources"
    names = make_sources(args.data, root)
    if len(names) < 2 or not (root / "large.jpg").is_file():
        log(f"serve_bench: need kodak/kodimNN.png and {LARGE} under {args.data}")
        return 2
    client = args.client
    if client == "auto":
        client = "wrk" if shutil_which("wrk") else "httpx"
    machine = os.cpu_count() or 1
    log(f"serve_bench --cores {cores}: {machine} cores here, client={client}, "
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
        f"{len(names)} sources, {QUERY}")  # fmt: skip
    busy0 = machine_busy_s()
    time.sleep(1.0)
    log(f"  other processes were using {machine_busy_s() - busy0:.2f} cores before the start")
    started = time.monotonic()
    paths = [f"/img/{name}?{QUERY}" for name in names]

    log(f"  ceiling: {cores} raw pyvips processes, one thread, VIPS_CONCURRENCY=1 ...")
    top = ceiling([root / n for n in names], cores, phases.raw_s, matched=False)
    log("  the same with Loupe's JPEG encoder options (optimize_coding) ...")
    top_matched = ceiling([root / n for n in names], cores, phases.raw_s, matched=True)
    runner = Runner(client, workdir, wrk_threads=max(1, min(4, cores // 4)))
    one_cold, one_warm, one_mem = measure_server(
        args, runner, root, workdir / "data-1", 1, paths, phases, stack
    )
    n_cold, n_warm, n_mem = measure_server(
        args, runner, root, workdir / f"data-{cores}", cores, paths, phases, stack
    )
    big, idle_mem, big_mem = peak_memory(
        args, runner, root, workdir / "data-rss", cores, phases, stack
    )
    results = [top, top_matched, one_cold, one_warm, n_cold, n_warm, big]
    elapsed = time.monotonic() - started

    print()
    print(f"Loupe on {cores} cores ({machine} on this machine), client {client} (it shares "
          f"the cores), {'quick' if args.quick else 'full'} run in {elapsed:.0f} s; "
          f"{QUERY} from {len(names)} 768x512 JPEGs, {CONCURRENCY} clients")  # fmt: skip
    print()
    rows = [["scenario", "n", "req/s", "x ceiling", "x 1 worker", "p50 ms", "p99 ms",
             "cpu ms/req", "srv cores", "cli cores", "other", "errors"]]  # fmt: skip
    bases = {"cold": one_cold.rate, "warm": one_warm.rate}
    for m in results:
        kind = "warm" if "warm" in m.scenario else "cold"
        same_work = "24MP" not in m.scenario
        versus_one = (
            ratio(m.rate, bases[kind]) if m.scenario.startswith("loupe") and same_work else None
        )
        versus_top = ratio(m.rate, top.rate) if same_work else None
        rows.append([
            m.scenario, str(m.ops), fmt(m.rate), fmt(versus_top, 2),
            fmt(versus_one, 2), fmt(m.p50_ms or None), fmt(m.p99_ms or None),
            fmt(m.cpu_ms_per_op), fmt(m.server_cores, 2), fmt(m.client_cores, 2),
            fmt(m.other_cores, 2), str(m.errors),
        ])  # fmt: skip
    print(table(rows))
    print()
    print(f"memory, --workers 1 after cold+warm: {one_mem.text()}")
    print(f"memory, --workers {cores} after cold+warm: {n_mem.text()}")
    print(f"memory, --workers {cores} idle after start: {idle_mem.text()}")
    print(f"memory, --workers {cores} after {RSS_CLIENTS} clients on the 24 MP JPEG: "
          f"{big_mem.text()}")  # fmt: skip
    for m in results:
        if m.note:
            print(f"note: {m.scenario}: {m.note}")
    print()
    peak_pss = big_mem.peak_pss_mb or 0.0
    cpu_ratio = ratio(n_cold.cpu_ms_per_op or 0.0, top.cpu_ms_per_op or 0.0)
    checks = [
        (f"cold, {cores} workers / ceiling", ratio(n_cold.rate, top.rate), f">= {GOAL_CEILING}",
         ratio(n_cold.rate, top.rate) >= GOAL_CEILING),
        (f"CPU per request, {cores} workers / raw pyvips", cpu_ratio, f"<= {GOAL_CPU}",
         0 < cpu_ratio <= GOAL_CPU),
        (f"warm, {cores} workers / 1 worker", ratio(n_warm.rate, one_warm.rate),
         f">= {GOAL_WARM} (16 cores)", ratio(n_warm.rate, one_warm.rate) >= GOAL_WARM),
        (f"peak PSS of all processes, {RSS_CLIENTS} clients on 24 MP, MB", peak_pss,
         f"<= {GOAL_RSS_MB:.0f}", 0 < peak_pss <= GOAL_RSS_MB),
        (f"(strict) peak RSS added up, {RSS_CLIENTS} clients on 24 MP, MB", big_mem.hwm_mb,
         f"<= {GOAL_RSS_MB:.0f}", big_mem.hwm_mb <= GOAL_RSS_MB),
        (f"(info) cold, {cores} workers / ceiling w/ Loupe's encoder opts",
         ratio(n_cold.rate, top_matched.rate), "", None),
        ("(info) CPU per request / raw w/ Loupe's encoder opts",
         ratio(n_cold.cpu_ms_per_op or 0.0, top_matched.cpu_ms_per_op or 0.0), "", None),
        (f"no loss: cold {cores} workers / 1 worker", ratio(n_cold.rate, one_cold.rate),
         ">= 1", ratio(n_cold.rate, one_cold.rate) >= 1.0),
        (f"no loss: warm {cores} workers / 1 worker", ratio(n_warm.rate, one_warm.rate),
         ">= 1", ratio(n_warm.rate, one_warm.rate) >= 1.0),
    ]  # fmt: skip
    summary = [["check", "value", "goal", "result"]]
    for label, value, goal, ok in checks:
        verdict = "" if ok is None else "PASS" if ok else "FAIL"
        summary.append([label, f"{value:.2f}", goal, verdict])
    print(table(summary))
    if args.json:
        args.json.write_text(json.dumps({
            "cores": cores, "machine_cores": machine, "client": client,
            "results": [asdict(m) | {"rate": m.rate} for m in results],
            "memory": {"one": asdict(one_mem), "many": asdict(n_mem),
                       "idle": asdict(idle_mem), "peak_24mp": asdict(big_mem)},
            "checks": [{"check": c[0], "value": c[1], "goal": c[2], "ok": c[3]} for c in checks],
        }, indent=2))  # fmt: skip
    return 0


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def _raw_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw-worker", action="store_true")
    parser.add_argument("--start", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--matched", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    raw_worker(args.files, args.start, args.duration, args.matched)
    return 0


if __name__ == "__main__":
    sys.exit(_raw_main(sys.argv[1:]))
