"""Serve the app with hypercorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from typing import Any

import hypercorn.protocol
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.protocol.h11 import H11Protocol

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


def run(config: Config) -> None:
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise _port_in_use(config, exc) from None
        raise
