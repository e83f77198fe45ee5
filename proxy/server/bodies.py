"""Request bodies read with bounds: a size cap checked while streaming (413 past it, before
the rest arrives) and, for JSON, a nesting cap checked on the raw bytes as they come (400),
so neither a huge body nor ``[[[[...`` ever reaches the parser."""

from __future__ import annotations

from starlette.requests import Request

from proxy.errors import BadParameter, LoupeError


class BodyTooLarge(LoupeError):
    """A request body past its size limit."""


class NestingTooDeep(BadParameter):
    """A JSON body nested past its depth limit."""


class JsonDepth:
    """The bracket depth of a JSON text fed in pieces, strings (and their escapes) skipped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._escaped = False

    def feed(self, chunk: bytes) -> None:
        """Raises ``NestingTooDeep`` as soon as the depth passes the limit."""
        for byte in chunk:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif byte == 0x5C:  # backslash
                    self._escaped = True
                elif byte == 0x22:  # closing quote
                    self._in_string = False
            elif byte == 0x22:
                self._in_string = True
            elif byte in (0x5B, 0x7B):  # [ {
                self.depth += 1
                if self.depth > self.limit:
                    raise NestingTooDeep(f"the JSON body nests deeper than {self.limit} levels")
            elif byte in (0x5D, 0x7D):  # ] }
                self.depth -= 1


async def read_capped(request: Request, limit: int, depth: JsonDepth | None = None) -> bytes:
    """The body, or ``BodyTooLarge`` once more than ``limit`` bytes are declared or have
    arrived; ``depth`` (JSON) sees each piece first, so a deep nest is a 400 whatever its
    size."""
    declared = request.headers.get("content-length", "")
    if depth is None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    received = bytearray()
    async for chunk in request.stream():
        if depth is not None:
            depth.feed(chunk)
        received += chunk
        if len(received) > limit:
            raise BodyTooLarge(f"the body exceeds {limit} bytes")
    return bytes(received)
