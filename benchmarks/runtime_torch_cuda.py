"""PyTorch CUDA model-only latency of SegNet at 360x480, FP32 and FP16: the reference a TensorRT
engine must beat. Needs a CUDA GPU; says so and exits 0 without one.

CUDA events around the forward pass, batch 1, after warm-up, ``torch.backends.cudnn.benchmark``
on; FP16 is ``model.half()`` on FP16 input (the unpooling runs in FP16 too).

    python benchmarks/runtime_torch_cuda.py [--width 1.0] [--iterations 200]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from bench_record import emit

from edgeseg.files import atomic_write_bytes
from edgeseg.models import create_model


def latency_ms(model: torch.nn.Module, x: torch.Tensor, iterations: int) -> dict[str, float]:
    with torch.inference_mode():
        for _ in range(20):
            model(x)
        torch.cuda.synchronize()
        times = []
        for _ in range(iterations):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    values = np.asarray(times)
    return {
        "median_ms": round(float(np.median(values)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "fps": round(1000 / float(np.median(values)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0, help="SegNet width multiplier")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument(
        "--json", type=Path, help="also write the record here (read by benchmarks/performance.py)"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        record = {"skipped": "no CUDA GPU here (torch.cuda.is_available() is False)"}
        print(json.dumps(record))
        if args.json:
            atomic_write_bytes(args.json, json.dumps(record).encode())
        return
    torch.backends.cudnn.benchmark = True
    model = create_model("segnet", 11, width=args.width).cuda().eval()
    x = torch.randn(1, 3, 360, 480, device="cuda")
    result = {
        "model": f"segnet width {args.width}, 11 classes, 1x3x360x480",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "fp32": latency_ms(model, x, args.iterations),
        "fp16": latency_ms(model.half(), x.half(), args.iterations),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
