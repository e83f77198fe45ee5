"""Redirect targets are paths on this server, whatever the request's Host made of them."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from proxy.server.redirects import relative_location

LOCATIONS = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["http", "https", "HTTP", "javascript", "ftp"]),
        st.text(min_size=1, max_size=20),
        st.text(max_size=20),
    ),
    st.builds(lambda path: "//" + path, st.text(max_size=30)),
    st.builds(lambda path: "/\\" + path, st.text(max_size=30)),
)


def test_known_shapes() -> None:
    assert relative_location("http://evil.example/admin/") == "/admin/"
    assert relative_location("/admin/") == "/admin/"
    assert relative_location("//evil.example/x") == "/x"
    assert relative_location("/\\evil.example") == "/evil.example"
    assert relative_location("https://a:8443/b?c=1#f") == "/b?c=1#f"


@given(LOCATIONS)
def test_never_another_site(location: str) -> None:
    result = relative_location(location)
    parts = urlsplit(result)
    assert parts.scheme == "" and parts.netloc == "", result
    assert result.startswith("/") and not result.startswith(("//", "/\\")), result
