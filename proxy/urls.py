"""Build (and sign) Loupe image URLs: ``/img/{path}?params&expires=...&s=...``.

The same rules are implemented in ``clients/js/loupe-url.mjs``; both must produce the same
bytes for the same inputs, which ``tests/vectors/url_vectors.json`` pins down.

Canonical encoding
------------------

1. **Path.** ``path`` is the source path as in ``/img/{path}`` (``"products/shoe.jpg"``); leading
   ``/`` are ignored. It is split on ``/`` and every segment is encoded like JavaScript's
   ``encodeURIComponent``; the segments are joined with ``/`` and prefixed with ``/img/``. This
   *request path* is what gets signed. Empty, ``.`` and ``..`` segments are refused (browsers
   would rewrite them, breaking the signature).
2. **Component encoding** (path segments, parameter names and values): UTF-8, then every byte
   except ``A-Z a-z 0-9 - _ . ! ~ * ' ( )`` becomes ``%XX`` with upper-case hex, exactly as
   ``encodeURIComponent`` does. A space is ``%20`` (never ``+``); ``,`` in ``rect`` is ``%2C``.
   Strings that are not valid Unicode (lone surrogates) are refused.
3. **Parameters** are emitted in the order given (dict / object insertion order), as
   ``name=value`` pairs joined by ``&``. ``None`` (JS ``null`` / ``undefined``) is skipped. Names
   must be contract parameters (:data:`PARAMS`); ``s`` and ``expires`` are refused here because
   the builder adds them. No parameters and no key: no ``?`` at all. **Values** must be ones the
   server accepts (checked by the server's own parser, ``proxy.params.parse_params``, with the
   default crop): ``w=0``, ``rot=45``, ``ar`` without ``fit=crop`` or ``fp-x`` without
   ``crop=focalpoint`` raise, as the server would answer 400.
4. **Values**: strings as they are; booleans as ``1`` / ``0``; numbers (int or float, finite
   only) as the shortest decimal that round-trips, in plain positional notation, with no
   trailing zeros and no exponent (``2.0`` -> ``2``, ``1.50`` -> ``1.5``, ``1e-7`` ->
   ``0.0000001``, ``-0.0`` -> ``0``); ``rect`` may also be a sequence of four numbers, written
   ``x,y,w,h``. Other types (and sequences for other parameters) raise ``TypeError``.
5. **Signing** (only when ``key`` is given): ``expires`` (Unix seconds, a non-negative integer,
   or an aware ``datetime``, floored) is appended after the parameters, then
   ``s = hex(HMAC-SHA256(key, request_path ["?" + query]))`` is appended last, where ``query`` is
   everything emitted so far (no ``?`` when it is empty), exactly what
   :func:`proxy.signing.verify` checks. ``expires`` without ``key`` raises (it would never be
   enforced).
6. **Base**: ``base`` (an origin or a mount point such as ``https://cdn.example.com`` or
   ``https://example.com/media/``) has its trailing ``/`` removed and is prepended verbatim
   (never encoded). It is *not* part of the signed string: the signature covers the request
   path from ``/img/`` on. ``base=""`` gives a root-relative URL. A base with ``?`` or ``#``
   raises.
7. **srcset**: one ``"<url> <width>w"`` entry per width, in the order given, joined by ``", "``.
   Each entry uses ``params`` with ``w`` set to the width (in ``w``'s place when ``params`` has a
   ``w`` key, else appended last), and is signed on its own. Widths must be distinct positive
   integers.

Invalid inputs raise ``ValueError`` (JS: ``RangeError``) or ``TypeError`` (JS: ``TypeError``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

from proxy.errors import BadParameter
from proxy.params import KNOWN, PASSTHROUGH, parse_params
from proxy.signing import signature

__all__ = [
    "PARAMS",
    "ParamValue",
    "build_url",
    "canonical_query",
    "encode_component",
    "format_value",
    "request_path",
    "srcset",
]

#: The parameter names a URL may carry (``s`` and ``expires`` are added by the builder).
PARAMS: frozenset[str] = KNOWN - PASSTHROUGH

ParamValue = str | bool | int | float | Sequence[int | float] | None
Expires = int | datetime

# encodeURIComponent leaves A-Z a-z 0-9 and - _ . ! ~ * ' ( ) alone; ``quote`` always keeps
# letters, digits and ``_.-~``, so these are the remaining ones.
_COMPONENT_SAFE = "!*'()"


def encode_component(text: str) -> str:
    """``text`` percent-encoded exactly like JavaScript's ``encodeURIComponent``."""
    try:
        return quote(text, safe=_COMPONENT_SAFE, encoding="utf-8", errors="strict")
    except UnicodeEncodeError:
        raise ValueError(f"{text!r} is not valid Unicode (lone surrogate)") from None


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"numbers must be finite, got {value!r}")
    if value == 0:
        return "0"
    # repr() is the shortest round-tripping decimal (as JS Number#toString); Decimal spells it
    # out positionally, without the exponent either language would otherwise switch to.
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_value(name: str, value: ParamValue) -> str:
    """The unencoded text of one parameter value (``value`` must not be ``None``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return _number(value)
    if name == "rect" and isinstance(value, Sequence) and not isinstance(value, bytes):
        if len(value) != 4:
            raise ValueError(f"rect needs four numbers (x, y, w, h), got {len(value)}")
        parts: list[str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise TypeError(f"rect items must be numbers, got {item!r}")
            parts.append(_number(item))
        return ",".join(parts)
    raise TypeError(f"unsupported value for {name!r}: {value!r} ({type(value).__name__})")


def request_path(path: str) -> str:
    """``/img/`` followed by ``path``'s segments, each encoded like ``encodeURIComponent``."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a string, got {type(path).__name__}")
    trimmed = path.lstrip("/")
    if not trimmed:
        raise ValueError("path is empty")
    segments = trimmed.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"path {path!r} has an empty, '.' or '..' segment")
    return "/img/" + "/".join(encode_component(segment) for segment in segments)


