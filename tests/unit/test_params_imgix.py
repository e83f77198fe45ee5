"""imgix habits in the URL: new names are folded into Loupe's own canonical form (so
equivalent URLs share a cache entry), bad values are a clear 400, and tracking parameters
are dropped before anything reads the query."""

from __future__ import annotations

import pytest

from proxy.errors import BadParameter
from proxy.params import drop_ignored, parse_params


def canon(query: str) -> str:
    return parse_params(query).canonical_query("smart")


@pytest.mark.parametrize(
    ("imgix", "loupe"),
    [
        ("fm=jpg&w=300", "fm=jpeg&w=300"),
        ("auto=format,compress&w=300", "w=300"),
        ("auto=format&auto=compress&w=300", "w=300"),
        ("auto=format&fm=png&w=300", "w=300"),  # negotiation wins over fm, as in imgix
        ("auto=compress&q=60", "q=60"),  # an explicit q wins over compress
        ("fit=max&w=300&upscale=1", "w=300"),  # max never enlarges
        ("fit=min&w=300&h=200&upscale=1", "fit=crop&h=200&w=300"),
        ("ar=16:9&fit=crop&w=320", "fit=crop&h=180&w=320"),
        ("ar=32:18&fit=crop&h=180", "fit=crop&h=180&w=320"),
        ("ar=4:3&fit=crop&w=400&h=100", "fit=crop&h=100&w=400"),  # both sides win over ar
        ("ar=1.91:1&fit=min&w=1200", "fit=crop&h=628&w=1200"),
        ("flip=vh", "flip=hv"),
        ("rot=0&blur=0&sharp=0", ""),
    ],
)
def test_imgix_spellings_share_loupes_canonical_form(imgix: str, loupe: str) -> None:
    assert canon(imgix) == loupe


def test_new_values_reach_the_parameters() -> None:
    params = parse_params("fm=pjpg&blur=15&sharp=40&rot=270&flip=h&ar=3:2&fit=crop")
    assert params.fm == "jpeg" and params.progressive
    assert (params.blur, params.sharp, params.rotate, params.flip) == (15, 40, 270, "h")
    assert params.aspect == (3.0, 2.0) and params.width is None
    assert canon("fm=pjpg&ar=6:4&fit=crop") == "ar=3%3A2&fit=crop&fm=pjpg"
    assert parse_params("rot=90").turned and not parse_params("w=1").turned


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("rot=45", "rot must be one of 0, 90, 180, 270"),
        ("flip=x", "flip must be one of h, v, hv"),
        ("blur=101", "blur must be between 0 and 100"),
        ("sharp=101", "sharp must be between 0 and 100"),
        ("ar=16:9&w=300", "ar needs fit=crop"),
        ("ar=16x9&fit=crop", "ar must be W:H"),
        ("ar=0:9&fit=crop", "ar must be between"),
        ("ar=1:1000&fit=crop", "ar must be between 1:100 and 100:1"),
        ("ar=1:100&fit=crop&w=8192", "exceeds"),
        ("auto=enhance", "auto must be one of format, compress"),
        ("fm=pjpeg", "fm must be one of"),
        ("fit=cover", "fit must be one of clip, crop, fill, scale, max, min"),
        ("dpr=0x2", "dpr must be between 1 and 4"),
        ("bg=fff%0A", "bg must be a hex colour"),
    ],
)
def test_bad_values_are_400_naming_the_rule(query: str, fragment: str) -> None:
    with pytest.raises(BadParameter) as raised:
        parse_params(query)
    assert fragment in raised.value.detail


def test_unknown_names_stay_a_400_that_lists_the_known_ones() -> None:
    with pytest.raises(BadParameter) as raised:
        parse_params("w=10&width=10")
    assert "unknown parameter 'width'" in raised.value.detail
    for name in ("ar", "auto", "blur", "sharp", "rot", "flip", "fit", "fm"):
        assert name in raised.value.detail


@pytest.mark.parametrize(
    ("query", "kept", "dropped"),
    [
        ("w=300&utm_source=x&ixlib=js-3.8", "w=300", ("utm_source", "ixlib")),
        ("utm_campaign=a%20b&w=1&utm_medium=", "w=1", ("utm_campaign", "utm_medium")),
        ("ut%6D_source=x&w=1", "w=1", ("utm_source",)),  # an encoded name is still tracking
        ("UTM_Source=x&ixid=M3w&w=1", "w=1", ("UTM_Source", "ixid")),  # any case; Unsplash ids
        ("w=1&s=abc", "w=1&s=abc", ()),
        ("", "", ()),
    ],
)
def test_tracking_parameters_are_dropped_and_the_rest_kept_as_sent(
    query: str, kept: str, dropped: tuple[str, ...]
) -> None:
    assert drop_ignored(query) == (kept, dropped)


def test_configured_names_and_prefixes_are_dropped_too() -> None:
    query = "fbclid=1&w=2&mc_cid=3&mc_eid=4&keep=5"
    assert drop_ignored(query, ("fbclid", "mc_*")) == ("w=2&keep=5", ("fbclid", "mc_cid", "mc_eid"))
