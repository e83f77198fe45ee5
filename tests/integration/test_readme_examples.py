"""The README's example URLs work as written: every ``/img/...`` URL it shows is fetched
from a server over a folder holding the files the README says to put there."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pyvips

from tests.support import REPO, LoupeServer

# What the README asks the reader to put in ./images, as real files of the right kind.
FILES = {"shoe.jpg": "generated/progressive_kodim07.jpg", "logo.png": "skimage/logo.png"}


def readme_urls() -> list[str]:
    text = (REPO / "README.md").read_text()
    urls = re.findall(r"(?:^|`)(/img/[^`\s]+)", text, re.MULTILINE)
    # Placeholders and paths of other setups (origins, admin previews) are not examples.
    return [url for url in dict.fromkeys(urls) if re.fullmatch(r"/img/[\w.-]+\.\w+(\?\S*)?", url)]


def test_the_readme_example_urls_work_as_written(data_root: Path, tmp_path: Path) -> None:
    urls = readme_urls()
    first = urls[0]
    assert first.startswith("/img/shoe.jpg?w=600&h=400&fit=crop"), first  # the opening example
    assert len(urls) >= 9
    text = (REPO / "README.md").read_text()
    assert "Put `shoe.jpg` and `logo.png` in `./images`" in text
    root = tmp_path / "images"
    root.mkdir()
    for name, source in FILES.items():
        shutil.copy(data_root / source, root / name)
    server = LoupeServer(root, tmp_path / "data")
    try:
        for url in urls:
            response = httpx.get(server.url + url, timeout=60, headers={"Accept": "image/webp"})
            assert response.status_code == 200, (url, response.text[:300])
        opening = httpx.get(server.url + first, timeout=60)
        out = pyvips.Image.new_from_buffer(opening.content, "")
        assert (out.width, out.height) == (600, 400)
    finally:
        server.stop()
