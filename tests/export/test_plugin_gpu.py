"""The CUDA unpooling kernel on a GPU, against ``max_unpool2d`` on CUDA, bit for bit.

The kernel is compiled on its own with nvcc (``standalone.cuda_library``) and called through its
C entry point with torch's CUDA pointers, in FP32 and FP16, on SegNet's real layer shapes at
360x480 (its five pre-pool tensors), on odd sizes, and on buffers misaligned for the vectorised
path.
"""

from __future__ import annotations

import pytest
import torch
from gpu_helpers import missing
from unpool_reference import assert_bit_equal, torch_unpool

from edgeseg.export.plugin import standalone
from edgeseg.export.plugin.bench import SEGNET_PREPOOL_SHAPES
from edgeseg.export.plugin.build import find_nvcc

pytestmark = pytest.mark.gpu  # skipped without a CUDA GPU by tests/conftest.py

DTYPES = [torch.float32, torch.float16]
ODD_SHAPES = [(2, 3, 17, 11), (1, 5, 45, 61), (3, 2, 3, 2), (1, 1, 7, 4), (2, 8, 33, 1024)]


@pytest.fixture(scope="module")
def kernel():
    if find_nvcc() is None:
        missing("nvcc not found on PATH, CUDA_HOME or /usr/local/cuda/bin")
    major, minor = torch.cuda.get_device_capability()
    library = standalone.load_library(standalone.cuda_library(f"{major}{minor}"))
    decoder, prepool, out = (torch.zeros(s, device="cuda") for s in (1, 4, 4))
    status = library.edgeseg_unpool_forward(
        decoder.data_ptr(), prepool.data_ptr(), out.data_ptr(), 1, 1, 2, 2, 0, None
    )
    torch.cuda.synchronize()
    if status == 35:  # cudaErrorInsufficientDriver: nvcc's runtime is newer than the driver
        missing("CUDA driver older than nvcc's CUDA runtime (cudaErrorInsufficientDriver)")
    assert status == 0, library.edgeseg_unpool_status_string(status).decode()
    return library


def _inputs(shape, dtype, kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(shape, device="cuda", generator=generator)
    if kind == "relu":  # many all-zero windows
        x = torch.relu(x - 0.5)
    elif kind == "small-integers":  # ties everywhere
        x = torch.randint(0, 3, shape, device="cuda", generator=generator).float()
    elif kind == "specials":
        choices = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0])
        x = choices.cuda()[torch.randint(0, 7, shape, device="cuda", generator=generator)]
    prepool = x.to(dtype)
    n, c, h, w = shape
    decoder = torch.randn((n, c, h // 2, w // 2), device="cuda", generator=generator).to(dtype)
    return decoder, prepool


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("shape", SEGNET_PREPOOL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", ["relu", "small-integers"])
def test_segnet_layers_match_max_unpool2d(kernel, shape, dtype, kind: str) -> None:
    decoder, prepool = _inputs(shape, dtype, kind, seed=shape[1] + shape[2])
    out = standalone.unpool_cuda(kernel, decoder, prepool)
    torch.cuda.synchronize()
    assert_bit_equal(out, torch_unpool(decoder, prepool))


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("shape", ODD_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", ["random", "relu", "small-integers", "specials"])
def test_odd_sizes_match_max_unpool2d(kernel, shape, dtype, kind: str) -> None:
    decoder, prepool = _inputs(shape, dtype, kind, seed=sum(shape))
    out = standalone.unpool_cuda(kernel, decoder, prepool)
    torch.cuda.synchronize()
    assert_bit_equal(out, torch_unpool(decoder, prepool))


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
def test_misaligned_buffers_take_the_scalar_path(kernel, dtype) -> None:
    # Offset by one element: even W, but not aligned for 2-element vector loads and stores.
    shape = (2, 3, 18, 24)
    decoder, prepool = _inputs(shape, dtype, "relu", seed=7)
    numel = prepool.numel()
    shifted_in = torch.empty(numel + 1, dtype=dtype, device="cuda")[1:].view(shape)
    shifted_in.copy_(prepool)
    shifted_out = torch.full((numel + 1,), float("nan"), dtype=dtype, device="cuda")[1:].view(shape)
    standalone.unpool_cuda(kernel, decoder, shifted_in, out=shifted_out)
    torch.cuda.synchronize()
    assert_bit_equal(shifted_out, torch_unpool(decoder, prepool))


def test_too_small_to_pool_gives_zeros(kernel) -> None:
    prepool = torch.randn((2, 3, 1, 5), device="cuda")
    decoder = torch.empty((2, 3, 0, 2), device="cuda")
    out = standalone.unpool_cuda(kernel, decoder, prepool)
    torch.cuda.synchronize()
    assert not out.isnan().any() and not out.any()


def test_runs_on_a_side_stream(kernel) -> None:
    decoder, prepool = _inputs((1, 64, 90, 120), torch.float32, "relu", seed=3)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = standalone.unpool_cuda(kernel, decoder, prepool, stream=stream)
    stream.synchronize()
    assert_bit_equal(out, torch_unpool(decoder, prepool))
