"""Throughput of the unpooling kernel on a GPU, beside a plain device-to-device copy.

The kernel is memory-bound: per layer it reads the pre-pool tensor (N*C*H*W) and the decoder
tensor (N*C*H/2*W/2) and writes the output (N*C*H*W). Its GB/s (those bytes / kernel time) is
reported beside ``torch``'s device-to-device copy of the output's size (read + write), the
practical ceiling, and beside ``torch.nn.functional.max_unpool2d`` on the same layer (which also
reads an int64 index tensor).

    python -m edgeseg.export.plugin.bench            # SegNet's layers at 360x480, FP32 and FP16

Needs torch with CUDA and nvcc. Timings use CUDA events around ``repeats`` back-to-back launches
(replayed from a CUDA graph where capture works) after ``warmup`` launches, and report the median
of ``trials`` such batches.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

# Pre-pool shapes (N, C, H, W) of SegNet's five poolings at a 360x480 input.
SEGNET_PREPOOL_SHAPES: tuple[tuple[int, int, int, int], ...] = (
    (1, 64, 360, 480),
    (1, 128, 180, 240),
    (1, 256, 90, 120),
    (1, 512, 45, 60),
    (1, 512, 22, 30),
)


def _time_ms(run: Callable[[], Any], warmup: int, repeats: int, trials: int) -> tuple[float, bool]:
    """Median over ``trials`` of the mean milliseconds per call of ``run``, and whether a CUDA
    graph carried the calls.

    ``repeats`` calls are captured in one CUDA graph when capture works, so the Python and ctypes
    cost of a launch (several microseconds, as long as the smallest layers' kernels) stays out of
    the figure; otherwise they are launched eagerly.
    """
    import torch

    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    graph = None
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(repeats):
                run()
        graph.replay()
        torch.cuda.synchronize()
    except RuntimeError:
        graph = None
        torch.cuda.synchronize()
    samples = []
    for _ in range(trials):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        if graph is not None:
            graph.replay()
        else:
            for _ in range(repeats):
                run()
        stop.record()
        stop.synchronize()
        samples.append(start.elapsed_time(stop) / repeats)
    return statistics.median(samples), graph is not None


def _bit_equal(a: Any, b: Any) -> bool:
    """Bit-for-bit equality (NaN payloads and the sign of zero included)."""
    import torch

    as_int = {2: torch.int16, 4: torch.int32}[a.element_size()]
    return a.dtype == b.dtype and bool(torch.equal(a.view(as_int), b.view(as_int)))


def _measure(
    library: Any, shape: tuple[int, int, int, int], dtype_name: str, timing: tuple[int, int, int]
) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from edgeseg.export.plugin.standalone import unpool_cuda

    size = (shape[2], shape[3])
    prepool = torch.relu(torch.randn(shape, device="cuda")).to(getattr(torch, dtype_name))
    pooled, indices = F.max_pool2d(prepool, 2, 2, return_indices=True)
    decoder = torch.randn_like(pooled)
    out = torch.empty_like(prepool)
    expected = F.max_unpool2d(decoder, indices, 2, 2, output_size=size)
    unpool_cuda(library, decoder, prepool, out=out)
    torch.cuda.synchronize()
    exact = _bit_equal(out, expected)
    kernel_ms, graphed = _time_ms(lambda: unpool_cuda(library, decoder, prepool, out=out), *timing)
    copy_src, copy_dst = torch.empty_like(prepool), torch.empty_like(prepool)
    copy_ms, _ = _time_ms(lambda: copy_dst.copy_(copy_src), *timing)
    torch_ms, _ = _time_ms(
        lambda: F.max_unpool2d(decoder, indices, 2, 2, output_size=size), *timing
    )
    element = prepool.element_size()
    kernel_gbps = (2 * prepool.numel() + decoder.numel()) * element / kernel_ms / 1e6
    copy_gbps = 2 * prepool.numel() * element / copy_ms / 1e6
    return {
        "shape": shape,
        "dtype": dtype_name,
        "kernel_ms": kernel_ms,
        "kernel_gbps": kernel_gbps,
        "copy_gbps": copy_gbps,
        "fraction_of_copy": kernel_gbps / copy_gbps,
        "torch_unpool_ms": torch_ms,
        "exact": exact,
        "cuda_graph": graphed,
    }


def benchmark_kernel(
    shapes: Sequence[tuple[int, int, int, int]] = SEGNET_PREPOOL_SHAPES,
    dtypes: Sequence[str] = ("float32", "float16"),
    warmup: int = 20,
    repeats: int = 100,
    trials: int = 5,
) -> list[dict[str, Any]]:
    """Time the kernel per (shape, dtype); one dict per row.

    Keys: shape, dtype, kernel_ms, kernel_gbps, copy_gbps (torch device-to-device copy of the
    output's size), fraction_of_copy, torch_unpool_ms, exact (output equals max_unpool2d bit
    for bit), cuda_graph (whether the kernel timing ran from a CUDA graph).
    Raises RuntimeError without a CUDA GPU.
    """
    import torch

    from edgeseg.export.plugin.standalone import cuda_library, load_library

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU: the kernel benchmark needs one")
    major, minor = torch.cuda.get_device_capability()
    library = load_library(cuda_library(f"{major}{minor}"))
    timing = (warmup, repeats, trials)
    return [_measure(library, shape, dtype, timing) for shape in shapes for dtype in dtypes]


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :func:`benchmark_kernel`'s rows."""
    header = (
        f"{'prepool (N,C,H,W)':<22}{'dtype':<9}{'kernel ms':>10}{'GB/s':>9}"
        f"{'copy GB/s':>11}{'of copy':>9}{'torch ms':>10}  exact  graph"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['shape']!s:<22}{row['dtype']:<9}{row['kernel_ms']:>10.4f}"
            f"{row['kernel_gbps']:>9.1f}{row['copy_gbps']:>11.1f}{row['fraction_of_copy']:>9.0%}"
            f"{row['torch_unpool_ms']:>10.4f}  {row['exact']!s:<6} {row['cuda_graph']}"
        )
    return "\n".join(lines)


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: the kernel benchmark needs one")
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    print(format_rows(benchmark_kernel()))


if __name__ == "__main__":
    main()
