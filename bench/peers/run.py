#!/usr/bin/env python3
"""Loupe side by side with thumbor and ipx: the same images, equivalent transforms, one run.

    python3 bench/peers/run.py --setup        # first time: installs the peers (.scratch/)
    python3 bench/peers/run.py                # 10 s per run, about 7 minutes
    python3 bench/peers/run.py --duration 3   # shorter, noisier
    python3 bench/peers/run.py --soak 600     # Loupe alone: RSS over 10 minutes

Each server in turn (one at a time, on 127.0.0.1) gets, per case (400x300 WebP crop, 600-wide
JPEG, 300x300 smart crop), wrk with 1 and 8 connections: cold (every URL new: no cache can
hit) then warm (the same URL again: Loupe's result cache, thumbor's file result storage,
ipx has none). Then a fresh server of each gets 8 connections of cold 24 MP renders while
its RSS is sampled. It prints req/s, p50/p99, peak RSS, the Loupe/peer ratios of this run
and the issue's goals as PASS/FAIL. See bench/peers/README.md for what each URL does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import pyvips

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
from serve_bench import (  # noqa: E402  (the helpers serve_bench.py measures Loupe with)
    children_cpu,
    cpu_seconds,
    default_threads,
    descendants,
    fmt,
    free_port,
    log,
    machine_busy_s,
    proc_status_kb,
    run_wrk,
    table,
)

SCRATCH = Path(os.environ.get("PEERS_SCRATCH", HERE / ".scratch"))
SHARED = Path(os.environ.get("LOUPE_SHARED_DIR", REPO.parent / "shared"))
ROTATE_LUA = BENCH / "rotate.lua"
PEERS_LUA = HERE / "rotate_peers.lua"
HOST = "127.0.0.1"
PEERS = ("loupe", "thumbor", "ipx")

GOAL_COLD = 1.0  # cold req/s, Loupe / peer
GOAL_WARM_THUMBOR = 1.5  # warm req/s, Loupe cache hits / thumbor result-storage hits
GOAL_SMART_THUMBOR = 5.0  # smart crop req/s (cold), Loupe / thumbor smart
GOAL_RSS_MB = 400.0  # peak RSS of one Loupe node, 8 clients on the 24 MP JPEG

# The images, made once under .scratch/images from the shared corpus (see MANIFEST.md there).
IMAGES = {
    "photo.jpg": "kodak/kodim03.png",  # 768x512 (0.39 MP) photo, as JPEG q90
    "people.jpg": "kodak/kodim12.png",  # 768x512, two people on a beach: the smart-crop subject
    "large.jpg": "generated/large_6000x4000_flower_upscaled.jpg",  # 24 MP JPEG, copied
}


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One transform, as each server spells it. ``{hex}``/``{num}`` take the unique value of
    a cold request (rotate_peers.lua); Loupe's cold URLs get ``&bg=RRGGBB`` appended."""

    key: str
    label: str
    image: str
    size: tuple[int, int]  # expected output
    mime: str
    loupe: str  # query
    thumbor: str  # path before the image, {cold} where the cold-only filter goes
    ipx: str  # modifiers, {cold} where the cold-only modifier goes

    def path(self, peer: str, cold: bool, image: str | None = None) -> str:
        image = image or self.image
        if peer == "loupe":
            return f"/img/{image}?{self.loupe}"
        if peer == "thumbor":
            return self.thumbor.format(cold=":max_age({num})" if cold else "") + image
        return "/" + self.ipx.format(cold=",b_{hex}" if cold else "") + "/" + image


CASES = (
    Case(
        key="webp",
        label="400x300 crop WebP q80",
        image="photo.jpg",
        size=(400, 300),
        mime="image/webp",
        loupe="w=400&h=300&fit=crop&crop=center&fm=webp&q=80",
        thumbor="/unsafe/400x300/filters:quality(80):format(webp){cold}/",
        ipx="s_400x300,fit_cover,position_centre,f_webp,q_80{cold}",
    ),
    Case(
        key="jpeg",
        label="600w JPEG q80",
        image="photo.jpg",
        size=(600, 400),
        mime="image/jpeg",
        loupe="w=600&fm=jpeg&q=80",
        thumbor="/unsafe/600x0/filters:quality(80):format(jpeg){cold}/",
        ipx="w_600,f_jpeg,q_80{cold}",
    ),
    Case(
        key="smart",
        label="300x300 smart crop JPEG q80",
        image="people.jpg",
        size=(300, 300),
        mime="image/jpeg",
        loupe="w=300&h=300&fit=crop&crop=smart&fm=jpeg&q=80",
        thumbor="/unsafe/300x300/smart/filters:quality(80):format(jpeg){cold}/",
        ipx="s_300x300,fit_cover,position_attention,f_jpeg,q_80{cold}",  # sharp attention
    ),
)
LARGE = "large.jpg"
LARGE_SIZES = {"webp": (400, 300), "jpeg": (600, 400)}


