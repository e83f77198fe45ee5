"""Loopback HTTP(S) listeners that stand in for origins (and for hosts that must never be
reached): each records every request it receives and answers through a plain function."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

Answer = tuple[int, dict[str, str], bytes]
Reply = Callable[[str, dict[str, str]], Answer]


def not_found(_path: str, _headers: dict[str, str]) -> Answer:
    return 404, {}, b"nothing here"


class Listener:
    """A threaded server on 127.0.0.1: ``reply(path, headers)`` answers each request."""

    def __init__(self, reply: Reply = not_found, tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.seen: list[str] = []
        self.lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                with listener.lock:
                    listener.seen.append(self.path)
                status, headers, body = listener.reply(self.path, dict(self.headers.items()))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        with self.lock:
            return list(self.seen)

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(folder: Path, host: str = "localhost") -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for ``host`` and the certificate file a client must trust
    (made with the openssl command; the test skips without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert
