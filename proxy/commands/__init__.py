"""The CLI's longer commands (``loupe worker``, ``ingest``, ``feedback replay``): above the
construction layer (:mod:`proxy.runtime`), beside the HTTP edge (:mod:`proxy.server`), and
imported by :mod:`proxy.cli` only."""
