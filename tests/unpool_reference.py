"""The tests' one unpooling reference, and the one bit-for-bit comparison.

Importable as ``unpool_reference`` (pytest puts ``tests/`` on ``sys.path``). Used by the model's
``MaxUnpool2x2`` tests, the ONNX block tests and the plugin kernel's host and GPU tests, so all
of them check the same rule:

    unpool(D, P)[n, c, y, x] = D[n, c, y // 2, x // 2] where (y, x) is the position chosen in
    P's 2x2 window (rows and columns floor-mode pooling drops stay 0), else 0.

The position chosen is PyTorch's ``max_pool2d`` rule: scanning the window in row-major order, a
value becomes the new maximum when it is greater than the current one or NaN
(``val > maxval || isnan(val)`` in PyTorch's CPU and CUDA kernels). So ties keep the first
position, a NaN wins over every number, and among several NaNs the LAST one wins (checked
against ``max_pool2d`` in ``tests/export/test_plugin_host.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

NAN = float("nan")

#: Prepool tensors that stress the window rule: ties (ReLU zeros, small integers, constants),
#: all-zero planes, and special values.
PREPOOL_KINDS = ("random", "relu", "small-integers", "zero-planes", "constant", "specials")


def naive_unpool(decoder: Any, prepool: Any) -> np.ndarray:
    """Deliberately naive reference: one 2x2 window at a time, in Python floats.

    ``decoder`` (N, C, H // 2, W // 2) and ``prepool`` (N, C, H, W): numpy arrays, CPU tensors
    or nested lists. Returns a numpy array of ``decoder``'s dtype (float64 for lists). No
    vectorised numpy, no PyTorch: it cannot share a bug with the code it checks.
    """
    decoder, prepool = np.asarray(decoder), np.asarray(prepool)
    n, c, h, w = prepool.shape
    out = np.zeros(prepool.shape, dtype=decoder.dtype)
    for b in range(n):
        for ch in range(c):
            for py in range(h // 2):
                for px in range(w // 2):
                    best, best_value = None, 0.0
                    for dy in (0, 1):
                        for dx in (0, 1):
                            y, x = 2 * py + dy, 2 * px + dx
                            value = float(prepool[b, ch, y, x])
                            if best is None or value > best_value or math.isnan(value):
                                best, best_value = (y, x), value
                    out[b, ch, best[0], best[1]] = decoder[b, ch, py, px]
    return out


def torch_unpool(decoder: torch.Tensor, prepool: torch.Tensor) -> torch.Tensor:
    """What SegNet computes: ``max_unpool2d`` at ``max_pool2d``'s indices, at prepool's size."""
    _, indices = F.max_pool2d(prepool, 2, 2, return_indices=True)
    return F.max_unpool2d(decoder, indices, 2, 2, output_size=prepool.shape[-2:])


def make_prepool(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A float32 CPU prepool tensor of one of :data:`PREPOOL_KINDS`.

    ``specials`` draws from NaN, +-inf, +-0.0 and +-1; ``infinities-and-zeros`` is the same
    without NaN (for ONNX Runtime, whose ArgMax does not follow PyTorch's NaN rule).
    """
    if kind == "random":
        return torch.randn(shape, generator=generator)
    if kind == "relu":  # many all-zero windows, as after a ReLU
        return torch.relu(torch.randn(shape, generator=generator) - 0.5)
    if kind == "small-integers":  # ties everywhere
        return torch.randint(0, 3, shape, generator=generator).float()
    if kind == "zero-planes":  # whole (n, c) planes of zeros beside random ones
        x = torch.relu(torch.randn(shape, generator=generator))
        x[:, ::2] = 0.0
        return x
    if kind == "constant":
        return torch.full(shape, -1.5)
    if kind in ("specials", "infinities-and-zeros"):
        values = [float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0]
        choices = torch.tensor([NAN, *values] if kind == "specials" else values)
        return choices[torch.randint(0, len(choices), shape, generator=generator)]
    raise AssertionError(kind)


def decoder_for(prepool: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random decoder tensor of the pooled size of ``prepool``."""
    n, c, h, w = prepool.shape
    return torch.randn((n, c, h // 2, w // 2), generator=generator)


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def assert_bit_equal(actual: Any, expected: Any) -> None:
    """Same shape, same dtype, and every element the same bits.

    numpy arrays or torch tensors (any device; a tensor's dtype is compared as numpy's), in any
    mix. Stricter than ``==``: -0.0 and +0.0 differ, and NaN equals NaN only with the same
    payload, so a kernel that loses a sign bit or makes up a NaN fails.
    """
    actual, expected = _as_numpy(actual), _as_numpy(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    bits = _UNSIGNED[actual.dtype.itemsize]
    mismatch = np.argwhere(actual.view(bits) != expected.view(bits))
    if mismatch.size:
        first = tuple(int(i) for i in mismatch[0])
        raise AssertionError(
            f"{len(mismatch)} elements differ, first at {first}: "
            f"{actual[first]} vs {expected[first]}"
        )


def _as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.ascontiguousarray(array)
