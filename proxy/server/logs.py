"""Logs an operator can use: one access line per request, text or JSON, set up once from
``LogConfig`` (``log.level``, ``log.access``, ``log.format``)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from proxy.config import LogConfig

ACCESS = "loupe.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an access line's fields are top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(config: LogConfig) -> None:
    """The root handler, in the configured format (replaces any earlier setup)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if config.format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level.upper())
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # libvips chatters at INFO per render
    logging.getLogger("httpx").setLevel(logging.WARNING)


def access_line(
    method: str, path: str, status: int, size: int, seconds: float, cache: str
) -> tuple[str, dict[str, Any]]:
    """The access line's text and its fields (JSON logs carry the fields as keys)."""
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "bytes": size,
        "ms": round(seconds * 1000, 1),
        "cache": cache,
    }
    text = f"{method} {path} {status} {size}B {fields['ms']}ms cache={cache}"
    return text, fields
