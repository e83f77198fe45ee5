"""Every failure is an RFC 9457 problem with the right status; none is a 500, and no path
ever reads outside the source root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.imaging import assert_problem, decode, get, raw_get, size
from tests.support import LoupeServer

PHOTO = "kodak/kodim01.png"
SECRET = b"TOP-SECRET-loupe-outside-the-root"


@pytest.mark.parametrize(
    "query",
    [
        "nope=1",  # unknown
        "width=100",  # unknown (a typo of w)
        "w=100&w=200",  # repeated
        "fm=jpeg&fm=png",
        "w=0",
        "w=-5",
        "w=9000",
        "w=8193",
        "w=abc",
        "w=1.5",
        "h=0",
        "h=99999",
        "dpr=0",
        "dpr=0.5",
        "dpr=5",
        "dpr=nan",
        "dpr=inf",
        "fit=bogus",
        "fit=",
        "crop=middle",
        "fm=tiff",
        "fm=JPEG",
        "q=0",
        "q=101",
        "q=high",
        "bg=zzz",
        "bg=12345",
        "bg=#ggg",
        "rect=1,2,3",
        "rect=1,2,3,4,5",
        "rect=0,0,0,10",
        "rect=a,b,c,d",
        "rect=-1,0,10,10",
        "rect=2000,2000,10,10",  # entirely outside the 768x512 source
        "fp-x=0.2",  # needs crop=focalpoint
        "fp-y=0.2&crop=center",
        "crop=focalpoint&fp-x=1.5",
        "crop=focalpoint&fp-y=-0.1",
        "upscale=2",
        "upscale=true",
        "policy=cheap",
        "ctx=home",
        "w=8192&h=8192&fit=fill",  # 67 MP output exceeds the output limit
    ],
)
def test_bad_parameters_are_400(server: LoupeServer, query: str) -> None:
    body = assert_problem(get(server, PHOTO, query), 400, "bad-parameter")
    assert body["detail"]


def test_bad_parameter_problem_names_the_parameter(server: LoupeServer) -> None:
    body = assert_problem(get(server, PHOTO, "w=9000"), 400)
    assert "w" in body["detail"] and "9000" in body["detail"]
    body = assert_problem(get(server, PHOTO, "zoom=2"), 400)
    assert "zoom" in body["detail"]
    body = assert_problem(get(server, PHOTO, "h=1&h=2"), 400)
    assert "h" in body["detail"] and "repeat" in body["detail"]


def test_bad_parameter_beats_a_missing_source(server: LoupeServer) -> None:
    response = get(server, "kodak/missing.png", "w=0")
    assert response.status_code in (400, 404)
    assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "path", ["kodak/missing.png", "missing/kodim01.png", "kodak", "kodak/kodim01.png/x"]
)
def test_missing_source_is_404(server: LoupeServer, path: str) -> None:
    assert_problem(get(server, path), 404)


def test_a_folder_with_a_slash_is_redirected_to_its_canonical_path_then_404(
    server: LoupeServer,
) -> None:
    response = get(server, "kodak/", "w=10")
    assert_problem(response, 308)
    assert response.headers["location"] == "/img/kodak?w=10"
    assert_problem(get(server, "kodak", "w=10"), 404)


# --- a root of our own: broken files, and a secret next to it ------------------------------


@pytest.fixture(scope="module")
def broken(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    base = tmp_path_factory.mktemp("loupe-broken")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (base / "secret.txt").write_bytes(SECRET)
    (root / "note.txt").write_text("not an image at all\n")
    (root / "note.jpg").write_text("a text file with an image name\n")
    (root / "empty.png").write_bytes(b"")
    jpeg = (data_root / "generated/progressive_kodim07.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    photo = (data_root / "skimage/rocket.jpg").read_bytes()
    (root / "sub" / "truncated_baseline.jpg").write_bytes(photo[: len(photo) // 2])
    png = (data_root / PHOTO).read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    (root / "ok.jpg").write_bytes(photo)
    (root / "sub" / "escape.jpg").symlink_to(base / "secret.txt")
    (root / "escape_dir").symlink_to(base)
    running = LoupeServer(root, base / "data")
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["note.txt", "note.jpg"])
def test_non_image_is_415(broken: LoupeServer, path: str) -> None:
    assert_problem(get(broken, path, "w=100"), 415, "unsupported-image")


def test_svg_is_refused_by_default(server: LoupeServer) -> None:
    assert_problem(get(server, "generated/vector_rings.svg", "w=100"), 415)


@pytest.mark.parametrize(
    "query", ["", "w=100", "w=100&fm=png", "w=50&h=50&fit=crop&crop=attention", "fm=webp"]
)
@pytest.mark.parametrize(
    "path", ["truncated.jpg", "sub/truncated_baseline.jpg", "truncated.png", "garbage.jpg"]
)
def test_damaged_image_is_422(broken: LoupeServer, path: str, query: str) -> None:
    assert_problem(get(broken, path, query), 422, "damaged-image")


def test_empty_file_is_a_client_error(broken: LoupeServer) -> None:
    response = get(broken, "empty.png")
    assert response.status_code in (415, 422)
    assert_problem(response, response.status_code)


def test_the_broken_root_still_serves_good_images(broken: LoupeServer) -> None:
    assert size(decode(get(broken, "ok.jpg", "w=64&fm=jpeg"))) == (64, 43)
    assert broken.metric("loupe_requests_total", 'route="/img",status="500"') == 0


@pytest.mark.parametrize(
    "target",
    [
        "/img/%2e%2e/secret.txt",
        "/img/%2E%2E/secret.txt",
        "/img/../secret.txt",
        "/img/sub/../../secret.txt",
        "/img/sub/%2e%2e/%2e%2e/secret.txt",
        "/img/a/../../x",
        "/img/%2e%2e/%2e%2e/etc/passwd",
        "/img/..%2fsecret.txt",
        "/img/sub%2f..%2f..%2fsecret.txt",
        "/img/..%5csecret.txt",
        "/img/./../secret.txt",
        "/img//etc/passwd",
        "/img/%2fetc%2fpasswd",
        "/img/sub/escape.jpg",  # a symlink that leaves the root
        "/img/escape_dir/secret.txt",
        "/img/secret.txt%00.jpg",
    ],
)
def test_paths_never_leave_the_root(broken: LoupeServer, target: str) -> None:
    response = raw_get(broken, target)
    if response.status_code == 308:  # another spelling: redirected to the canonical one
        location = response.headers["location"]
        assert location.startswith("/img/") and "//" not in location, location
        response = raw_get(broken, location)
    assert response.status_code in (400, 403, 404), f"{target}: {response.status_code}"
    assert SECRET not in response.content
    assert b"root:" not in response.content
    assert_problem(response, response.status_code)


def test_error_statuses_never_500(broken: LoupeServer) -> None:
    assert broken.metric("loupe_requests_total", 'route="/img",status="500"') == 0
