"""URL signatures (``s``): hex HMAC-SHA256 of the request path, ``?`` and the query string
exactly as sent with ``s`` removed. Several keys allow rotation; ``expires`` (Unix seconds)
is an ordinary, therefore signed, parameter. Parameter names are never percent-encoded
(``raw_pairs`` refuses ``%65xpires``), so this check and the parser read the same names.

The same function signs (``loupe sign``, the URL builders) and verifies, so the two can
never disagree about the canonical string.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from proxy.errors import BadParameter, Forbidden, Unauthorized
from proxy.params import raw_pairs


def strip_signature(query: str) -> tuple[str, str | None]:
    """The raw query without its ``s=`` pair (order and encoding untouched), and ``s``."""
    kept: list[str] = []
    signature: str | None = None
    for pair in query.split("&") if query else []:
        if pair.startswith("s=") and signature is None:
            signature = pair[2:]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def signed_string(path: str, query_without_s: str) -> str:
    return f"{path}?{query_without_s}" if query_without_s else path


def signature(key: str, path: str, query_without_s: str) -> str:
    message = signed_string(path, query_without_s).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign_url(key: str, path: str, query: str = "") -> str:
    """``path?query&s=...`` (the query as given, ``s`` appended last)."""
    stripped, _ = strip_signature(query)
    mark = signature(key, path, stripped)
    return f"{path}?{stripped}&s={mark}" if stripped else f"{path}?s={mark}"


def expiry(query: str) -> int | None:
    """The ``expires`` of a raw query (Unix seconds), read with the parser's own splitting
    (``raw_pairs``), so the signature check and the parser can never see different ones."""
    found = [value for name, value in raw_pairs(query) if name == "expires"]
    if not found:
        return None
    if len(found) > 1:
        raise BadParameter("parameter 'expires' is repeated")
    if not found[0].isdigit() or not found[0].isascii():
        raise Forbidden("expires must be a Unix timestamp in seconds")
    return int(found[0])


def verify(keys: Sequence[str], path: str, query: str, *, now: float | None = None) -> bool:
    """Check ``s`` against every key in constant time; raise when it is missing or wrong.

    Returns True when a signature was checked (so responses may be ``immutable``), False
    when signing is off.
    """
    if not keys:
        return False
    raw_pairs(query)  # names as the parser will read them (no %73 for s)
    stripped, given = strip_signature(query)
    if not given:
        raise Unauthorized("this server requires signed URLs: the s parameter is missing")
    matched = False
    for key in keys:
        # No early exit: every key is compared, so timing does not reveal which matched.
        expected = signature(key, path, stripped).encode()
        matched |= hmac.compare_digest(expected, given.lower().encode("utf-8", "surrogateescape"))
    if not matched:
        raise Forbidden("the URL signature does not match")
    expires = expiry(stripped)
    if expires is not None and expires < (time.time() if now is None else now):
        raise Forbidden("the signed URL has expired")
    return True


def verify_request(keys: Sequence[str], raw_path: bytes, raw_query: bytes) -> bool:
    """``verify`` on a request's path and query exactly as sent (ASGI ``raw_path`` and
    ``query_string``), which is what the signer signed."""
    return verify(keys, raw_path.decode("latin-1"), raw_query.decode("latin-1"))
