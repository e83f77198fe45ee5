"""Alt text drafts from a vision-language model: the hints it may use (:mod:`.context`), the
picture it sees (:mod:`.image`), how sure it was (:mod:`.confidence`) and the HTTP client
(:mod:`.client`). Publishing, review and storage live with the callers."""

from proxy.alt.client import (
    AltDraft,
    AltTextError,
    ImageUnreadable,
    VlmBadResponse,
    VlmClient,
    VlmDisabled,
    VlmRateLimited,
    VlmTimeout,
    VlmUnavailable,
    build_messages,
)
from proxy.alt.context import AltContext, context_for, read_sidecar
from proxy.alt.image import as_data_url

__all__ = [
    "AltContext",
    "AltDraft",
    "AltTextError",
    "ImageUnreadable",
    "VlmBadResponse",
    "VlmClient",
    "VlmDisabled",
    "VlmRateLimited",
    "VlmTimeout",
    "VlmUnavailable",
    "as_data_url",
    "build_messages",
    "context_for",
    "read_sidecar",
]
