"""Loupe: an on-the-fly image proxy that sits behind a CDN as its origin."""

__version__ = "0.1.0"
