"""Curation: what humans decide about a source and what it changes, below HTTP.

``review`` applies a reviewer's decision on a queued item, ``overrides`` stores a human crop
beside its feedback in one transaction (``put_override``, for the admin API and a reviewer's
pick alike). Nothing here imports ``proxy.server``: the admin API and the reviewers' page are
thin HTTP handlers over these functions, and errors are domain ``LoupeError``s that the edge
maps to problem+json.
"""
