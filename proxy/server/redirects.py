"""Every redirect Loupe sends is a path on this server, never a URL built from the request's
``Host`` header: Starlette's slash redirects (``/admin`` -> ``/admin/``) write an absolute URL
from it, so a forged Host would send a browser, or poison a cache, to another site."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def relative_location(location: str) -> str:
    """``location`` reduced to its path, query and fragment, its path starting with exactly
    one slash: never ``//host`` or ``/\\host``, which browsers read as another site."""
    try:
        parts = urlsplit(location)
    except ValueError:  # an unparsable host ("http://[x"): nothing of it is worth keeping
        return "/"
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment))


class RelativeRedirects:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                headers = [
                    (name, relative_location(value.decode("latin-1")).encode("latin-1"))
                    if name.lower() == b"location"
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, rewrite)
