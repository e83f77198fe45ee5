"""``canonical_path``: one spelling per source, and nothing that could leave a folder."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.errors import LoupeError, SourceNotFound
from proxy.sources.paths import (
    MAX_PATH_BYTES,
    BadPath,
    PathTooLong,
    ancestors,
    canonical_path,
    canonical_prefix,
)

NAME = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
    min_size=1,
    max_size=12,
).filter(lambda s: "/" not in s and "\\" not in s and "%" not in s)


def accepted(raw: str) -> str | None:
    try:
        return canonical_path(raw)
    except LoupeError:
        return None


@given(st.text(max_size=40))
def test_canonical_is_a_fixed_point_and_never_has_odd_segments(raw: str) -> None:
    path = accepted(raw)
    if path is None:
        return
    assert canonical_path(path) == path
    assert unicodedata.is_normalized("NFC", path)
    segments = path.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert "\\" not in path and "\x00" not in path


@given(st.lists(NAME, min_size=1, max_size=4), st.data())
def test_every_respelling_of_a_path_has_the_same_canonical_form(
    names: list[str], data: st.DataObject
) -> None:
    plain = "/".join(names)
    canonical = accepted(plain)
    if canonical is None:
        return
    noise = st.sampled_from(["", "/", "./", "//", "/./"])
    respelled = data.draw(noise) + "".join(
        name + data.draw(st.sampled_from(["/", "//", "/./", "/././"])) for name in names[:-1]
    )
    respelled += names[-1] + data.draw(st.sampled_from(["", "/", "//", "/."]))
    assert canonical_path(respelled) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        "a/../b.png",
        "a/..",
        "a\\b.png",
        "..\\x.png",
        "a\x00.png",
        "a\n.png",
        "a\u202egnp.exe",  # right-to-left override
        "a\u200b.png",  # zero-width space
        "\uff0e\uff0e/secret",  # fullwidth full stops: ".." under NFKC
        "a\uff0fb.png",  # fullwidth solidus: "/" under NFKC
        "%2e%2e/secret",  # what is left of %252e%252e after one decoding
        "a%2Fb.png",
        "a%5c..%5cb.png",
        "bad\ufffd.png",  # undecodable UTF-8, as the server decodes it
    ],
)
def test_refused_spellings(raw: str) -> None:
    with pytest.raises(BadPath):
        canonical_path(raw)


@pytest.mark.parametrize("raw", ["", "/", "//", "./", "a.png.", "a.png ", " a.png", "x" * 256])
def test_names_no_source_can_have_are_404(raw: str) -> None:
    with pytest.raises(SourceNotFound):
        canonical_path(raw)


def test_a_long_path_is_414_and_a_segment_up_to_255_bytes_is_fine() -> None:
    assert canonical_path("x" * 255) == "x" * 255
    with pytest.raises(PathTooLong):
        canonical_path("/".join(["abcdefgh"] * (MAX_PATH_BYTES // 9 + 1)))


def test_nfd_is_folded_to_nfc() -> None:
    assert canonical_path("cafe\u0301.png") == "caf\u00e9.png"


def test_prefixes_and_ancestors() -> None:
    assert canonical_prefix(" /shop/./shoes/ ") == "shop/shoes"
    assert canonical_prefix("/") is None
    assert ancestors(canonical_path("a/b/c.png")) == ["", "a", "a/b", "a/b/c.png"]