# --------------------------------------------------------------------------- results


@dataclass
class Measured:
    peer: str
    case: str
    mode: str  # cold | warm | 24MP
    conc: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    server_cores: float | None = None
    other_cores: float | None = None
    peak_rss_mb: float | None = None  # sampled: the process tree's VmRSS, added up
    peak_pss_mb: float | None = None  # sampled: the same in PSS (shared pages split)
    hwm_mb: float | None = None  # VmHWM added up over the tree (24 MP runs, fresh server)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms(self) -> float | None:
        """Server CPU (its whole process tree) per response."""
        if self.server_cores is None or not self.requests:
            return None
        return self.server_cores * self.seconds / self.requests * 1000


@dataclass
class PeerInfo:
    version: str = ""
    setup: str = ""  # how it ran
    first_smart_ms: float | None = None  # the first smart crop on a fresh server
    idle_rss_mb: float | None = None
    failed: str = ""
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- servers


def pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class Server:
    """One server in its own session (so its process group holds it and any worker it
    forks); ``stop`` ends the whole group, whatever happens."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        ready: Callable[[httpx.Response], bool],
        ready_path: str,
        port: int,
    ) -> None:
        self.name = name
        self.url = f"http://{HOST}:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.client = httpx.Client(base_url=self.url, timeout=120)
        self.process = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pgid = self.process.pid
        self._stopped = False
        try:
            self._wait_ready(ready, ready_path)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, ready: Callable[[httpx.Response], bool], path: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if ready(self.client.get(path, timeout=2)):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def pids(self) -> list[int]:
        return [self.pid, *descendants(self.pid)]

    def cpu(self) -> float:
        return float(sum(cpu_seconds(p) for p in self.pids()))

    def rss_kb(self, pids: Sequence[int] | None = None) -> int:
        return sum(proc_status_kb(p, "VmRSS") for p in (pids or self.pids()))

    def hwm_kb(self) -> int:
        return sum(proc_status_kb(p, "VmHWM") for p in self.pids())

    def settle(self, limit: float = 20.0) -> None:
        """Wait (up to ``limit`` s) until the server is idle: background work started by the
        priming requests (Loupe's analysis lane, thumbor's storage) must not run into the
        measurements."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            cpu0 = self.cpu()
            time.sleep(0.5)
            if self.cpu() - cpu0 < 0.025:
                return

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # a zombie leader still counts for killpg: look at the members' states
        for pid in [self.pid, *descendants(self.pid)]:
            with contextlib.suppress(OSError, IndexError):
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    return True
        return False

    def stop(self) -> None:
        """Idempotent: the exit stack calls it again for a server already stopped."""
        if self._stopped:
            return
        self._stopped = True
        self.client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.2)
            if not self._group_alive():
                break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._log.close()


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}


