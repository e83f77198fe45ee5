"""The durable store: every decision a human or model made about a source. Caches hold what
can be recomputed; this holds what cannot."""

from proxy.stores.base import StoreError
from proxy.stores.open import Store, open_store

__all__ = ["Store", "StoreError", "open_store"]
