"""The image pipeline, one small step per file, run in the order ``pipeline.STEPS`` lists.

prepare (header + geometry + format) -> load (shrink-on-load) -> orient -> colorspace
-> focus (choose the crop window) -> crop -> scale -> pad -> flatten -> finalize (encode).
"""