def start_loupe(args: argparse.Namespace, images: Path, data: Path) -> Server:
    """As bench/serve_bench.py starts it (same flags and environment), plus --models-dir."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    env = base_env()
    env.update(
        LOUPE_IMAGES_AVIF_EFFORT="2",  # as serve_bench: no AVIF calibration thread
        LOUPE_SERVER_WORKERS="1",  # one process, as the peers are measured
        LOUPE_SERVER_PROCESSING_THREADS=str(args.loupe_threads),
    )
    argv = [
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--root",
        str(images),
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--log-level",
        "info",
        "--models-dir",
        str(args.models_dir),
    ]
    return Server(
        "loupe",
        argv,
        env,
        REPO,
        data / "server.log",
        lambda r: r.status_code == 200,
        "/healthz",
        port,
    )


def thumbor_conf(images: Path, data: Path) -> str:
    return "\n".join(
        [
            "# written by bench/peers/run.py",
            "LOADER = 'thumbor.loaders.file_loader'",
            f"FILE_LOADER_ROOT_PATH = {str(images)!r}",
            "STORAGE = 'thumbor.storages.file_storage'  # sources and detector results",
            f"FILE_STORAGE_ROOT_PATH = {str(data / 'storage')!r}",
            "RESULT_STORAGE = 'thumbor.result_storages.file_storage'",
            f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {str(data / 'result')!r}",
            "RESULT_STORAGE_STORES_UNSAFE = True  # /unsafe/ URLs are stored too",
            "RESULT_STORAGE_EXPIRATION_SECONDS = 0  # never expire",
            "ENGINE = 'thumbor.engines.pil'",
            "DETECTORS = ['thumbor.detectors.face_detector', 'thumbor.detectors.feature_detector']",
            "QUALITY = 80",
            "AUTO_WEBP = False",
            "",
        ]
    )


def start_thumbor(args: argparse.Namespace, images: Path, data: Path) -> Server:
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "thumbor.conf"
    conf.write_text(thumbor_conf(images, data))
    argv = [
        str(SCRATCH / "thumbor-venv" / "bin" / "thumbor"),
        "-c",
        str(conf),
        "-i",
        HOST,
        "-p",
        str(port),
        "--processes",
        str(args.thumbor_processes),
        "-l",
        "warning",
    ]
    return Server(
        "thumbor",
        argv,
        base_env(),
        data,
        data / "server.log",
        lambda r: r.status_code == 200,
        "/healthcheck",
        port,
    )


def start_ipx(args: argparse.Namespace, images: Path, data: Path) -> Server:
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    ipx = SCRATCH / "ipx"
    argv = [
        "node",
        str(ipx / "node_modules" / "ipx" / "bin" / "ipx.mjs"),
        "serve",
        "--dir",
        str(images),
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    # any HTTP answer means it listens ("/" is a 400: no modifiers)
    return Server(
        "ipx", argv, base_env(), ipx, data / "server.log", lambda r: r.status_code > 0, "/", port
    )


STARTERS = {"loupe": start_loupe, "thumbor": start_thumbor, "ipx": start_ipx}


# --------------------------------------------------------------------------- setup


def peer_version(peer: str) -> str:
    if peer == "loupe":
        return f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} (pyvips)"
    if peer == "thumbor":
        py = SCRATCH / "thumbor-venv" / "bin" / "python"
        code = (
            "import thumbor, PIL, cv2; print(f'thumbor {thumbor.__version__}, Pillow "
            "{PIL.__version__}, opencv {cv2.__version__}')"
        )
        return subprocess.run(
            [str(py), "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
    modules = SCRATCH / "ipx" / "node_modules"
    ipx, sharp = (
        json.loads((modules / name / "package.json").read_text())["version"]
        for name in ("ipx", "sharp")
    )
    vips = subprocess.run(
        ["node", "-p", "require('sharp').versions.vips"],
        capture_output=True,
        text=True,
        check=True,
        cwd=SCRATCH / "ipx",
    ).stdout.strip()
    return f"ipx {ipx}, sharp {sharp}, libvips {vips}, node {node_version()}"


def node_version() -> str:
    return subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()


def missing_setup(peers: Sequence[str]) -> list[str]:
    missing = [] if shutil.which("wrk") else ["wrk"]
    if "thumbor" in peers and not (SCRATCH / "thumbor-venv" / "bin" / "thumbor").exists():
        missing.append("thumbor")
    if "ipx" in peers and not (SCRATCH / "ipx" / "node_modules" / "ipx").is_dir():
        missing.append("ipx")
    return missing


def prepare_images(data: Path) -> Path:
    folder = SCRATCH / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in IMAGES.items():
        target = folder / name
        if target.exists():
            continue
        if not (data / source).is_file():
            raise FileNotFoundError(f"{data / source} (set --data or LOUPE_SHARED_DIR)")
        tmp = target.with_suffix(".tmp.jpg")
        if source.endswith(".jpg"):
            shutil.copyfile(data / source, tmp)
        else:
            pyvips.Image.new_from_file(str(data / source)).jpegsave(str(tmp), Q=90)
        tmp.rename(target)
    return folder


# --------------------------------------------------------------------------- load


class Sampler:
    """Samples the server's process tree (VmRSS and PSS, added up) while a run goes on."""

    def __init__(self, server: Server, interval: float = 0.25) -> None:
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, int, int]] = []  # (t, rss kB, pss kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start, pids, refreshed = time.monotonic(), self.server.pids(), 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed > 1.0:  # forked workers come and go rarely
                pids, refreshed = self.server.pids(), now
            rss = self.server.rss_kb(pids)
            pss = sum(pss_kb(p) for p in pids)
            self.samples.append((now - start, rss, pss))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_rss_mb(self) -> float:
        return max((s[1] for s in self.samples), default=0) / 1024

    @property
    def peak_pss_mb(self) -> float:
        return max((s[2] for s in self.samples), default=0) / 1024


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def loupe_cache(server: Server) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith("loupe_cache_total{"):
            name, _, value = line.rpartition(" ")
            found[name.split('"')[1]] = float(value)
    return found


