"""The HTTP edge: starlette routes, problem+json, and the worker pool. Only the entry points
(``proxy.cli``, ``proxy.__main__``) import it (``tests/unit/test_layering.py``)."""
