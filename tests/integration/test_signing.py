"""Signed URLs against a real server with two keys (rotation): 401 unsigned, 403 wrong,
tampered or expired, 200 and ``immutable`` when signed by either key; ``loupe sign``
output is accepted as is."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.integration import nasty
from tests.integration.imaging import NO_MODERN
from tests.support import REPO, LoupeServer

TIMEOUT = 30.0


def sig(key: str, path: str, query: str = "") -> str:
    """Independent of proxy.signing: HMAC-SHA256 of ``path?query`` as the contract says."""
    message = f"{path}?{query}" if query else path
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("signed-root")
    (root / "x.png").write_bytes(bytes(nasty.gradient(40, 30).pngsave_buffer()))
    (root / "y.png").write_bytes(bytes(nasty.gradient(30, 40).pngsave_buffer()))
    running = LoupeServer(
        root, tmp_path_factory.mktemp("signed-data"), env={"LOUPE_SIGNING_KEYS": "new,old"}
    )
    yield running
    running.stop()


def get(server: LoupeServer, target: str) -> httpx.Response:
    return httpx.get(server.url + target, headers=NO_MODERN, timeout=TIMEOUT)


def test_unsigned_is_401(signed: LoupeServer) -> None:
    body = nasty.is_problem(get(signed, "/img/x.png?w=10"), 401)
    assert body["type"] == "https://loupe.dev/problems/unauthorized"
    nasty.is_problem(get(signed, "/img/x.png"), 401)


def test_unsigned_request_does_not_reveal_whether_a_source_exists(signed: LoupeServer) -> None:
    nasty.is_problem(get(signed, "/img/no-such-file.png?w=10"), 401)
    nasty.is_problem(get(signed, f"/img/no-such-file.png?w=10&s={'0' * 64}"), 403)


@pytest.mark.parametrize(
    "s", ["0" * 64, "f" * 63, "", "zz", sig("other", "/img/x.png", "w=10"), "%ff%fe"]
)
def test_wrong_signature_is_403(signed: LoupeServer, s: str) -> None:
    response = get(signed, f"/img/x.png?w=10&s={s}")
    expected = 401 if s == "" else 403  # an empty s is a missing signature
    body = nasty.is_problem(response, expected)
    assert "immutable" not in response.headers.get("cache-control", "")
    assert body["status"] == expected


@pytest.mark.parametrize("key", ["new", "old"])
def test_either_key_signs(signed: LoupeServer, key: str) -> None:
    response = get(signed, f"/img/x.png?w=10&fm=png&s={sig(key, '/img/x.png', 'w=10&fm=png')}")
    assert response.status_code == 200, response.text
    assert "immutable" in response.headers["cache-control"]
    image = pyvips.Image.new_from_buffer(response.content, "")
    assert image.width == 10
    bare = get(signed, f"/img/x.png?s={sig(key, '/img/x.png')}")
    assert bare.status_code == 200, bare.text
    if bare.headers["x-loupe-stage"] == "provisional":  # q=auto, not verified yet: soon better
        assert bare.headers["cache-control"] == "public, max-age=300"
    else:
        assert "immutable" in bare.headers["cache-control"]


def test_signature_position_does_not_matter(signed: LoupeServer) -> None:
    mark = sig("new", "/img/x.png", "w=10&fm=png")
    response = get(signed, f"/img/x.png?s={mark}&w=10&fm=png")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "target",
    [
        "/img/x.png?w=11&fm=png&s={s}",  # value changed
        "/img/x.png?fm=png&w=10&s={s}",  # reordered: the query exactly as sent is signed
        "/img/x.png?w=10&fm=png&h=10&s={s}",  # parameter added
        "/img/x.png?w=10&s={s}",  # parameter removed
        "/img/y.png?w=10&fm=png&s={s}",  # another source
        "/img/x.png?w=10&fm=png&s={s}&s={s}",  # a second s is part of the signed query
    ],
)
def test_tampering_is_403(signed: LoupeServer, target: str) -> None:
    mark = sig("new", "/img/x.png", "w=10&fm=png")
    assert get(signed, f"/img/x.png?w=10&fm=png&s={mark}").status_code == 200
    nasty.is_problem(get(signed, target.format(s=mark)), 403)


def test_expired_is_403_and_future_is_200(signed: LoupeServer) -> None:
    past = f"w=10&expires={int(time.time()) - 60}"
    body = nasty.is_problem(get(signed, f"/img/x.png?{past}&s={sig('old', '/img/x.png', past)}"))
    assert body["status"] == 403
    assert "expired" in str(body["detail"])
    future = f"w=10&q=80&expires={int(time.time()) + 600}"
    response = get(signed, f"/img/x.png?{future}&s={sig('old', '/img/x.png', future)}")
    assert response.status_code == 200, response.text
    freshness = response.headers["cache-control"]
    assert freshness.startswith("public, max-age=") and "immutable" not in freshness
    assert 590 <= int(freshness.removeprefix("public, max-age=")) <= 600  # its time left
    # A provisional (q=auto) answer is kept no longer than provisional_max_age_s.
    auto = f"w=12&expires={int(time.time()) + 600}"
    first = get(signed, f"/img/x.png?{auto}&s={sig('old', '/img/x.png', auto)}")
    assert first.headers["x-loupe-stage"] == "provisional"
    assert first.headers["cache-control"] == "public, max-age=300"
    # Moving the expiry breaks the signature.
    later = future.replace("expires=", "expires=9")
    nasty.is_problem(get(signed, f"/img/x.png?{later}&s={sig('old', '/img/x.png', future)}"), 403)
    bogus = "w=10&expires=soon"
    nasty.is_problem(get(signed, f"/img/x.png?{bogus}&s={sig('new', '/img/x.png', bogus)}"), 403)


def _cli_sign(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "sign", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")},
        check=True,
    )
    return done.stdout.strip()


def test_cli_signature_is_accepted(signed: LoupeServer) -> None:
    target = _cli_sign("/img/x.png?w=10", "--key", "new")
    assert target.startswith("/img/x.png?w=10&s="), target
    assert target.endswith(sig("new", "/img/x.png", "w=10"))
    response = get(signed, target)
    assert response.status_code == 200, response.text
    if response.headers["x-loupe-stage"] == "provisional":  # q=auto, not verified yet
        assert response.headers["cache-control"] == "public, max-age=300"
    else:
        assert "immutable" in response.headers["cache-control"]
    full = _cli_sign(f"{signed.url}/img/x.png?w=12&fm=png", "--key", "old", "--expires-in", "300")
    response = httpx.get(full, headers=NO_MODERN, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert pyvips.Image.new_from_buffer(response.content, "").width == 12


def test_without_keys_nothing_is_immutable(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "x.png").write_bytes(bytes(nasty.gradient(40, 30).pngsave_buffer()))
    server = LoupeServer(tmp_path / "root", tmp_path / "data")
    try:
        plain = get(server, "/img/x.png?w=10")
        assert plain.status_code == 200, plain.text
        assert "immutable" not in plain.headers["cache-control"]
        assert "max-age=" in plain.headers["cache-control"]
        # An s parameter means nothing when signing is off: still not immutable.
        stray = get(server, f"/img/x.png?w=10&s={sig('new', '/img/x.png', 'w=10')}")
        assert stray.status_code == 200, stray.text
        assert "immutable" not in stray.headers["cache-control"]
    finally:
        server.stop()


def test_an_expiring_url_is_cached_no_longer_than_it_is_valid(signed: LoupeServer) -> None:
    for left in (120, 5):
        query = f"w=11&expires={int(time.time()) + left}"
        for route in ("/img/x.png", "/meta/x.png"):
            response = get(signed, f"{route}?{query}&s={sig('new', route, query)}")
            assert response.status_code == 200, response.text
            control = response.headers["cache-control"]
            assert "immutable" not in control and "stale-while" not in control, control
            max_age = int(control.rsplit("max-age=", 1)[1])
            assert max_age <= left, f"{route}: {control} outlives the URL ({left} s)"


@pytest.mark.parametrize(
    "query",
    [
        "w=10&%65xpires={past}",
        "w=10&%45xpires={past}",
        "w=10&expire%73={past}",
        "w=10&ex%70ires={past}",
        "w=10&expires%00={past}",
        "w=10&+expires={past}",
        "%77=10&expires={future}",
        "w=10&f%6d=png",
        "w=10&s%3D=1",
    ],
)
def test_encoded_parameter_names_are_refused(signed: LoupeServer, query: str) -> None:
    """The signature check and the parser must never read different names: an encoded name
    (whose signature is right, as its issuer made it) is a 400, never served."""
    now = int(time.time())
    raw = query.format(past=now - 60, future=now + 600)
    response = get(signed, f"/img/x.png?{raw}&s={sig('new', '/img/x.png', raw)}")
    nasty.is_problem(response, 400)
    encoded_s = f"w=10&%73={sig('new', '/img/x.png', 'w=10')}"
    nasty.is_problem(get(signed, f"/img/x.png?{encoded_s}"), 400)
