"""proxy.urls: the shared vectors, server-side verification, and parity with the JS client."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from proxy.errors import Forbidden, Unauthorized
from proxy.params import KNOWN, PASSTHROUGH, parse_params, raw_pairs, split_query
from proxy.signing import expiry, verify
from proxy.urls import (
    PARAMS,
    ParamValue,
    build_url,
    canonical_query,
    encode_component,
    format_value,
    srcset,
)

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "clients" / "js"
VECTORS: list[dict[str, Any]] = json.loads(
    (ROOT / "tests" / "vectors" / "url_vectors.json").read_text(encoding="utf-8")
)["vectors"]
ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}
KEY = "test-signing-key"
NOW = 1_700_000_000.0
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not on PATH: JS client not checked")


def run(vector: dict[str, Any]) -> str:
    kwargs = {name: vector[name] for name in ("base", "key", "expires") if name in vector}
    if vector["call"] == "srcset":
        return srcset(vector["path"], vector["widths"], vector.get("params"), **kwargs)
    return build_url(vector["path"], vector.get("params"), **kwargs)


def split(url: str, base: str = "") -> tuple[str, str]:
    """The request path and raw query of a built URL, as the server sees them."""
    path, _, query = url.removeprefix(base.rstrip("/")).partition("?")
    return path, query


def test_there_are_enough_vectors() -> None:
    assert len([v for v in VECTORS if "expected" in v]) >= 12
    names = [v["name"] for v in VECTORS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    if "error" in vector:
        with pytest.raises(ERRORS[vector["error"]]):
            run(vector)
        return
    assert run(vector) == vector["expected"]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if "signed_string" in v],
    ids=[v["name"] for v in VECTORS if "signed_string" in v],
)
def test_signed_vectors_verify(vector: dict[str, Any]) -> None:
    path, query = split(vector["expected"], vector.get("base", ""))
    stripped = "&".join(p for p in query.split("&") if not p.startswith("s="))
    assert (f"{path}?{stripped}" if stripped else path) == vector["signed_string"]
    assert verify([vector["key"]], path, query, now=NOW) is True


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_builders_and_parser_read_the_same_names(vector: dict[str, Any]) -> None:
    """Names are never percent-encoded, by the builders (Python and JS share the vectors)
    or anyone: the signature check and the parser then agree on s and expires."""
    assert all(encode_component(name) == name for name in PARAMS)
    if "expected" not in vector:
        return
    urls = [entry.rsplit(" ", 1)[0] for entry in vector["expected"].split(", ")]
    for url in urls if vector["call"] == "srcset" else [vector["expected"]]:
        _path, query = split(url, vector.get("base", ""))
        pairs = dict(raw_pairs(query))
        assert all(encode_component(name) == name for name in pairs)
        assert expiry(query) == (int(pairs["expires"]) if "expires" in pairs else None)


def test_signed_srcset_entries_verify() -> None:
    value = srcset("a b/c.jpg", [320, 640, 960], {"fm": "webp", "dpr": 2}, key=KEY, expires=2**31)
    entries = value.split(", ")
    assert [e.rsplit(" ", 1)[1] for e in entries] == ["320w", "640w", "960w"]
    for entry in entries:
        url = entry.rsplit(" ", 1)[0]
        assert verify([KEY], *split(url), now=NOW)
        parse_params(split(url)[1])  # the server accepts what the builder emits


def test_built_urls_round_trip_through_the_server_parser() -> None:
    params: dict[str, ParamValue] = {
        "w": 300,
        "dpr": 1.5,
        "bg": "#ff0000",
        "rect": (1, 2, 30, 40),
        "upscale": True,
    }
    url = build_url("dir x/é.jpg", params, base="https://cdn.example.com/", key=KEY, expires=99)
    path, query = split(url, "https://cdn.example.com")
    assert [unquote(s) for s in path.split("/")] == ["", "img", "dir x", "é.jpg"]
    raw = split_query(query)
    assert raw["bg"] == "#ff0000"
    assert raw["rect"] == "1,2,30,40"
    assert raw["expires"] == "99"
    parsed = parse_params(query)
    assert (parsed.width, parsed.upscale, parsed.background) == (450, True, (255, 0, 0, 255))


@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ("w=400", "w=401"),
        ("fm=avif", "fm=webp"),
        ("expires=1893456000", "expires=1893456001"),
        ("&fm=avif", ""),
        ("w=400&", "w=400&h=10&"),
    ],
)
def test_tampered_signed_urls_fail(change: str, replacement: str) -> None:
    url = build_url("a.jpg", {"w": 400, "fm": "avif"}, key=KEY, expires=1893456000)
    path, query = split(url)
    assert verify([KEY], path, query, now=NOW)
    assert change in query
    with pytest.raises(Forbidden):
        verify([KEY], path, query.replace(change, replacement), now=NOW)


def test_tampered_path_and_key_fail() -> None:
    path, query = split(build_url("a.jpg", {"w": 400}, key=KEY))
    with pytest.raises(Forbidden):
        verify([KEY], path.replace("a.jpg", "b.jpg"), query, now=NOW)
    with pytest.raises(Forbidden):
        verify(["another-key"], path, query, now=NOW)
    assert verify(["another-key", KEY], path, query, now=NOW)  # rotation
    with pytest.raises(Unauthorized):
        verify([KEY], *split(build_url("a.jpg", {"w": 400})), now=NOW)


def test_expired_urls_fail_and_datetimes_are_accepted() -> None:
    when = datetime(2030, 1, 1, 0, 0, 0, 999_000, tzinfo=UTC)
    url = build_url("a.jpg", {"w": 1}, key=KEY, expires=when)
    assert "&expires=1893456000&s=" in url
    path, query = split(url)
    assert verify([KEY], path, query, now=1893455999)
    with pytest.raises(Forbidden):
        verify([KEY], path, query, now=1893456001)
    other_zone = when.astimezone(timezone(timedelta(hours=-5)))
    assert build_url("a.jpg", {"w": 1}, key=KEY, expires=other_zone) == url
    with pytest.raises(ValueError):
        build_url("a.jpg", key=KEY, expires=datetime(2030, 1, 1))  # naive


@pytest.mark.parametrize("name", ["width", "W", "format", "fp_x", "quality", "", "s", "expires"])
def test_unknown_or_reserved_names_raise(name: str) -> None:
    with pytest.raises(ValueError, match=repr(name)):
        build_url("a.jpg", {name: 1}, key=KEY)
    with pytest.raises(ValueError):
        srcset("a.jpg", [100], {name: 1})


def test_params_match_the_server() -> None:
    assert PARAMS == KNOWN - PASSTHROUGH


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2"),
        (1.50, "1.5"),
        (-0.0, "0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (1.5e300, "15" + "0" * 299),
        (123456789012345680000.0, "123456789012345680000"),
        (5, "5"),
        (True, "1"),
        (False, "0"),
    ],
)
def test_number_formatting(value: float, text: str) -> None:
    assert format_value("dpr", value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_raise(value: float) -> None:
    with pytest.raises(ValueError):
        canonical_query({"dpr": value})


def test_component_encoding_matches_encode_uri_component_by_definition() -> None:
    unreserved = "ABCXYZabcxyz0189-_.!~*'()"
    assert encode_component(unreserved) == unreserved
    assert encode_component(" +,/:;=?@#$&%") == "%20%2B%2C%2F%3A%3B%3D%3F%40%23%24%26%25"
    assert encode_component("é😀") == "%C3%A9%F0%9F%98%80"


# --- the JS client ------------------------------------------------------------------------


def _node(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, *args],
        cwd=JS_DIR,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
        check=False,
    )


@needs_node
def test_js_client_tests_pass() -> None:
    # Same as `npm test` in clients/js (`node --test clients/js/` from the repo root on node 20;
    # running from the folder also works on node 18 and 22, whose argument handling differs).
    result = _node(["--test"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "# fail 0" in result.stdout


@needs_node
def test_js_params_match_the_server() -> None:
    script = "import {PARAMS} from './loupe-url.mjs'; console.log(JSON.stringify(PARAMS));"
    result = _node(["--input-type=module", "-e", script])
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == KNOWN - PASSTHROUGH


_DIFF_SCRIPT = """
import { buildUrl } from './loupe-url.mjs';
let text = '';
for await (const chunk of process.stdin) text += chunk;
const out = [];
for (const c of JSON.parse(text)) {
  try { out.push(await buildUrl(c.path, c.params, c.options)); }
  catch (e) { out.push('error:' + e.constructor.name); }
}
process.stdout.write(JSON.stringify(out));
"""


def _random_text(rng: random.Random) -> str:
    pools = ["abcXYZ019", " -_.!~*'()", "%&=+?#/,;:@$[]", "éüß€", "写真🐱😀", "\t\n\x00"]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 12)))


def _random_number(rng: random.Random) -> float:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randint(-(10**6), 10**6)
    if kind == 1:
        return round(rng.uniform(0, 4), rng.randint(0, 6))
    if kind == 2:
        return rng.uniform(-1e3, 1e3)
    if kind == 3:
        return rng.uniform(1, 10) * 10.0 ** rng.randint(-30, 30)
    return float(rng.randint(0, 10**9))


@needs_node
def test_js_matches_python_on_random_inputs() -> None:
    rng = random.Random(20240611)
    names = sorted(PARAMS)
    cases: list[dict[str, Any]] = []
    for _ in range(400):
        segments = [_random_text(rng) for _ in range(rng.randint(1, 3))]
        params: dict[str, Any] = {}
        for name in rng.sample(names, rng.randint(0, 6)):
            pick = rng.randrange(5)
            if name == "rect" and pick == 0:
                params[name] = [rng.randint(0, 5000) for _ in range(4)]
            elif pick == 1:
                params[name] = rng.random() < 0.5
            elif pick == 2:
                params[name] = None
            elif pick == 3:
                params[name] = _random_number(rng)
            else:
                params[name] = _random_text(rng)
        options: dict[str, Any] = {}
        if rng.random() < 0.5:
            options["base"] = rng.choice(["", "/", "https://cdn.example.com", "https://e.x/m//"])
        if rng.random() < 0.5:
            options["key"] = _random_text(rng)
            if rng.random() < 0.5:
                options["expires"] = rng.randint(0, 2**40)
        cases.append({"path": "/".join(segments), "params": params, "options": options})
    expected = []
    for case in cases:
        try:
            expected.append(build_url(case["path"], case["params"], **case["options"]))
        except ValueError:
            expected.append("error:RangeError")
    result = _node(["--input-type=module", "-e", _DIFF_SCRIPT], stdin=json.dumps(cases))
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert not mismatches, mismatches[:3]


# Values near each parameter's rules (in range, at the edges, just outside, other
# spellings), so the JS checks are compared with the server's parser where it matters.
PLAUSIBLE: dict[str, list[ParamValue]] = {
    "w": [1, 8192, 8193, 0, 400, 1.5, "0400", "4e2", " 4"],
    "h": [1, 300, 8192, 9000, "x"],
    "dpr": [1, 4, 1.5, 4.0001, 0.5, "2.", ".5", "1e0", "0x1", "inf", "2_0"],
    "fit": ["clip", "crop", "fill", "scale", "max", "min", "cover", "CROP"],
    "crop": ["smart", "faces", "focalpoint", "center", "middle"],
    "fp-x": [0, 1, 0.5, 1.01, "-0", "1e-3"],
    "fp-y": [0.25, 2, "nan"],
    "rect": [[0, 0, 10, 10], "1, 2, 3, 4", "1,2,3", "0,0,0,1", "1,2,3,1000000", "1,2,3,1000001"],
    "fm": ["auto", "jpg", "jpeg", "pjpg", "png", "webp", "avif", "gif", "tiff"],
    "q": ["auto", 1, 100, 0, 101, 75.5],
    "policy": ["general", "legal", "other"],
    "ctx": ["hero", "social", "nope"],
    "bg": ["fff", "#fff", "##fff", "ffffff80", "ggg", "fff\n", ""],
    "upscale": [True, False, "1", "2"],
    "ar": ["16:9", "1.91:1", "1:1", "1:100", "1:101", "0:1", "16x9", "16:9:1", " 4 : 3 ", "1e1:1"],
    "auto": ["format", "compress", "format,compress", "format, compress", "enhance", ""],
    "blur": [0, 1, 100, 101, 2000, -1],
    "sharp": [0, 100, 101],
    "rot": [0, 90, 180, 270, 360, 45, "90.0"],
    "flip": ["h", "v", "hv", "vh", "x", ""],
}


@needs_node
def test_js_matches_python_on_plausible_values() -> None:
    rng = random.Random(20261204)
    assert set(PLAUSIBLE) == set(PARAMS)
    cases: list[dict[str, Any]] = []
    for _ in range(1500):
        names = rng.sample(sorted(PLAUSIBLE), rng.randint(1, 5))
        params = {name: rng.choice(PLAUSIBLE[name]) for name in names}
        if rng.random() < 0.3:
            params["fit"] = rng.choice(["crop", "min"])
        cases.append({"path": "a.jpg", "params": params, "options": {}})
    expected = []
    for case in cases:
        try:
            expected.append(build_url(case["path"], case["params"]))
        except ValueError:
            expected.append("error:RangeError")
    valid = sum(1 for e in expected if not e.startswith("error:"))
    assert valid > 200, "too few valid combinations to compare"
    result = _node(["--input-type=module", "-e", _DIFF_SCRIPT], stdin=json.dumps(cases))
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert not mismatches, mismatches[:3]
