"""Serve the app with hypercorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from proxy.config import Config
from proxy.server.app import create_app


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


async def _serve(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(config)
    await serve(app, hypercorn_config(config), shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def run(config: Config) -> None:
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise _port_in_use(config, exc) from None
        raise
