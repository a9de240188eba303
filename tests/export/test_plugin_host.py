"""The unpooling kernel's index logic, run on the CPU, against PyTorch and a naive Python loop.

``unpool_host.cpp`` loops over the outputs calling the very ``__host__ __device__`` function the
CUDA kernel runs, compiled once with g++ and once as CUDA host code with nvcc. Both must equal
``max_unpool2d(decoder, max_pool2d(prepool, 2, 2, return_indices=True)[1], 2, 2,
output_size=prepool.shape[-2:])`` bit for bit: ties (ReLU zeros, small integers), NaN, -inf,
negative zero and odd sizes included.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from gpu_helpers import missing
from unpool_reference import (
    NAN,
    PREPOOL_KINDS,
    assert_bit_equal,
    decoder_for,
    make_prepool,
    naive_unpool,
    torch_unpool,
)

from edgeseg.export.plugin import standalone
from edgeseg.export.plugin.build import find_nvcc


@pytest.fixture(scope="module", params=["g++", "nvcc"])
def library(request: pytest.FixtureRequest):
    if request.param == "nvcc":
        if find_nvcc() is None:
            missing("nvcc not found on PATH, CUDA_HOME or /usr/local/cuda/bin")
        return standalone.load_library(standalone.host_library("nvcc"))
    if standalone.find_cxx() is None:
        missing("g++ (C++ compiler) not found")
    return standalone.load_library(standalone.host_library())


# --- the naive reference itself, on a case worked out by hand -------------------------------

# Channel 0: window (0,0) = [1 3 / 3 2] has its first maximum at (0,1); window (0,1) = [3 0 / 0 0]
# at (0,2); column 4 and row 2 were dropped by floor-mode pooling. Channel 1: an all-zero (ReLU)
# window keeps (0,0); [nan 1 / 2 nan] takes the last NaN, (1,3).
HAND_PREPOOL = np.array(
    [
        [
            [[1.0, 3.0, 3.0, 0.0, 7.0], [3.0, 2.0, 0.0, 0.0, 8.0], [5.0, 5.0, 5.0, 5.0, 9.0]],
            [[0.0, 0.0, NAN, 1.0, 4.0], [0.0, 0.0, 2.0, NAN, 4.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
        ]
    ],
    dtype=np.float32,
)
HAND_DECODER = np.array([[[[10.0, 20.0]], [[-1.0, 5.0]]]], dtype=np.float32)
HAND_EXPECTED = np.array(
    [
        [
            [[0.0, 10.0, 20.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
            [[-1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
        ]
    ],
    dtype=np.float32,
)


def test_naive_reference_on_a_hand_made_case() -> None:
    assert_bit_equal(naive_unpool(HAND_DECODER, HAND_PREPOOL), HAND_EXPECTED)
    # Nested lists work too (Python floats all the way: float64 out).
    as_lists = naive_unpool(HAND_DECODER.tolist(), HAND_PREPOOL.tolist())
    assert_bit_equal(as_lists, HAND_EXPECTED.astype(np.float64))


def test_torch_agrees_with_the_hand_made_case() -> None:
    out = torch_unpool(torch.from_numpy(HAND_DECODER), torch.from_numpy(HAND_PREPOOL))
    assert_bit_equal(out, HAND_EXPECTED)


def test_naive_reference_follows_max_pool2d_on_nan_windows() -> None:
    """The one NaN rule (a NaN wins its window, the last of several NaNs) is PyTorch's own: on
    windows drawn from NaN, +-inf, +-0.0 and +-1 the loop and max_unpool2d agree bit for bit."""
    generator = torch.Generator().manual_seed(2)
    prepool = make_prepool("specials", (2, 3, 17, 11), generator)
    decoder = decoder_for(prepool, generator)
    windows = prepool[..., :16, :10].unfold(2, 2, 2).unfold(3, 2, 2).reshape(-1, 4)
    assert (windows.isnan().sum(1) >= 2).any()  # several NaNs in one window do occur
    assert_bit_equal(naive_unpool(decoder, prepool), torch_unpool(decoder, prepool))


def test_host_kernel_on_the_hand_made_case(library) -> None:
    out = standalone.unpool_host(library, HAND_DECODER, HAND_PREPOOL)
    assert_bit_equal(out, HAND_EXPECTED)


# --- random and tie-heavy tensors at odd sizes ---------------------------------------------

SHAPES = [(2, 3, 17, 11), (1, 2, 45, 60), (1, 1, 3, 2), (2, 2, 4, 4), (1, 4, 22, 30), (3, 1, 5, 7)]


@pytest.mark.parametrize("kind", PREPOOL_KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_host_kernel_matches_max_unpool2d(library, kind: str, shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(zlib.crc32(f"{kind}{shape}".encode()))
    prepool = make_prepool(kind, shape, generator)
    decoder = decoder_for(prepool, generator)
    out = standalone.unpool_host(library, decoder.numpy(), prepool.numpy())
    assert_bit_equal(out, torch_unpool(decoder, prepool))


@pytest.mark.parametrize("kind", ["random", "relu", "small-integers", "specials"])
def test_host_kernel_matches_the_naive_loop_at_17x11(library, kind: str) -> None:
    generator = torch.Generator().manual_seed(17 * 11)
    prepool = make_prepool(kind, (2, 3, 17, 11), generator)
    decoder = decoder_for(prepool, generator)
    out = standalone.unpool_host(library, decoder.numpy(), prepool.numpy())
    assert_bit_equal(out, naive_unpool(decoder, prepool))


def test_decoder_signed_zero_and_negative_values_are_copied_exactly(library) -> None:
    prepool = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[5.0, 1.0], [2.0, 3.0]]]])
    decoder = torch.tensor([[[[-0.0]], [[-7.25]]]])
    out = standalone.unpool_host(library, decoder.numpy(), prepool.numpy())
    assert_bit_equal(out, torch_unpool(decoder, prepool))
    assert np.signbit(out[0, 0, 1, 1])


@pytest.mark.parametrize("shape", [(2, 3, 18, 24), (1, 2, 45, 60)])
def test_misaligned_buffers_take_the_scalar_path(library, shape: tuple[int, ...]) -> None:
    # Even W normally takes the paired path (2-element loads and stores, as on the GPU); buffers
    # one element off 8-byte alignment must give the same result through the scalar path.
    generator = torch.Generator().manual_seed(5)
    prepool = make_prepool("relu", shape, generator)
    decoder = decoder_for(prepool, generator)
    numel = prepool.numel()
    shifted = np.empty(numel + 1, dtype=np.float32)[1:].reshape(shape)
    shifted[...] = prepool.numpy()
    assert shifted.ctypes.data % 8 != 0
    out = standalone.unpool_host(library, decoder.numpy(), shifted)
    assert_bit_equal(out, torch_unpool(decoder, prepool))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 1, 5), (1, 2, 4, 1)])
def test_inputs_too_small_to_pool_give_zeros(library, shape: tuple[int, ...]) -> None:
    # max_pool2d refuses these (output size 0), so the naive loop is the reference: all zeros.
    n, c, h, w = shape
    prepool = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    decoder = np.zeros((n, c, h // 2, w // 2), dtype=np.float32)
    out = standalone.unpool_host(library, decoder, prepool)
    assert_bit_equal(out, naive_unpool(decoder, prepool))
    assert not out.any()


def test_empty_batch_is_a_no_op(library) -> None:
    out = standalone.unpool_host(library, np.zeros((0, 3, 2, 2)), np.zeros((0, 3, 4, 4)))
    assert out.shape == (0, 3, 4, 4)


def test_negative_sizes_are_rejected(library) -> None:
    buffer = np.zeros(4, dtype=np.float32)
    pointer = buffer.ctypes.data
    assert library.edgeseg_unpool_host_f32(pointer, pointer, pointer, 1, 1, -2, 2) == -1
