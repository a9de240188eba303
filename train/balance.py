"""Class balancing: per-class loss weights computed from the training labels.

Median frequency balancing is the SegNet paper's (after Eigen & Fergus): for each class c,
``freq(c) = pixels of c / total pixels of the images in which c is present`` and
``weight(c) = median over classes of freq / freq(c)``. Ignored pixels (``ignore_index``) are
not a class (they are left out of the counts and the median) but an image's total is all of its
pixels, void included: that is the definition behind the CamVid README's "recomputed on train"
column, which this reproduces to 4 decimals (excluding void from the totals moves Tree from
0.4217 to 0.4235 and Bicyclist from 8.8587 to 8.8193).

numpy only (no torch): the weights are computed once before training and stored in the
checkpoint, so a resumed run reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from edgeseg.errors import EdgesegError

if TYPE_CHECKING:
    from edgeseg.data import DatasetSpec, Sample

#: Valid ``method`` values of :func:`class_weights`.
METHODS = ("median", "sqrt-median", "inverse", "none")


def class_pixel_stats(
    samples: Sequence[Sample], spec: DatasetSpec, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Read every mask of ``samples``; return (counts, present_totals), both (K,) int64.

    ``counts[c]`` is the number of pixels labelled c (ignored pixels belong to no class).
    ``present_totals[c]`` is the total pixel count (ignored pixels included, see the module
    docstring) of the images in which c occurs at least once; 0 if c never occurs.
    Raises EdgesegError (from :func:`edgeseg.data.read_mask`) for unreadable masks or labels out
    of range.
    """
    from edgeseg.data.io import read_mask

    classes = spec.num_classes
    counts = np.zeros(classes, dtype=np.int64)
    present_totals = np.zeros(classes, dtype=np.int64)
    for sample in tqdm(samples, desc="class statistics", disable=not progress, leave=False):
        mask = read_mask(sample.mask, spec)
        # bincount over every value; labels >= num_classes (the ignore label) fall off the end.
        per_class = np.bincount(mask.ravel(), minlength=256)[:classes]
        if spec.ignore_index is not None and spec.ignore_index < classes:
            per_class[spec.ignore_index] = 0
        counts += per_class
        present_totals[per_class > 0] += mask.size
    return counts, present_totals


def class_weights(method: str, counts: np.ndarray, present_totals: np.ndarray) -> np.ndarray:
    """Per-class loss weights, (K,) float32, from :func:`class_pixel_stats`.

    - ``median``: median frequency balancing (see the module docstring). The median is taken
      over the classes that occur; classes that never occur get weight 0 (they cannot be
      learned from these labels, and a zero keeps them out of the loss normalisation).
    - ``sqrt-median``: the square root of the median-frequency weights. Median balancing pulls
      a small model's frequent classes into the rare ones (on CamVid it weights Bicyclist 59x
      Road, and Building pixels end up predicted as Pole or SignSymbol); the root keeps the
      order and halves the spread on a log scale.
    - ``inverse``: inverse frequency ``freq(c) = counts[c] / all counted pixels``, normalised as
      ``1 / (K_present * freq(c))``, so the pixel-weighted mean weight is 1; absent classes 0.
    - ``none``: all ones.

    Raises EdgesegError for an unknown method (listing the valid ones) or when no class occurs.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present_totals = np.asarray(present_totals, dtype=np.float64)
    if method not in METHODS:
        raise EdgesegError(f"class balancing {method!r} is not one of: {', '.join(METHODS)}")
    if method == "none":
        return np.ones(counts.shape, dtype=np.float32)
    present = counts > 0
    if not present.any():
        raise EdgesegError("no labelled pixels of any class to compute class weights from")
    weights = np.zeros(counts.shape, dtype=np.float64)
    if method in ("median", "sqrt-median"):
        freq = counts[present] / present_totals[present]
        weights[present] = np.median(freq) / freq
        if method == "sqrt-median":
            weights = np.sqrt(weights)
    else:
        freq = counts[present] / counts.sum()
        weights[present] = 1.0 / (present.sum() * freq)
    return weights.astype(np.float32)
