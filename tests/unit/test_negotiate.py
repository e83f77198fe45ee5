"""Output-format negotiation: the Accept header, alpha, animation and lossless-only policies."""

from __future__ import annotations

import pytest

from proxy.negotiate import AcceptClass, FormatChoice, choose_format, parse_accept

NONE = AcceptClass(avif=False, webp=False)
WEBP = AcceptClass(avif=False, webp=True)
AVIF = AcceptClass(avif=True, webp=False)
BOTH = AcceptClass(avif=True, webp=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, NONE),
        ("", NONE),
        ("*/*", NONE),
        ("image/*", NONE),
        ("image/*,*/*;q=0.8", NONE),
        ("image/avif", AVIF),
        ("image/webp", WEBP),
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", BOTH),
        ("IMAGE/AVIF , Image/WebP", BOTH),
        ("image/avif;q=0,image/webp", WEBP),
        ("image/avif; q=0.0, image/webp;q=0", NONE),
        ("image/avif;Q=0", NONE),
        ("image/avif;q = 0", NONE),
        ("image/avif;q=0.001", AVIF),
        ("image/avif;q=junk", NONE),
        ("image/webp;q=0.5;level=1", WEBP),
        ("text/html,application/xhtml+xml,image/webp;q=0.9", WEBP),
    ],
)
def test_parse_accept(header: str | None, expected: AcceptClass) -> None:
    assert parse_accept(header) == expected


def test_accept_class_key_names_the_variant() -> None:
    assert NONE.key == ""
    assert WEBP.key == "webp"
    assert AVIF.key == "avif,"
    assert BOTH.key == "avif,webp"
    assert len({NONE.key, WEBP.key, AVIF.key, BOTH.key}) == 4


def choose(
    requested: str = "auto",
    accept: AcceptClass = NONE,
    *,
    alpha: bool = False,
    animated: bool = False,
    lossy: bool = True,
) -> FormatChoice:
    return choose_format(
        requested,  # type: ignore[arg-type]
        accept,
        has_alpha=alpha,
        animated=animated,
        lossy_allowed=lossy,
    )


@pytest.mark.parametrize(
    ("accept", "alpha", "expected"),
    [
        (BOTH, False, FormatChoice("avif", False, False)),
        (BOTH, True, FormatChoice("avif", False, False)),
        (AVIF, False, FormatChoice("avif", False, False)),
        (WEBP, False, FormatChoice("webp", False, False)),
        (WEBP, True, FormatChoice("webp", False, False)),
        (NONE, False, FormatChoice("jpeg", False, False)),
        (NONE, True, FormatChoice("png", True, False)),
    ],
)
def test_auto_prefers_avif_then_webp_then_jpeg_or_png_for_alpha(
    accept: AcceptClass, alpha: bool, expected: FormatChoice
) -> None:
    assert choose("auto", accept, alpha=alpha) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (BOTH, FormatChoice("webp", False, True)),
        (WEBP, FormatChoice("webp", False, True)),
        (AVIF, FormatChoice("gif", False, True)),
        (NONE, FormatChoice("gif", False, True)),
    ],
)
def test_auto_keeps_animation_in_a_format_that_animates(
    accept: AcceptClass, expected: FormatChoice
) -> None:
    assert choose("auto", accept, animated=True) == expected
    assert choose("auto", accept, animated=True, alpha=True) == expected


@pytest.mark.parametrize(
    ("requested", "animated", "expected"),
    [
        ("jpeg", False, FormatChoice("jpeg", False, False)),
        ("png", False, FormatChoice("png", True, False)),
        ("webp", False, FormatChoice("webp", False, False)),
        ("avif", False, FormatChoice("avif", False, False)),
        ("gif", False, FormatChoice("gif", False, False)),
        ("gif", True, FormatChoice("gif", False, True)),
        ("webp", True, FormatChoice("webp", False, True)),
        ("jpeg", True, FormatChoice("jpeg", False, False, "animation-dropped")),
        ("avif", True, FormatChoice("avif", False, False, "animation-dropped")),
        ("png", True, FormatChoice("png", True, False, "animation-dropped")),
    ],
)
def test_an_explicit_format_is_honoured_regardless_of_accept(
    requested: str, animated: bool, expected: FormatChoice
) -> None:
    for accept in (NONE, WEBP, AVIF, BOTH):
        assert choose(requested, accept, animated=animated) == expected


@pytest.mark.parametrize(
    ("requested", "accept", "animated", "expected"),
    [
        ("auto", NONE, False, FormatChoice("png", True, False)),
        ("auto", AVIF, False, FormatChoice("png", True, False)),
        ("auto", WEBP, False, FormatChoice("webp", True, False)),
        ("auto", BOTH, True, FormatChoice("webp", True, True)),
        ("auto", NONE, True, FormatChoice("png", True, False)),
        ("png", BOTH, False, FormatChoice("png", True, False)),
        ("webp", NONE, True, FormatChoice("webp", True, True)),
        ("jpeg", BOTH, False, FormatChoice("png", True, False, "policy-lossless:jpeg->png")),
        ("avif", BOTH, False, FormatChoice("png", True, False, "policy-lossless:avif->png")),
        ("gif", NONE, True, FormatChoice("png", True, False, "policy-lossless:gif->png")),
    ],
)
def test_lossless_only_policies_never_go_lossy(
    requested: str, accept: AcceptClass, animated: bool, expected: FormatChoice
) -> None:
    choice = choose(requested, accept, animated=animated, lossy=False)
    assert choice == expected
    assert choice.lossless
    assert choice.format in ("png", "webp")


@pytest.mark.parametrize("accept", [NONE, WEBP, AVIF, BOTH])
def test_an_accept_class_is_rebuilt_from_its_key(accept: AcceptClass) -> None:
    assert AcceptClass.from_key(accept.key) == accept
