"""The unpooling kernel's index logic, run on the CPU, against PyTorch and a naive Python loop.

``unpool_host.cpp`` loops over the outputs calling the very ``__host__ __device__`` function the
CUDA kernel runs, compiled once with g++ and once as CUDA host code with nvcc. Both must equal
``max_unpool2d(decoder, max_pool2d(prepool, 2, 2, return_indices=True)[1], 2, 2,
output_size=prepool.shape[-2:])`` bit for bit: ties (ReLU zeros, small integers), NaN, -inf,
negative zero and odd sizes included.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgeseg.export.plugin import standalone
from edgeseg.export.plugin.build import find_nvcc

NAN = float("nan")


def naive_unpool(decoder: list, prepool: list) -> list:
    """Deliberately naive reference on nested lists, one window at a time.

    For each 2x2 window, scan row-major and take a value as the new maximum when it is greater
    than the current one or NaN (PyTorch's max_pool2d rule); write the decoder value there.
    Everything else, including rows/columns floor-mode pooling dropped, stays 0.
    """
    out = []
    for n, planes in enumerate(prepool):
        out.append([])
        for c, rows in enumerate(planes):
            h, w = len(rows), len(rows[0]) if rows else 0
            plane = [[0.0] * w for _ in range(h)]
            for py in range(h // 2):
                for px in range(w // 2):
                    best, best_value = None, None
                    for dy in (0, 1):
                        for dx in (0, 1):
                            y, x = 2 * py + dy, 2 * px + dx
                            value = rows[y][x]
                            if best is None or value > best_value or math.isnan(value):
                                best, best_value = (y, x), value
                    plane[best[0]][best[1]] = decoder[n][c][py][px]
            out[n].append(plane)
    return out


def torch_unpool(decoder: torch.Tensor, prepool: torch.Tensor) -> torch.Tensor:
    _, indices = F.max_pool2d(prepool, 2, 2, return_indices=True)
    return F.max_unpool2d(decoder, indices, 2, 2, output_size=prepool.shape[-2:])


def assert_bit_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    actual = np.asarray(actual, dtype=np.float32)
    expected = np.asarray(expected, dtype=np.float32)
    assert actual.shape == expected.shape
    mismatch = np.argwhere(actual.view(np.uint32) != expected.view(np.uint32))
    assert mismatch.size == 0, (
        f"{len(mismatch)} elements differ, first at {tuple(mismatch[0])}: "
        f"{actual[tuple(mismatch[0])]} vs {expected[tuple(mismatch[0])]}"
    )


@pytest.fixture(scope="module", params=["g++", "nvcc"])
def library(request: pytest.FixtureRequest):
    if request.param == "nvcc":
        if find_nvcc() is None:
            pytest.skip("nvcc not found on PATH, CUDA_HOME or /usr/local/cuda/bin")
        return standalone.load_library(standalone.host_library("nvcc"))
    if standalone.find_cxx() is None:
        pytest.skip("g++ (C++ compiler) not found")
    return standalone.load_library(standalone.host_library())


def _decoder_for(prepool: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, c, h, w = prepool.shape
    return torch.randn((n, c, h // 2, w // 2), generator=generator)


# --- the naive reference itself, on a case worked out by hand -------------------------------

# Channel 0: window (0,0) = [1 3 / 3 2] has its first maximum at (0,1); window (0,1) = [3 0 / 0 0]
# at (0,2); column 4 and row 2 were dropped by floor-mode pooling. Channel 1: an all-zero (ReLU)
# window keeps (0,0); [nan 1 / 2 nan] takes the last NaN, (1,3).
HAND_PREPOOL = [
    [
        [[1.0, 3.0, 3.0, 0.0, 7.0], [3.0, 2.0, 0.0, 0.0, 8.0], [5.0, 5.0, 5.0, 5.0, 9.0]],
        [[0.0, 0.0, NAN, 1.0, 4.0], [0.0, 0.0, 2.0, NAN, 4.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
    ]
]
HAND_DECODER = [[[[10.0, 20.0]], [[-1.0, 5.0]]]]
HAND_EXPECTED = [
    [
        [[0.0, 10.0, 20.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
        [[-1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
    ]
]


def test_naive_reference_on_a_hand_made_case() -> None:
    assert_bit_equal(np.array(naive_unpool(HAND_DECODER, HAND_PREPOOL)), np.array(HAND_EXPECTED))


def test_torch_agrees_with_the_hand_made_case() -> None:
    out = torch_unpool(torch.tensor(HAND_DECODER), torch.tensor(HAND_PREPOOL))
    assert_bit_equal(out.numpy(), np.array(HAND_EXPECTED))


def test_host_kernel_on_the_hand_made_case(library) -> None:
    out = standalone.unpool_host(library, np.array(HAND_DECODER), np.array(HAND_PREPOOL))
    assert_bit_equal(out, np.array(HAND_EXPECTED))


# --- random and tie-heavy tensors at odd sizes ---------------------------------------------

SHAPES = [(2, 3, 17, 11), (1, 2, 45, 60), (1, 1, 3, 2), (2, 2, 4, 4), (1, 4, 22, 30), (3, 1, 5, 7)]


def _prepool(kind: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
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
    if kind == "specials":  # NaN, +-inf, signed zeros
        choices = torch.tensor([NAN, float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0])
        return choices[torch.randint(0, len(choices), shape, generator=generator)]
    raise AssertionError(kind)


KINDS = ["random", "relu", "small-integers", "zero-planes", "constant", "specials"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_host_kernel_matches_max_unpool2d(library, kind: str, shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(zlib.crc32(f"{kind}{shape}".encode()))
    prepool = _prepool(kind, shape, generator)
    decoder = _decoder_for(prepool, generator)
    out = standalone.unpool_host(library, decoder.numpy(), prepool.numpy())
    assert_bit_equal(out, torch_unpool(decoder, prepool).numpy())


@pytest.mark.parametrize("kind", ["random", "relu", "small-integers", "specials"])
def test_host_kernel_matches_the_naive_loop_at_17x11(library, kind: str) -> None:
    generator = torch.Generator().manual_seed(17 * 11)
    prepool = _prepool(kind, (2, 3, 17, 11), generator)
    decoder = _decoder_for(prepool, generator)
    out = standalone.unpool_host(library, decoder.numpy(), prepool.numpy())
    assert_bit_equal(out, np.array(naive_unpool(decoder.tolist(), prepool.tolist())))


def test_decoder_signed_zero_and_negative_values_are_copied_exactly(library) -> None:
    prepool = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[5.0, 1.0], [2.0, 3.0]]]])
    decoder = torch.tensor([[[[-0.0]], [[-7.25]]]])
    out = standalone.unpool_host(library, decoder.numpy(), prepool.numpy())
    assert_bit_equal(out, torch_unpool(decoder, prepool).numpy())
    assert np.signbit(out[0, 0, 1, 1])


@pytest.mark.parametrize("shape", [(2, 3, 18, 24), (1, 2, 45, 60)])
def test_misaligned_buffers_take_the_scalar_path(library, shape: tuple[int, ...]) -> None:
    # Even W normally takes the paired path (2-element loads and stores, as on the GPU); buffers
    # one element off 8-byte alignment must give the same result through the scalar path.
    generator = torch.Generator().manual_seed(5)
    prepool = _prepool("relu", shape, generator)
    decoder = _decoder_for(prepool, generator)
    numel = prepool.numel()
    shifted = np.empty(numel + 1, dtype=np.float32)[1:].reshape(shape)
    shifted[...] = prepool.numpy()
    assert shifted.ctypes.data % 8 != 0
    out = standalone.unpool_host(library, decoder.numpy(), shifted)
    assert_bit_equal(out, torch_unpool(decoder, prepool).numpy())


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 1, 5), (1, 2, 4, 1)])
def test_inputs_too_small_to_pool_give_zeros(library, shape: tuple[int, ...]) -> None:
    # max_pool2d refuses these (output size 0), so the naive loop is the reference: all zeros.
    n, c, h, w = shape
    prepool = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    decoder = np.zeros((n, c, h // 2, w // 2), dtype=np.float32)
    out = standalone.unpool_host(library, decoder, prepool)
    assert_bit_equal(out, np.array(naive_unpool(decoder.tolist(), prepool.tolist())))
    assert not out.any()


def test_empty_batch_is_a_no_op(library) -> None:
    out = standalone.unpool_host(library, np.zeros((0, 3, 2, 2)), np.zeros((0, 3, 4, 4)))
    assert out.shape == (0, 3, 4, 4)


def test_negative_sizes_are_rejected(library) -> None:
    buffer = np.zeros(4, dtype=np.float32)
    pointer = buffer.ctypes.data
    assert library.edgeseg_unpool_host_f32(pointer, pointer, pointer, 1, 1, -2, 2) == -1
