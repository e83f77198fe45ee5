"""Several serving processes on one port (``server.workers``).

The parent binds one listening socket per worker on the port (``SO_REUSEPORT``: the kernel
spreads connections over them) and forks the workers; each runs hypercorn on its inherited
socket. The parent only supervises: a worker that dies is
restarted (at once after a long life, with doubling backoff when it keeps dying young), and
SIGTERM/SIGINT drain and stop them all.

The parent imports the code before forking, so those pages are shared copy-on-write, but it
builds nothing: every worker creates its own app after the fork (models, onnxruntime
sessions, libvips, thread pools), because threads do not survive a fork and a session's
thread pool copied without its threads deadlocks.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config import Config

log = logging.getLogger("loupe.workers")

# What one worker may come to hold: a fresh worker's peak under 8 clients on a 24 MP JPEG
# was 406-414 MB (proxy.memory), plus its share of the result cache's memory tier. The
# default worker count keeps N x this within the memory available at start.
PER_WORKER_BYTES = 512 * 1024 * 1024
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
YOUNG_S = 10.0  # a worker that dies younger than this is restarted with backoff
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 15.0  # hypercorn's graceful_timeout (10 s) and a margin, then SIGKILL


@dataclass(frozen=True)
class Machine:
    """The cores this process may run on and the memory it may use, as seen at start."""

    cores: int
    memory_bytes: int | None


def _cgroup_cores() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _cgroup_memory() -> int | None:
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return None if text == "max" else int(text)


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def this_machine() -> Machine:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cores()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    limits = [m for m in (_available_memory(), _cgroup_memory()) if m is not None]
    return Machine(max(1, cores), min(limits) if limits else None)


def default_workers(machine: Machine) -> int:
    """One per core, no more than the memory holds at :data:`PER_WORKER_BYTES` each."""
    if machine.memory_bytes is None:
        return machine.cores
    return max(1, min(machine.cores, machine.memory_bytes // PER_WORKER_BYTES))


def settle(config: Config, machine: Machine, environ: Mapping[str, str]) -> Config:
    """The configuration with every per-worker default decided for this machine.

    - ``server.workers``: :func:`default_workers` when unset.
    - ``server.processing_threads`` (per worker): max(2, cores / workers) when unset. With
      one worker per core that is 2: one thread renders while the other's request is read,
      encoded or answered, and a worker handed more connections than its share still keeps
      its core busy.
    - ``server.vips_concurrency``: 1 when several workers serve and neither it nor
      ``VIPS_CONCURRENCY`` is set. The workers and their threads are the parallelism; a
      libvips pool of one thread per core in every render thread of every worker
      oversubscribed 16 cores (230-353 renders/s where 16 single-threaded processes did
      1,080).
    - ``cache.memory_bytes`` is the node's: each worker keeps its share (at least one item).
    """
    server = config.server
    workers = server.workers or default_workers(machine)
    threads = server.processing_threads or max(2, math.ceil(machine.cores / workers))
    vips = server.vips_concurrency
    if vips is None and workers > 1 and not environ.get("VIPS_CONCURRENCY"):
        vips = 1
    cache = config.cache
    if workers > 1 and cache.memory_bytes > 0:
        share = max(cache.memory_max_item_bytes, cache.memory_bytes // workers)
        cache = cache.model_copy(update={"memory_bytes": share})
    server = server.model_copy(
        update={"workers": workers, "processing_threads": threads, "vips_concurrency": vips}
    )
    return config.model_copy(update={"server": server, "cache": cache})


@dataclass(frozen=True)
class WorkerInfo:
    """Who this process is among the node's serving processes (``/readyz`` says it)."""

    index: int
    count: int
    run_dir: Path | None = None  # this run's shared files (:func:`prepare_run_dir`)
    boot_fd: int | None = None  # written once the app is built: the worker started

    def booted(self) -> None:
        """Tell the supervisor this worker started (its app is built)."""
        if self.boot_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.boot_fd, b"1")
                os.close(self.boot_fd)

    @property
    def metrics_dir(self) -> Path | None:
        return self.run_dir / "metrics" if self.run_dir is not None else None


