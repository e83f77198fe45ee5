"""A loopback stand-in for a CDN's purge API: records every request (method, path, headers,
body) and answers 200, or 503 while it is ``down``."""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeCdn:
    def __init__(self, answer: bytes = b'{"success": true}') -> None:
        self.down = False
        self.answer = answer
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                status = 503 if fake.down else 200
                if not fake.down:
                    with fake._lock:
                        fake._seen.append(
                            Seen(self.command, self.path, dict(self.headers.items()), body)
                        )
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(fake.answer)))
                    self.end_headers()
                    self.wfile.write(fake.answer)

            do_POST = do_PURGE = do_BAN = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def tags(self) -> set[str]:
        """Every tag a webhook call carried so far."""
        return {tag for call in self.seen() for tag in call.json()["tags"]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