@dataclass
class Runner:
    workdir: Path
    duration: float
    salt: int = 0

    def wrk(
        self,
        server: Server,
        paths: Sequence[str],
        conc: int,
        unique: bool,
        duration: float | None = None,
    ) -> dict[str, float]:
        self.salt += 1_000_003  # every run its own range of unique values
        duration = duration or self.duration
        return run_wrk(
            server.url,
            paths,
            conc,
            duration,
            unique,
            self.salt,
            self.workdir,
            script=PEERS_LUA,
            extra_env={"ROTATE_LUA": str(ROTATE_LUA)},
            grace_s=120,
        )

    def run(
        self,
        server: Server,
        peer: str,
        case: str,
        mode: str,
        paths: Sequence[str],
        conc: int,
        *,
        unique: bool,
        sample: bool,
        result_dir: Path | None = None,
        duration: float | None = None,
    ) -> Measured:
        before = loupe_cache(server) if peer == "loupe" else {}
        files0 = count_files(result_dir) if result_dir else 0
        cpu0, busy0, kids0, own0 = (
            server.cpu(),
            machine_busy_s(),
            children_cpu(),
            time.process_time(),
        )
        with contextlib.ExitStack() as stack:
            sampler = stack.enter_context(Sampler(server)) if sample else None
            data = self.wrk(server, paths, conc, unique, duration)
        seconds = data["duration_us"] / 1e6
        server_cpu = server.cpu() - cpu0
        mine = (children_cpu() - kids0) + (time.process_time() - own0)  # wrk + this script
        other = max(0.0, machine_busy_s() - busy0 - server_cpu - mine) / max(seconds, 1e-9)
        kinds = {k: int(data[k]) for k in ("connect", "read", "write", "status", "timeout")}
        errors = sum(kinds.values())
        m = Measured(
            peer,
            case,
            mode,
            conc,
            int(data["requests"]),
            seconds,
            data["p50_us"] / 1000,
            data["p99_us"] / 1000,
            errors,
            server_cpu / max(seconds, 1e-9),
            other,
        )
        if sampler:
            m.peak_rss_mb, m.peak_pss_mb = sampler.peak_rss_mb, sampler.peak_pss_mb
        server.settle(limit=10)  # requests in flight when wrk stopped land before the checks
        if peer == "loupe":
            after = loupe_cache(server)
            delta = {
                k: int(after.get(k, 0) - before.get(k, 0)) for k in ("hit", "miss", "coalesced")
            }
            if unique and (delta["hit"] or delta["coalesced"]):
                m.note = f"NOT ALL MISSES: cache {delta}"
            elif not unique and delta["miss"]:
                m.note = f"NOT ALL HITS: cache {delta}"
        elif result_dir:
            grown = count_files(result_dir) - files0
            if unique and grown < 0.9 * m.requests:
                m.note = f"result storage grew by {grown} files for {m.requests} requests"
            elif not unique and grown:
                m.note = f"NOT ALL HITS: result storage grew by {grown} files"
        if errors:
            detail = ", ".join(f"{k} {v}" for k, v in kinds.items() if v)
            fault = f"{errors} wrk errors in {m.requests} requests ({detail})"
            m.note = "; ".join(filter(None, [m.note, fault]))
        if m.note:
            log(f"    note: {m.note}")
        return m


def check_output(response: httpx.Response, size: tuple[int, int], mime: str) -> str:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    got_mime = response.headers.get("content-type", "").split(";")[0]
    try:
        image = pyvips.Image.new_from_buffer(response.content, "")
        got = (image.width, image.height)
    except pyvips.Error as exc:
        return f"undecodable ({got_mime}): {exc}"
    if got != size or got_mime != mime:
        return f"{got[0]}x{got[1]} {got_mime}, expected {size[0]}x{size[1]} {mime}"
    return ""


def prime(server: Server, peer: str, cases: Sequence[Case], info: PeerInfo) -> None:
    """GET each warm URL once (fills the result caches, loads models and detector data) and
    check the output's size and type; the first smart crop's latency is kept apart."""
    for case in cases:
        path = case.path(peer, cold=False)
        started = time.perf_counter()
        response = server.client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if case.key == "smart":
            info.first_smart_ms = elapsed
            crop = response.headers.get("x-loupe-crop")
            if crop:
                info.notes.append(f"smart: X-Loupe-Crop {crop}")
        cold = cold_sample(case.path(peer, cold=True))
        cold_response = server.client.get(cold)
        for url, got in ((path, response), (cold, cold_response)):
            problem = check_output(got, case.size, case.mime)
            if problem:
                info.notes.append(f"{case.key} {url}: {problem}")
                log(f"    warning: {peer} {case.key}: {problem}")
        if cold_response.content != response.content:  # the unique parameter is a no-op
            info.notes.append(
                f"{case.key}: the cold URL's output differs from the warm one's "
                f"({len(cold_response.content)} vs {len(response.content)} bytes)"
            )


def cold_sample(path: str) -> str:
    """A cold URL as rotate_peers.lua makes them, with one unique value (never one of a run's:
    their values start at the first salt, 1000003)."""
    if "{hex}" in path or "{num}" in path:
        return path.replace("{hex}", "000001").replace("{num}", "2")
    return path + "&bg=000001"


def check_large(server: Server, peer: str, info: PeerInfo) -> None:
    """The 24 MP outputs' size and type (after the RSS run, so it does not touch it)."""
    for case in CASES:
        if case.key in LARGE_SIZES:
            response = server.client.get(case.path(peer, cold=False, image=LARGE))
            problem = check_output(response, LARGE_SIZES[case.key], case.mime)
            if problem:
                info.notes.append(f"24MP {case.key}: {problem}")


# --------------------------------------------------------------------------- the run


def bench_peer(
    peer: str,
    args: argparse.Namespace,
    images: Path,
    workdir: Path,
    runner: Runner,
    cases: Sequence[Case],
    info: PeerInfo,
    stack: contextlib.ExitStack,
) -> list[Measured]:
    results: list[Measured] = []
    data = workdir / f"{peer}-main"
    log(f"  {peer}: starting ...")
    server = STARTERS[peer](args, images, data)
    stack.callback(server.stop)
    info.idle_rss_mb = server.rss_kb() / 1024
    log(
        f"  {peer}: pid {server.pid} on {server.url}, {len(server.pids())} process(es), "
        f"RSS {info.idle_rss_mb:.0f} MB"
    )
    prime(server, peer, cases, info)
    server.settle()
    result_dir = data / "result" if peer == "thumbor" else None
    for mode, unique in (("cold", True), ("warm", False)):
        for case in cases:
            for conc in (1, 8):
                log(f"  {peer} {mode} {case.key} c={conc} ...")
                results.append(
                    runner.run(
                        server,
                        peer,
                        case.key,
                        mode,
                        [case.path(peer, cold=unique)],
                        conc,
                        unique=unique,
                        sample=conc == 8,
                        result_dir=result_dir,
                    )
                )
    server.stop()
    if args.no_rss:
        return results

    log(f"  {peer}: fresh server, 8 clients, cold 24 MP renders (RSS) ...")
    data = workdir / f"{peer}-rss"
    fresh = STARTERS[peer](args, images, data)
    stack.callback(fresh.stop)
    paths = [c.path(peer, cold=True, image=LARGE) for c in CASES if c.key in LARGE_SIZES]
    m = runner.run(
        fresh,
        peer,
        "webp+jpeg",
        "24MP",
        paths,
        8,
        unique=True,
        sample=True,
        result_dir=data / "result" if peer == "thumbor" else None,
    )
    m.hwm_mb = fresh.hwm_kb() / 1024
    results.append(m)
    check_large(fresh, peer, info)
    fresh.stop()
    return results