def prepare_run_dir(environ: MutableMapping[str, str]) -> Path:
    """A fresh folder for this run's workers: prometheus_client's multiprocess files (named
    in the environment before prometheus_client is first imported: it picks its value class
    at import) and the purge journal. Removed when the supervisor stops."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess folder")
    _remove_orphaned_run_dirs(Path(tempfile.gettempdir()))
    folder = Path(tempfile.mkdtemp(prefix=f"loupe-run-{os.getpid()}-"))
    (folder / "metrics").mkdir()
    environ[MULTIPROC_ENV] = str(folder / "metrics")
    return folder


def _remove_orphaned_run_dirs(temp: Path) -> None:
    """Run folders of supervisors that were killed (SIGKILL leaves no time to clean up)."""
    for folder in temp.glob("loupe-run-*-*"):
        try:
            pid = int(folder.name.split("-")[2])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue  # alive, another user's


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own (find_library forks)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    boot_pipe: int | None = None  # read end: the worker writes once it started
    booted: bool = False  # this life
    ever_booted: bool = False  # any life


@dataclass
class Supervisor:
    """Forks ``count`` workers running ``serve(info)`` and keeps them running until told
    to stop. ``on_exit(pid)`` runs for each worker that ended (metrics bookkeeping)."""

    count: int
    serve: Callable[[WorkerInfo], int]
    run_dir: Path | None = None
    on_exit: Callable[[int], None] | None = None
    on_stop: Callable[[], None] | None = None  # first thing when stopping (close the sockets)
    slots: list[_Slot] = field(default_factory=list)
    stopping: bool = False
    failed: _Slot | None = None  # a worker that never started: the node cannot serve
    _asked: int | None = field(default=None, init=False, repr=False)  # SIGTERM or SIGINT
    _hurry: bool = field(default=False, init=False, repr=False)  # asked twice: kill now
    _wake_r: int = field(default=-1, init=False, repr=False)  # signal.set_wakeup_fd's pipe
    _wake_w: int = field(default=-1, init=False, repr=False)

    SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)

    def run(self) -> int:
        """0 after SIGTERM/SIGINT; 1 when a worker died before it ever started (a broken
        configuration, an unreachable store): then there is nothing to supervise.

        Signals are noted by Python handlers (they run in the main thread whichever thread
        the kernel chose; a blocked mask would not cover the threads numpy and onnxruntime
        started at import) and wake the loop through ``signal.set_wakeup_fd``."""
        self.slots = [_Slot(i) for i in range(self.count)]
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        previous_fd = signal.set_wakeup_fd(self._wake_w)
        previous = {signum: signal.signal(signum, self._note) for signum in self.SIGNALS}
        try:
            for slot in self.slots:
                self._spawn(slot)
            while True:
                self._sleep(self._wait_s())
                if self._asked is not None:
                    name = signal.Signals(self._asked).name
                    log.info("stopping %d workers (%s)", self.count, name)
                    return self._stop()
                self._reap()
                if self.failed is not None:
                    log.error("worker %d could not start: stopping", self.failed.index)
                    self._stop()
                    return 1
                now = time.monotonic()
                for slot in self.slots:
                    if slot.restart_at is not None and slot.restart_at <= now:
                        self._spawn(slot)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous_fd)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _note(self, signum: int, _frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if self._asked is not None and self.stopping:
                self._hurry = True  # a second one while stopping: kill at once
            self._asked = signum

    def _sleep(self, seconds: float) -> None:
        """Until a signal arrives or ``seconds`` pass."""
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    def pids(self) -> list[int]:
        return [slot.pid for slot in self.slots if slot.pid]

    def _wait_s(self) -> float:
        due = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        if not due:
            return 1.0
        return max(0.0, min(1.0, min(due) - time.monotonic()))

    def _spawn(self, slot: _Slot) -> None:
        readable, writable = os.pipe()
        info = WorkerInfo(slot.index, self.count, self.run_dir, writable)
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's code
            code = 1
            try:
                os.close(readable)
                for other in self.slots:
                    if other.boot_pipe is not None:
                        os.close(other.boot_pipe)
                signal.set_wakeup_fd(-1)  # asyncio sets its own
                os.close(self._wake_r)
                os.close(self._wake_w)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                _die_with_parent()
                if os.getppid() == parent:
                    code = self.serve(info)
            except BaseException:
                log.exception("worker %d failed", slot.index)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(writable)
        os.set_blocking(readable, False)
        slot.pid, slot.started, slot.restart_at = pid, time.monotonic(), None
        slot.boot_pipe, slot.booted = readable, False
        log.info("worker %d started (pid %d)", slot.index, pid)

    def _check_boot(self, slot: _Slot) -> None:
        if slot.boot_pipe is None:
            return
        try:
            said = os.read(slot.boot_pipe, 1)
        except BlockingIOError:
            return
        if said:
            slot.booted = slot.ever_booted = True
        os.close(slot.boot_pipe)  # its answer, or its end closed without one
        slot.boot_pipe = None

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.on_exit is not None:
                self.on_exit(pid)
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            slot.pid = 0
            self._check_boot(slot)
            if self.stopping:
                continue
            if not slot.ever_booted:
                self.failed = slot
                continue
            lived = time.monotonic() - slot.started
            slot.failures = slot.failures + 1 if lived < YOUNG_S else 0
            delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (slot.failures - 1)) if slot.failures else 0.0
            slot.restart_at = time.monotonic() + delay
            log.warning(
                "worker %d (pid %d) %s after %.1f s; restarting in %.1f s",
                slot.index,
                pid,
                _describe(status),
                lived,
                delay,
            )

    def _stop(self) -> int:
        """SIGTERM every worker (each drains its connections), SIGKILL what is left after
        :data:`STOP_GRACE_S`; a second SIGTERM/SIGINT kills at once."""
        self.stopping = True
        if self.on_stop is not None:
            self.on_stop()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.pids() and time.monotonic() < deadline and not self._hurry:
            self._reap()
            if self.pids():
                self._sleep(0.2)
        for pid in self.pids():
            log.warning("worker pid %d did not stop in time: killed", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self.pids():
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if self.on_exit is not None:
                self.on_exit(pid)
            for slot in self.slots:
                if slot.pid == pid:
                    slot.pid = 0
        return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def remove_run_dir(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
