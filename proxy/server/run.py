"""Serve the app with hypercorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from pathlib import Path
from typing import Any

import hypercorn.protocol
from hypercorn.asyncio import serve
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.utils import wrap_app

from proxy.config import Config
from proxy.server.app import create_app
from proxy.server.workers import Supervisor, WorkerInfo


class PortInUse(Exception):
    """The address to bind is taken: one line for the operator, no traceback."""


def hypercorn_config(config: Config) -> HypercornConfig:
    server = HypercornConfig()
    host = config.server.host
    server.bind = [
        f"[{host}]:{config.server.port}" if ":" in host else f"{host}:{config.server.port}"
    ]
    server.accesslog = None  # Loupe writes its own access line (proxy.server.logs)
    # Hypercorn's own handler on "-" plus propagation to ours printed every line twice.
    server.errorlog = logging.getLogger("hypercorn.error")
    server.keep_alive_timeout = 75  # longer than typical CDN idle timeouts
    server.graceful_timeout = 10
    return server


def _port_in_use(config: Config, exc: OSError) -> PortInUse:
    where = f"{config.server.host}:{config.server.port}"
    if exc.errno == errno.EADDRINUSE:
        return PortInUse(f"port {config.server.port} is already in use ({where})")
    return PortInUse(f"cannot listen on {where}: {exc.strerror or exc}")


def check_port(config: Config) -> None:
    """Bind the configured address the way hypercorn will, and let it go: a taken port is
    reported before the models load and before anything says it is serving."""
    try:
        sockets = hypercorn_config(config).create_sockets()
    except OSError as exc:
        raise _port_in_use(config, exc) from None
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets):
        sock.close()


class Http11Only(H11Protocol):
    """Plain TCP speaks HTTP/1.1 only: an ``Upgrade: h2c`` request is answered in HTTP/1.1
    and the prior-knowledge preface is not taken for HTTP/2. A front proxy that forwards the
    upgrade would otherwise hand the client an HTTP/2 tunnel it no longer inspects (h2c
    smuggling past its own rules). HTTP/2 over TLS (ALPN) is not affected."""

    async def _check_protocol(self, event: Any) -> None:
        return None


def allow_cleartext_http2(allowed: bool) -> None:
    """hypercorn has no switch for h2c: choose the HTTP/1.1 protocol its connections use."""
    if not hasattr(hypercorn.protocol, "H11Protocol"):  # a hypercorn that moved it: fail loud
        raise RuntimeError("cannot configure h2c on this hypercorn version")
    hypercorn.protocol.H11Protocol = H11Protocol if allowed else Http11Only


async def _serve(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    allow_cleartext_http2(config.server.h2c)
    app = create_app(config)
    await serve(app, hypercorn_config(config), shutdown_trigger=stop.wait)  # type: ignore[arg-type]


async def _serve_worker(config: Config, sockets: Sockets, info: WorkerInfo) -> None:
    """One of several workers: the app built here, after the fork, serving on the socket
    the supervisor bound for it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    allow_cleartext_http2(config.server.h2c)
    app = create_app(config, worker=info)
    info.booted()
    server = hypercorn_config(config)
    if info.index > 0:  # one "Running on" per node: the workers share the address
        server.errorlog = logging.getLogger("hypercorn.error.worker")
        server.errorlog.addFilter(lambda record: not record.getMessage().startswith("Running on"))
    wrapped = wrap_app(app, server.wsgi_max_body_size, None)  # type: ignore[arg-type]
    await worker_serve(wrapped, server, sockets=sockets, shutdown_trigger=stop.wait)


def run(config: Config, run_dir: Path | None = None) -> int:
    """Serve until SIGINT/SIGTERM: in this process with one worker (``server.workers``),
    else as the supervisor of that many (``proxy.server.workers``). The exit status."""
    workers = config.server.workers or 1
    try:
        if workers == 1:
            asyncio.run(_serve(config))
            return 0
        return _supervise(config, workers, run_dir)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise _port_in_use(config, exc) from None
        raise


def worker_sockets(config: Config, count: int, backlog: int) -> list[socket.socket]:
    """One listening socket per worker, all on the configured address (``SO_REUSEPORT``):
    the kernel spreads new connections over them by address hash. One shared socket let the
    first worker to wake accept a whole burst (32 connections of a load test, all to one
    worker). The supervisor keeps every socket open, so connections that arrive for a worker
    being restarted wait in its queue for the new one."""
    host, port = config.server.host, config.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as hypercorn: accepted
            # connections inherit it; without, a response's second write waited for the
            # client's delayed ACK (40 ms per request)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others join the one the first got
            sock.listen(backlog)  # connections queue while the workers start
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _supervise(config: Config, workers: int, run_dir: Path | None) -> int:
    listening = worker_sockets(config, workers, hypercorn_config(config).backlog)

    def serve_one(info: WorkerInfo) -> int:
        mine = listening[info.index]
        for sock in listening:
            if sock is not mine:
                sock.close()  # the other workers' queues are theirs
        sockets = Sockets(secure_sockets=[], insecure_sockets=[mine], quic_sockets=[])
        asyncio.run(_serve_worker(config, sockets, info))
        return 0

    def dead(pid: int) -> None:
        if run_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(run_dir / "metrics"))  # type: ignore[no-untyped-call]

    def close() -> None:
        for sock in listening:
            sock.close()

    supervisor = Supervisor(workers, serve_one, run_dir, dead, on_stop=close)
    try:
        return supervisor.run()
    finally:
        close()
