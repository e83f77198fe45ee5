"""The image pipeline, one small step per file, run by ``pipeline.render``:

validate (bytes + header) -> prepare (geometry + format + policy + encoding) -> analyse
(smart and faces crops) -> load (shrink-on-load) -> the pixel steps of ``pipeline.STEPS``:
orient -> turn -> colorspace -> focus (choose the crop window) -> crop -> scale -> effects
-> pad -> flatten -> encode (the plan's strategy: ``finalize.FixedEncode``, or
``compress.PredictedEncode`` / ``compress.SearchedEncode`` for ``q=auto``).
"""
