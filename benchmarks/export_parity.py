"""Parity figures of the export stage for each model of the family, at 360x480.

For segnet, segnet-basic and segnet width 0.25 (random seeded weights; parity does not need
training), each with BatchNorm's running statistics left at their defaults and randomised (so
the logits are not trivially small), the portable ONNX, the TensorRT graph (plugin nodes
re-expanded to standard ops) and their FP16 versions are run in ONNX Runtime on CPU against
PyTorch on the same synthetic frames (noise and colour ramps, through the runtime's
preprocessing). Prints max and mean |logit difference| (absolute and relative to the largest
logit) and the share of pixels whose argmax class agrees.

    python benchmarks/export_parity.py [--samples 2] [--size 360x480] [--no-fp16]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from edgeseg.backends.runner import run_onnx
from edgeseg.card import ModelCard
from edgeseg.export.fp16 import to_fp16
from edgeseg.export.parity import compare, sample_inputs
from edgeseg.export.torch_to_onnx import export_onnx
from edgeseg.export.trt_graph import to_trt_graph
from edgeseg.files import atomic_write_bytes
from edgeseg.models import create_model
from edgeseg.unpool_graph import reexpand_plugins

MODELS = (("segnet", {}), ("segnet-basic", {}), ("segnet", {"width": 0.25}))
NUM_CLASSES = 11  # CamVid


def randomise_batchnorm(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) * 0.4 + 0.8)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)


def measure(
    architecture: str,
    arch_args: dict,
    batchnorm: str,
    input_hw: tuple[int, int],
    samples: int,
    fp16: bool,
    records: list[dict] | None = None,
) -> list[str]:
    torch.manual_seed(0)
    model = create_model(architecture, NUM_CLASSES, **arch_args).eval()
    if batchnorm == "randomised":
        randomise_batchnorm(model, 1)
    card = ModelCard(
        architecture=architecture,
        num_classes=NUM_CLASSES,
        class_names=tuple(f"c{i}" for i in range(NUM_CLASSES)),
        palette=((0, 0, 0),) * NUM_CLASSES,
        input_hw=input_hw,
        arch_args=arch_args,
    )
    started = time.perf_counter()
    portable = export_onnx(model, card)
    graphs = {
        "model.onnx": (portable, "fp32"),
        "model.trt.onnx": (reexpand_plugins(to_trt_graph(portable)), "fp32"),
    }
    if fp16:
        half = to_fp16(portable)
        graphs["model.fp16.onnx"] = (half, "fp16")
        graphs["model.fp16.trt.onnx"] = (reexpand_plugins(to_trt_graph(half)), "fp16")
    export_s = time.perf_counter() - started
    inputs = sample_inputs(card, samples)
    with torch.no_grad():
        reference = np.concatenate([model(torch.from_numpy(x[None])).numpy() for x in inputs])
    name = architecture + (f" w{arch_args['width']}" if "width" in arch_args else "")
    rows = []
    for artifact, (graph, precision) in graphs.items():
        out = run_onnx(graph, inputs)
        figure = compare(artifact, "ONNX Runtime", reference, out, precision)
        scale = figure.logit_scale
        rows.append(
            f"| {name} | {batchnorm} | {artifact} | {figure.max_abs_diff:.2e} "
            f"({figure.max_abs_diff / scale:.1e}) | {figure.mean_abs_diff:.2e} "
            f"({figure.mean_abs_diff / scale:.1e}) | {scale:.3g} | "
            f"{100 * figure.agreement:.4f}% | {'ok' if figure.passed else 'FAILED'} |"
        )
        if records is not None:
            records.append(
                {
                    "model": name,
                    "batchnorm": batchnorm,
                    "file": artifact,
                    "precision": precision,
                    "max_abs_diff": figure.max_abs_diff,
                    "mean_abs_diff": figure.mean_abs_diff,
                    "max_logit": scale,
                    "argmax_agreement": figure.agreement,
                    "passed": figure.passed,
                }
            )
    print(f"  ({name}, BN {batchnorm}: export and conversions {export_s:.1f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--size", default="360x480", help="HEIGHTxWIDTH")
    parser.add_argument("--no-fp16", dest="fp16", action="store_false")
    parser.add_argument(
        "--json", type=Path, help="also write the figures here (read by benchmarks/performance.py)"
    )
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    print(
        f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads; "
        f"{args.samples} frames of {height}x{width}"
    )
    rows: list[str] = []
    records: list[dict] = []
    for architecture, arch_args in MODELS:
        for batchnorm in ("default", "randomised"):
            rows += measure(
                architecture,
                arch_args,
                batchnorm,
                (height, width),
                args.samples,
                args.fp16,
                records,
            )
    print(
        "| model | BN stats | file | max abs diff (rel.) | mean abs diff (rel.) | "
        "max logit | argmax agrees | gate |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    if args.json:
        record = {
            "benchmark": "export_parity",
            "size": f"{height}x{width}",
            "samples": args.samples,
            "machine": f"{platform.machine()}, torch {torch.__version__}",
            "results": records,
        }
        atomic_write_bytes(args.json, json.dumps(record, indent=1).encode())


if __name__ == "__main__":
    main()
