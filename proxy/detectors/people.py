"""Person regions: the salient blob around an uncertain face, as the person's body.

YuNet scores small, turned or lying faces low (0.45-0.8, "possible faces"); the box it
gives is the face alone. When the saliency mask (u2netp) has a connected blob that touches
such a face and is person-sized (not the whole scene, not a sliver far bigger than a body
around that face), the blob's box joined with the face is a *person region*: cropping then
keeps the body whole where it can, as an uncertain person weighted by the face's score.

Pure numpy on the saliency mask (64 px on the long side) and a libvips blob labelling:
well under a millisecond per source.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyvips

from proxy.geometry import Box
from proxy.imaging import to_plane

SALIENT = 128  # of the 0-255 mask: the detector's 0.5 threshold of the normalised map
MAX_SHARE = 0.35  # a blob over this share of the image is the scene, not one person
MAX_BODY = 10.0  # a body is at most this many face sizes long (lying down included)


def blob_labels(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int32]:
    """4-connected blob labels of a boolean mask (background included, dense from 0)."""
    height, width = mask.shape
    flat = (mask.astype(np.uint8) * 255).tobytes()
    labelled = pyvips.Image.new_from_memory(flat, width, height, 1, "uchar").labelregions()
    labels: npt.NDArray[np.int32] = to_plane(labelled)
    return labels


def person_regions(
    mask: npt.NDArray[np.uint8],
    image_size: tuple[int, int],
    faces: Sequence[Box],
) -> list[Box]:
    """One region per face whose salient blob looks like a body around it: a person's body
    in the pixels of the image the mask covers (``image_size``: its width, height), scored
    as the face it grew from."""
    if mask.ndim != 2 or mask.size == 0 or not faces:
        return []
    salient = mask >= SALIENT
    if not salient.any():
        return []
    rows, cols = mask.shape
    width, height = image_size
    sx, sy = width / cols, height / rows
    labels = blob_labels(salient)
    found = []
    for face in faces:
        # The mask cells the face covers, one cell around: a blob touching them is its body.
        c0 = max(int(face.x / sx) - 1, 0)
        r0 = max(int(face.y / sy) - 1, 0)
        c1 = min(int((face.x + face.w) / sx) + 2, cols)
        r1 = min(int((face.y + face.h) / sy) + 2, rows)
        near = labels[r0:r1, c0:c1][salient[r0:r1, c0:c1]]
        if near.size == 0:
            continue
        body = np.isin(labels, np.unique(near)) & salient
        if body.mean() > MAX_SHARE:
            continue
        ys, xs = np.nonzero(body)
        x0 = min(xs.min() * sx, face.x)
        y0 = min(ys.min() * sy, face.y)
        x1 = max((xs.max() + 1) * sx, face.x + face.w)
        y1 = max((ys.max() + 1) * sy, face.y + face.h)
        size = max(face.w, face.h, sx, sy)
        if max(x1 - x0, y1 - y0) > MAX_BODY * size:
            continue
        found.append(Box(x0, y0, x1 - x0, y1 - y0, face.score))
    return found
