"""Bring every source to 8-bit sRGB (alpha kept): embedded ICC profiles, CMYK and
16-bit sources included, so browsers that ignore profiles still show the right colours."""

from __future__ import annotations

import pyvips

from proxy.processing.plan import RenderPlan

# Relative colorimetric keeps in-gamut colours as they are; perceptual lets lcms rescale
# the black point of print (CMYK) profiles, which tints every colour (blue off by ~12).
INTENT = "relative"


def _to_srgb(frame: pyvips.Image) -> pyvips.Image:
    if frame.get_typeof("icc-profile-data"):
        try:
            return frame.icc_transform("srgb", embedded=True, intent=INTENT, depth=8)
        except pyvips.Error:
            pass  # a broken embedded profile: fall back to the colourspace's default
    if frame.interpretation == "cmyk":
        return frame.icc_transform("srgb", input_profile="cmyk", intent=INTENT, depth=8)
    if frame.interpretation != "srgb" or frame.format != "uchar":
        converted = frame.colourspace("srgb")
        return converted if converted.format == "uchar" else converted.cast("uchar")
    return frame


def colorspace(frame: pyvips.Image, plan: RenderPlan) -> tuple[pyvips.Image, RenderPlan]:
    srgb = _to_srgb(frame)
    if srgb.bands == 2:  # grey + alpha left by a b-w source without colourspace work
        srgb = srgb.colourspace("srgb")
    return srgb, plan