def report(
    results: Sequence[Measured],
    infos: dict[str, PeerInfo],
    peers: Sequence[str],
    cases: Sequence[Case],
    args: argparse.Namespace,
    elapsed: float,
) -> None:
    def find(peer: str, case: str, mode: str, conc: int) -> Measured | None:
        key = (peer, case, mode, conc)
        return next((m for m in results if (m.peer, m.case, m.mode, m.conc) == key), None)

    def rate(peer: str, case: str, mode: str, conc: int) -> float | None:
        m = find(peer, case, mode, conc)
        return m.rate if m and m.requests else None

    def cpu(peer: str, case: str, mode: str, conc: int) -> float | None:
        m = find(peer, case, mode, conc)
        return m.cpu_ms if m else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    others = [p for p in peers if p != "loupe"] if "loupe" in peers else []
    print()
    print(
        f"Loupe vs thumbor vs ipx: {os.cpu_count()} cores (wrk shares them), "
        f"{args.duration:g} s per run, run took {elapsed:.0f} s; one server at a time on {HOST}"
    )
    for peer in peers:
        info = infos[peer]
        failed = f"; FAILED: {info.failed}" if info.failed else ""
        print(f"  {peer}: {info.version}; {info.setup}{failed}")
    print()
    keys = ["case", "mode", "conc"]
    thr = [[*keys, *(f"{p} req/s" for p in peers), *(f"loupe/{p}" for p in others)]]
    eff = [[*keys, *(f"{p} cpu ms/req" for p in peers), *(f"{p}/loupe" for p in others)]]
    lat = [[*keys, *(f"{p} p50/p99 ms" for p in peers), *(f"{p} peak RSS MB" for p in peers)]]
    for mode in ("cold", "warm"):
        for case in cases:
            for conc in (1, 8):
                at = (case.key, mode, conc)
                first = [case.key, mode, str(conc)]
                rates = {p: rate(p, *at) for p in peers}
                thr.append([*first, *(fmt(rates[p]) for p in peers)])
                thr[-1] += [fmt(ratio(rates["loupe"], rates[p]), 2) for p in others]
                cpus = {p: cpu(p, *at) for p in peers}
                eff.append([*first, *(fmt(cpus[p]) for p in peers)])
                eff[-1] += [fmt(ratio(cpus[p], cpus["loupe"]), 2) for p in others]
                found = [find(p, *at) for p in peers]
                lat.append(
                    [*first, *(f"{m.p50_ms:.1f}/{m.p99_ms:.1f}" if m else "-" for m in found)]
                )
                lat[-1] += [fmt(m.peak_rss_mb, 0) if m else "-" for m in found]
    print("throughput (req/s) and Loupe/peer ratios, same run:")
    print(table(thr))
    print()
    print(
        "server CPU per request (the server's process tree; steadier than req/s on a busy "
        "machine) and peer/Loupe ratios (> 1: Loupe spends less):"
    )
    print(table(eff))
    print()
    print("latency (wrk, queueing included) and peak RSS (8-client runs, process tree summed):")
    print(table(lat))
    print()
    big = [["24 MP, 8 clients cold (fresh server)", "req/s", "p50/p99 ms", "cpu ms/req"]]
    big[0] += ["peak RSS MB", "peak PSS MB", "VmHWM MB", "errors"]
    for peer in peers:
        m = find(peer, "webp+jpeg", "24MP", 8)
        if m:
            big.append([peer, fmt(m.rate), f"{m.p50_ms:.0f}/{m.p99_ms:.0f}", fmt(m.cpu_ms)])
            big[-1] += [fmt(m.peak_rss_mb, 0), fmt(m.peak_pss_mb, 0), fmt(m.hwm_mb, 0)]
            big[-1].append(str(m.errors))
    if len(big) > 1:
        print(table(big))
        print(
            "(RSS/PSS: sampled every 0.25 s, summed over the process tree; VmHWM: each "
            "process's own peak, summed; thumbor's forks share pages, so its RSS sum "
            "overcounts and PSS is the fairer figure)"
        )
        print()
    smart = [f"{p}: {fmt(infos[p].first_smart_ms, 0)} ms" for p in peers]
    if "smart" in [c.key for c in cases]:
        print(
            "first smart crop on a fresh server (models / detectors loaded, analysis run; "
            "not in the runs above): " + ", ".join(smart)
        )
    for m in results:
        if m.note:
            print(f"note: {m.peer} {m.mode} {m.case} c={m.conc}: {m.note}")
    for peer in peers:
        for note in infos[peer].notes:
            print(f"note: {peer}: {note}")
    busy = [m for m in results if (m.other_cores or 0) > 0.25]
    if busy:
        worst = max(m.other_cores or 0 for m in busy)
        print(
            f"warning: other processes used up to {worst:.2f} cores during {len(busy)} of "
            f"{len(results)} runs: req/s figures are low and their ratios noisy (the CPU "
            "ratios much less so); rerun on an idle machine for figures to compare"
        )
    print()

    # (label, req/s ratio or MB, CPU-based ratio, goal, verdict on the first value)
    checks: list[tuple[str, float | None, float | None, str, bool | None]] = []

    def check(label: str, peer: str, case: str, mode: str, conc: int, goal: float) -> None:
        value = cpu_based = None
        if peer in peers and "loupe" in peers:
            value = ratio(rate("loupe", case, mode, conc), rate(peer, case, mode, conc))
            cpu_based = ratio(cpu(peer, case, mode, conc), cpu("loupe", case, mode, conc))
        ok = None if value is None else value >= goal
        checks.append((label, value, cpu_based, f">= {goal:g}", ok))

    keys_run = [c.key for c in cases]
    for peer in ("ipx", "thumbor"):
        for key in ("webp", "jpeg"):
            if key in keys_run:
                for conc in (1, 8):
                    label = f"cold {key} c={conc}: loupe / {peer}"
                    check(label, peer, key, "cold", conc, GOAL_COLD)
    for key in keys_run:
        for conc in (1, 8):
            label = f"warm {key} c={conc}: loupe hits / thumbor result-storage hits"
            check(label, "thumbor", key, "warm", conc, GOAL_WARM_THUMBOR)
    if "smart" in keys_run:
        for conc in (1, 8):
            label = f"smart crop cold c={conc}: loupe / thumbor smart"
            check(label, "thumbor", "smart", "cold", conc, GOAL_SMART_THUMBOR)
    rss = find("loupe", "webp+jpeg", "24MP", 8)
    peak = max(rss.hwm_mb or 0, rss.peak_rss_mb or 0) if rss else None
    checks.append((
        "peak RSS of one Loupe node, 8 clients on the 24 MP JPEG (MB)", peak, None,
        f"< {GOAL_RSS_MB:g}", None if peak is None else peak < GOAL_RSS_MB,
    ))  # fmt: skip
    rows = [["goal check", "value", "cpu-based", "goal", "result"]]
    for label, value, cpu_based, goal, ok in checks:
        verdict = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        rows.append([label, fmt(value, 2), fmt(cpu_based, 2), goal, verdict])
    print(table(rows))
    print(
        "(value: the req/s ratio the goal is judged on; cpu-based: the peer's server CPU per "
        "request over Loupe's: roughly the req/s ratio on an idle machine, where both are "
        "CPU-bound)"
    )
    if "smart" in keys_run and "ipx" in peers:
        print(
            "(ipx's smart-crop stand-in is sharp's attention strategy, not a smart crop: "
            "the loupe/ipx smart ratios are for information only)"
        )
    print()
    for label, _value, _cpu, _goal, ok in checks:
        print(f"{'SKIP' if ok is None else ('PASS' if ok else 'FAIL')}: {label}")
    decided = [ok for *_, ok in checks if ok is not None]
    overall = ("PASS" if all(decided) else "FAIL") if decided else "no goal could be checked"
    skipped = " (some checks skipped)" if decided and len(decided) < len(checks) else ""
    print(f"overall: {overall}{skipped}")


