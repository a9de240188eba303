"""The ``entropy`` calibration threshold: ONNX Runtime's search, without its per-bin Python loops.

ONNX Runtime's ``HistogramCollector.get_entropy_threshold`` tries every symmetric threshold of a
tensor's histogram (about ``num_bins / 2`` of them: ~900 for the 2048 bins edgeseg asks for) and
builds each candidate's quantized distribution with Python loops over the 255 quantized bins
(``sum()`` over numpy slices, ~11 million calls for a tiny SegNet): ~3 s per tensor on a 2-core
CPU, so over a minute for the tiny test model and minutes for a real SegNet's ~60 calibrated
tensors. :func:`entropy_threshold` computes the same candidates with cumulative sums and one
reshape per candidate, then scores each with ONNX Runtime's own ``smooth_distribution`` and
``entropy`` on the same arrays, so its thresholds are ONNX Runtime's, bit for bit (a test holds
the two equal), about ten times faster.
"""

from __future__ import annotations

import numpy as np


def entropy_threshold(
    histogram: tuple[np.ndarray, ...], num_quantized_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) threshold of one tensor, as ONNX Runtime's ``get_entropy_threshold``.

    ``histogram``: the collector's record, (counts (B,) int64, edges (B + 1,), min value,
    max value, ...). The candidate thresholds are the edges ``zero - i`` and ``zero + i + 1``
    around the middle bin for ``i`` from ``num_quantized_bins // 2`` to ``B // 2``; the one
    whose quantized distribution is closest (KL divergence) wins, clipped to the values seen.
    """
    from onnxruntime.quantization.calibrate import entropy
    from onnxruntime.quantization.quant_utils import smooth_distribution

    hist, edges, lowest, highest = histogram[:4]
    num_bins = hist.size
    zero = num_bins // 2
    half = num_quantized_bins // 2
    below = np.concatenate(([0], np.cumsum(hist)))  # below[k] = hist[:k].sum(), exact in int64
    divergence = np.zeros(zero - half + 1)
    for i in range(half, zero + 1):
        start, end = zero - i, min(zero + i + 1, num_bins)
        sliced = hist[start:end]
        # The reference p: the slice, with the outliers on either side folded into its ends.
        p = sliced.copy()
        p[0] += below[start]
        p[-1] += below[-1] - below[end]
        # The candidate q: the slice merged into the quantized bins (the remainder goes to the
        # last), each spread evenly over the bins of its group where p is not zero.
        merged = sliced.size // num_quantized_bins
        body = num_quantized_bins * merged
        quantized = sliced[:body].reshape(num_quantized_bins, merged).sum(axis=1, dtype=np.int64)
        quantized[-1] += sliced[body:].sum()
        nonzero = (p[:body] != 0).reshape(num_quantized_bins, merged).sum(axis=1)
        spread = np.zeros(num_quantized_bins, dtype=np.int64)
        spread[nonzero != 0] = quantized[nonzero != 0] / nonzero[nonzero != 0]  # truncated
        q = np.zeros(p.size, dtype=np.int64)
        q[:body] = np.repeat(spread, merged)
        p_smooth, q_smooth = smooth_distribution(p), smooth_distribution(q)
        if p_smooth is None or q_smooth is None:
            divergence[i - half] = np.inf
        else:
            divergence[i - half] = np.array(entropy(p_smooth, q_smooth), dtype=edges.dtype)
    best = int(np.argmin(divergence)) + half
    low, high = edges[zero - best], edges[min(zero + best + 1, num_bins)]
    if low < lowest:
        low = lowest
    if high > highest:
        high = highest
    return low, high