def canonical_query(params: Mapping[str, ParamValue] | None) -> str:
    """``name=value`` pairs in the given order, ``None`` skipped, joined by ``&``."""
    if params is None:
        return ""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    pairs: list[str] = []
    for name, value in params.items():
        if name in PASSTHROUGH:
            hint = "pass key=..." if name == "s" else "pass expires=... (with key=...)"
            raise ValueError(f"{name!r} is added by the builder; {hint} instead")
        if name not in PARAMS:
            raise ValueError(f"unknown parameter {name!r}; known: {', '.join(sorted(PARAMS))}")
        if value is None:
            continue
        pairs.append(f"{encode_component(name)}={encode_component(format_value(name, value))}")
    query = "&".join(pairs)
    try:
        parse_params(query)  # what the server would refuse is refused here
    except BadParameter as exc:
        raise ValueError(exc.detail) from None
    return query


def _expires_value(expires: Expires) -> int:
    if isinstance(expires, datetime):
        if expires.tzinfo is None:
            raise ValueError("expires must be an aware datetime (naive times are ambiguous)")
        seconds = math.floor(expires.timestamp())
    elif isinstance(expires, bool) or not isinstance(expires, int):
        raise TypeError(f"expires must be Unix seconds (int) or a datetime, got {expires!r}")
    else:
        seconds = expires
    if seconds < 0:
        raise ValueError(f"expires must not be negative, got {seconds}")
    return seconds


def _base(base: str) -> str:
    if not isinstance(base, str):
        raise TypeError(f"base must be a string, got {type(base).__name__}")
    if "?" in base or "#" in base:
        raise ValueError(f"base must not carry a query or fragment, got {base!r}")
    return base.rstrip("/")


def _check_key(key: str | None, expires: Expires | None) -> None:
    if key is None:
        if expires is not None:
            raise ValueError("expires needs a signing key: unsigned, it would never be enforced")
        return
    if not isinstance(key, str):
        raise TypeError(f"key must be a string, got {type(key).__name__}")
    if not key:
        raise ValueError("key is empty")
    encode_component(key)  # refuses keys that are not valid Unicode


def _assemble(prefix: str, path: str, query: str, key: str | None, expires: Expires | None) -> str:
    if key is not None:
        if expires is not None:
            stamp = f"expires={_expires_value(expires)}"
            query = f"{query}&{stamp}" if query else stamp
        mark = f"s={signature(key, path, query)}"
        query = f"{query}&{mark}" if query else mark
    return f"{prefix}{path}?{query}" if query else f"{prefix}{path}"


def build_url(
    path: str,
    params: Mapping[str, ParamValue] | None = None,
    *,
    base: str = "",
    key: str | None = None,
    expires: Expires | None = None,
) -> str:
    """The URL of ``path`` with ``params``; signed when ``key`` is given (see the module doc).

    >>> build_url("shoes/red.jpg", {"w": 400, "dpr": 1.5}, base="https://cdn.example.com/")
    'https://cdn.example.com/img/shoes/red.jpg?w=400&dpr=1.5'
    """
    _check_key(key, expires)
    return _assemble(_base(base), request_path(path), canonical_query(params), key, expires)


def srcset(
    path: str,
    widths: Iterable[int],
    params: Mapping[str, ParamValue] | None = None,
    *,
    base: str = "",
    key: str | None = None,
    expires: Expires | None = None,
) -> str:
    """A ``srcset`` value: ``"<url> <w>w"`` per width, joined by ``", "``.

    >>> srcset("a.jpg", [320, 640], {"fm": "webp"})
    '/img/a.jpg?fm=webp&w=320 320w, /img/a.jpg?fm=webp&w=640 640w'
    """
    _check_key(key, expires)
    prefix, encoded = _base(base), request_path(path)
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    if isinstance(widths, str | bytes):
        raise TypeError("widths must be an iterable of integers")
    chosen = list(widths)
    if not chosen:
        raise ValueError("srcset needs at least one width")
    for width in chosen:
        if isinstance(width, bool) or not isinstance(width, int):
            raise TypeError(f"widths must be integers, got {width!r}")
        if width < 1:
            raise ValueError(f"widths must be positive, got {width}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"widths must be distinct, got {chosen}")
    entries: list[str] = []
    for width in chosen:
        query = canonical_query({**(params or {}), "w": width})
        entries.append(f"{_assemble(prefix, encoded, query, key, expires)} {width}w")
    return ", ".join(entries)