def peer_setup_text(peer: str, args: argparse.Namespace) -> str:
    if peer == "loupe":
        return (
            f"loupe serve, {args.loupe_threads} render threads, default caches (memory + "
            f"disk), --models-dir {args.models_dir}"
        )
    if peer == "thumbor":
        return (
            f"{args.thumbor_processes} process(es) (--processes), PIL engine, file "
            "loader + file storage + file result storage, face+feature detectors"
        )
    return (
        "ipx serve (listhen), 1 node process, sharp defaults (libuv pool "
        f"{os.environ.get('UV_THREADPOOL_SIZE', '4')}), no result cache"
    )


def benchmark(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> int:
    peers = args.only
    cases = [c for c in CASES if c.key in args.cases]
    images = prepare_images(args.data)
    runner = Runner(workdir, args.duration)
    infos = {p: PeerInfo(setup=peer_setup_text(p, args)) for p in peers}
    busy0 = machine_busy_s()
    time.sleep(1.0)
    log(
        f"peers: {os.cpu_count()} cores; other processes are using "
        f"{machine_busy_s() - busy0:.2f} cores now; peers: {', '.join(peers)}; "
        f"cases: {', '.join(c.key for c in cases)}; {args.duration:g} s per run"
    )
    started = time.monotonic()
    results: list[Measured] = []
    for peer in peers:
        try:
            infos[peer].version = peer_version(peer)
            results += bench_peer(peer, args, images, workdir, runner, cases, infos[peer], stack)
        except (RuntimeError, subprocess.CalledProcessError, httpx.HTTPError) as exc:
            infos[peer].failed = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            log(f"  {peer} FAILED: {exc}")
    report(results, infos, peers, cases, args, time.monotonic() - started)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cores": os.cpu_count(),
                    "duration": args.duration,
                    "peers": peers,
                    "infos": {p: asdict(i) for p, i in infos.items()},
                    "results": [asdict(m) | {"rate": m.rate, "cpu_ms": m.cpu_ms} for m in results],
                },
                indent=2,
            )
        )
    return 0


