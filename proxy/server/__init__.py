"""The HTTP edge: starlette routes, problem+json, telemetry, and the worker pool."""
