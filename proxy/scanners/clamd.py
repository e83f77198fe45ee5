"""A clamd client speaking the INSTREAM protocol over its Unix or TCP socket.

A scan that cannot run (clamd down) refuses the source: an image that was not scanned
when scanning is configured is not served.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from proxy.errors import DamagedImage, Overloaded

CHUNK = 64 * 1024


class MalwareFound(DamagedImage):
    """The scanner found malware in the source."""


@dataclass(frozen=True)
class ClamdScanner:
    address: str  # "/run/clamav/clamd.ctl" or "tcp://127.0.0.1:3310"
    timeout_s: float = 10.0

    def _connect(self) -> socket.socket:
        if self.address.startswith("tcp://"):
            host, _, port = self.address[len("tcp://") :].rpartition(":")
            return socket.create_connection((host, int(port)), timeout=self.timeout_s)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        sock.connect(self.address)
        return sock

    def scan(self, data: bytes) -> None:
        """Return quietly when clean; raise ``MalwareFound`` or ``Overloaded``."""
        try:
            with self._connect() as sock:
                sock.sendall(b"zINSTREAM\0")
                for start in range(0, len(data), CHUNK):
                    piece = data[start : start + CHUNK]
                    sock.sendall(struct.pack("!L", len(piece)) + piece)
                sock.sendall(struct.pack("!L", 0))
                reply = b""
                while not reply.endswith(b"\0"):
                    more = sock.recv(4096)
                    if not more:
                        break
                    reply += more
        except OSError as exc:
            raise Overloaded(f"malware scanner unavailable: {exc}", retry_after_s=5) from None
        answer = reply.rstrip(b"\0").decode(errors="replace")
        if answer.endswith("FOUND"):
            signature = answer.removeprefix("stream:").removesuffix("FOUND").strip()
            raise MalwareFound(f"the source failed the malware scan ({signature})")
        if not answer.endswith("OK"):
            raise Overloaded(f"malware scanner answered {answer!r}", retry_after_s=5)