def soak(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> int:
    """Loupe alone, 8 clients of cold 24 MP renders for ``--soak`` seconds: RSS over time."""
    images = prepare_images(args.data)
    seconds = args.soak
    log(f"peers: soak, loupe, 8 clients, cold 24 MP renders for {seconds:g} s ...")
    server = start_loupe(args, images, workdir / "loupe-soak")
    stack.callback(server.stop)
    idle = server.rss_kb() / 1024
    runner = Runner(workdir, seconds)
    paths = [c.path("loupe", cold=True, image=LARGE) for c in CASES if c.key in LARGE_SIZES]
    sampler = Sampler(server, interval=1.0)
    with sampler:
        m = runner.run(
            server,
            "loupe",
            "webp+jpeg",
            "soak",
            paths,
            8,
            unique=True,
            sample=False,
            duration=seconds,
        )
    hwm = server.hwm_kb() / 1024
    samples = [s for s in sampler.samples if s[0] <= m.seconds + 0.5]

    def at(t: float) -> tuple[float, float]:
        s = min(samples, key=lambda s: abs(s[0] - t))
        return s[0], s[1] / 1024

    start_t = min(5.0, seconds * 0.1)
    points = [("start", *at(start_t)), ("middle", *at(seconds / 2)), ("end", *at(m.seconds))]
    print()
    print(
        f"Loupe RSS soak: 8 clients, cold 24 MP renders (WebP 400x300 + JPEG 600w), "
        f"{m.seconds:.0f} s, {m.rate:.1f} req/s, p50/p99 {m.p50_ms:.0f}/{m.p99_ms:.0f} ms, "
        f"{m.errors} errors"
    )
    rows = [["point", "t s", "RSS MB"], ["idle (before load)", "-", f"{idle:.0f}"]]
    rows += [[name, f"{t:.0f}", f"{mb:.0f}"] for name, t, mb in points]
    rows.append(["peak sampled (1 s)", "-", f"{sampler.peak_rss_mb:.0f}"])
    rows.append(["VmHWM", "-", f"{hwm:.0f}"])
    print(table(rows))
    growth = points[2][2] - points[1][2]
    print(f"growth middle -> end: {growth:+.0f} MB")
    if m.note:
        print(f"note: {m.note}")
    if (m.other_cores or 0) > 0.25:
        print(f"warning: other processes used {m.other_cores:.2f} cores during the soak")
    peak = max(hwm, sampler.peak_rss_mb)
    print(
        f"{'PASS' if peak < GOAL_RSS_MB else 'FAIL'}: peak RSS of one Loupe node "
        f"{peak:.0f} MB over {m.seconds:.0f} s (goal < {GOAL_RSS_MB:g} MB)"
    )
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--setup",
        action="store_true",
        help="run bench/peers/setup.sh first if a peer or wrk is missing",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument(
        "--only", default=",".join(PEERS), help="comma-separated: loupe,thumbor,ipx"
    )
    parser.add_argument(
        "--cases", default=",".join(c.key for c in CASES), help="comma-separated: webp,jpeg,smart"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the 24 MP RSS runs")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="instead: Loupe alone, 8 clients on the 24 MP JPEG, RSS over time",
    )
    parser.add_argument("--data", type=Path, default=SHARED / "data", help="shared image corpus")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=SHARED / "models",
        help="Loupe's --models-dir (smart crop models)",
    )
    parser.add_argument(
        "--loupe-threads",
        type=int,
        default=default_threads(),
        help="LOUPE_SERVER_PROCESSING_THREADS (default: Loupe's default)",
    )
    parser.add_argument(
        "--thumbor-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="thumbor --processes (default: one per core)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args(argv)
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [p for p in args.only if p not in PEERS] + [
        c for c in args.cases if c not in {k.key for k in CASES}
    ]
    if bad or not args.only or not args.cases:
        parser.error(f"unknown or empty --only/--cases: {', '.join(bad)}")
    args.only = [p for p in PEERS if p in args.only]  # always Loupe first
    if args.soak is not None:
        args.only = ["loupe"]
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def scratch_dir(keep: bool) -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="loupe-peers-"))
    try:
        yield workdir
    finally:
        if keep:
            log(f"peers: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    missing = missing_setup(args.only)
    if missing and args.setup:
        subprocess.run(["bash", str(HERE / "setup.sh")], check=False)
        missing = missing_setup(args.only)
    if missing:
        log(
            f"peers: missing {', '.join(missing)}: run python3 bench/peers/run.py --setup "
            "(or bash bench/peers/setup.sh)"
        )
        return 2
    if not args.models_dir.is_dir():
        log(f"peers: no models at {args.models_dir}: Loupe's smart crop would fall back")
        return 2
    try:
        with scratch_dir(args.keep) as workdir, contextlib.ExitStack() as stack:
            # the stack stops every server it started, on errors and Ctrl-C included
            if args.soak is not None:
                return soak(args, workdir, stack)
            return benchmark(args, workdir, stack)
    except KeyboardInterrupt:
        log("peers: interrupted; servers stopped")
        return 130
    except FileNotFoundError as exc:
        log(f"peers: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
