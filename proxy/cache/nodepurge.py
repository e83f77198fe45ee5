"""Purges told to the other serving processes of this node when there is no Redis
(``server.workers`` > 1): the worker that purged appends the source path to a journal file
of this run; every worker reads what is new in it (one ``stat`` when nothing is) before it
looks in its own memory tier and memos. A purge answered by one worker is therefore seen
by every request that any worker starts after it.

Appends of one short line with ``O_APPEND`` land whole; a reader takes complete lines only.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class PurgeJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        self._read = path.stat().st_size  # a new worker's memory holds nothing older
        self._lock = threading.Lock()

    def record(self, tag: str) -> None:
        """Tell the other workers (this one reads its own line back: harmless)."""
        line = (json.dumps(tag) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def news(self) -> list[str]:
        """The paths purged since the last call (usually none: one ``stat``)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size <= self._read:
            return []
        with self._lock:
            if size <= self._read:  # another thread read it meanwhile
                return []
            with self.path.open("rb") as handle:
                handle.seek(self._read)
                chunk = handle.read(size - self._read)
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._read += len(complete)
        tags = []
        for line in complete.splitlines():
            try:
                tag = json.loads(line)
            except ValueError:
                continue
            if isinstance(tag, str):
                tags.append(tag)
        return tags
