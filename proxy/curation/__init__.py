"""Curation: what humans decide about a source and what it changes, below HTTP.

- ``review``: a reviewer's decision on a queued item (close it, keep the feedback beside the
  AI output it judged, change what is served) in one transaction.
- ``overrides``: human crops; ``put_override`` stores one with its feedback row in one
  transaction, for the admin API and a reviewer's pick alike.
- ``decisions``: where the request path meets the store (the memoised decision snapshot of
  a source, and what a served render leaves behind: lane jobs, crop reviews, tallies).
- ``alt``: alt text a user writes, and the feedback it leaves.
- ``thresholds``: the calibration report over human decisions, and applying its thresholds.
- ``facts``: what the store knows of a source beside its pixels (alt text, moderation, QA,
  duplicates), as ``/meta`` and the admin API show it.

Nothing here imports ``proxy.server``: the admin API and the reviewers' page are thin HTTP
handlers over these, and errors are domain ``LoupeError``s that the edge maps to
problem+json.
"""
