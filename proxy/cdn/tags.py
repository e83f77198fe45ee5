"""CDN tags: one per prefix a decision can sit on (the deployment, each parent folder, the
source itself), so one purge by tag empties exactly what a decision changed.

A tag is a short hash of the deployment's name and the prefix: stable across nodes and
restarts, the same for a source and for a folder of that name (a purge of a prefix means
"this and everything below"), and it shows neither a path nor any secret.
"""

from __future__ import annotations

import hashlib

from proxy.sources.paths import SourcePath, ancestors

TAG_CHARS = 16  # 64 bits: no collisions among any plausible number of sources


def tag_for(deployment: str, prefix: str) -> str:
    """The tag of ``prefix`` (``""``: the whole deployment)."""
    digest = hashlib.sha256(f"loupe\n{deployment}\n{prefix}".encode()).hexdigest()
    return ("d" if not prefix else "p") + digest[:TAG_CHARS]


def tags_for(deployment: str, path: SourcePath) -> list[str]:
    """Every tag an image of ``path`` carries: the source first, then its folders from the
    nearest, then the deployment."""
    return [tag_for(deployment, prefix) for prefix in reversed(ancestors(path))]


def tag_headers(tags: list[str]) -> dict[str, str]:
    """``Surrogate-Key`` (Fastly, Varnish xkey: space-separated) and ``Cache-Tag``
    (Cloudflare, Akamai: comma-separated)."""
    return {"Surrogate-Key": " ".join(tags), "Cache-Tag": ",".join(tags)}
