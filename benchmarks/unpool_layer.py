"""One SegNet unpooling in TensorRT: edgeseg's plugin against the native (standard-op) form.

For a GPU session with TensorRT and the plugin built (``edgeseg plugin build``). For each of
SegNet's five pre-pool shapes at 360x480 and at 720x1280, in FP32 and FP16, it builds two engines
per form: ``P -> MaxPool -> unpool(MaxPool(P), P)`` and the baseline ``P -> MaxPool``, runs each
back to back through edgeseg's engine runner (CUDA graph replay) and reports the median time of
the first minus that of the second: the unpooling layer's own cost, plugin and native, and their
ratio.

Goal it states: the plugin at least 1.5x faster per layer than the native form. Where it is not,
docs/export.md says which to use when (the native form is the fallback either way).

    python benchmarks/unpool_layer.py [--runs 200] [--json unpool_layer.json]

Prints a Markdown table; exits 2 with one line when TensorRT, a GPU or the plugin is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

CHANNELS = (64, 128, 256, 512, 512)
INPUTS = ((360, 480), (720, 1280))
GOAL = 1.5


def prepool_shapes(input_hw: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """SegNet's five pre-pool tensors for an input of ``input_hw`` (floor-mode halving)."""
    height, width = input_hw
    shapes = []
    for channels in CHANNELS:
        shapes.append((1, channels, height, width))
        height, width = height // 2, width // 2
    return shapes


def layer_graph(shape: tuple[int, int, int, int], with_unpool: bool, fp16: bool):
    """``P -> MaxPool -> unpool`` (or MaxPool alone) in the portable block form."""
    from onnx import TensorProto, helper

    from edgeseg.unpool_graph import expansion_nodes

    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    n, c, h, w = shape
    nodes = [
        helper.make_node("MaxPool", ["prepool"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2])
    ]
    output, out_shape = "pooled", [n, c, h // 2, w // 2]
    if with_unpool:
        nodes += expansion_nodes("layer", "pooled", "prepool", "out", (h, w), elem_type=elem)
        output, out_shape = "out", [n, c, h, w]
    graph = helper.make_graph(
        nodes,
        "unpool-layer",
        [helper.make_tensor_value_info("prepool", elem, list(shape))],
        [helper.make_tensor_value_info(output, elem, out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def time_engine(path: Path, shape, unpool: str, library, runs: int) -> float:
    from edgeseg.backends.tensorrt_engine import TensorRTEngine

    engine = TensorRTEngine(path, plugin_library=library, unpool=unpool)
    try:
        engine.allocate(tuple(shape[1:]))
        batch = np.random.default_rng(0).standard_normal(shape).astype(engine.input_dtype)
        for _ in range(10):
            engine.infer(batch)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            engine.infer(batch)
            times.append((time.perf_counter() - start) * 1000)
        return float(np.median(times))
    finally:
        engine.close()


def measure(folder: Path, shape, precision: str, unpool: str, library, runs: int) -> float:
    from edgeseg.export.engine import build_engine
    from edgeseg.export.onnx_io import save_onnx
    from edgeseg.export.trt_graph import to_trt_graph

    card = ModelCard("unpool-layer", 1, ("x",), ((0, 0, 0),), tuple(shape[2:]))
    fp16 = precision == "fp16"
    ms = {}
    for with_unpool in (True, False):
        graph = layer_graph(shape, with_unpool, fp16)
        if with_unpool and unpool == "plugin":
            graph = to_trt_graph(graph)
        stem = f"{'x'.join(map(str, shape))}_{precision}_{unpool}_{with_unpool}"
        source = save_onnx(graph, folder / f"{stem}.onnx")
        engine = folder / f"{stem}.engine"
        build_engine(
            source,
            engine,
            card,
            precision=precision,
            unpool=unpool,
            plugin_library=library,
            log=lambda _m: None,
        )
        ms[with_unpool] = time_engine(engine, shape, unpool, library, runs)
    return ms[True] - ms[False]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from edgeseg.export.engine import preflight

    try:
        _trt, library, gpu = preflight()
    except EdgesegError as exc:
        print(f"unpool_layer: {exc}", file=sys.stderr)
        return 2
    rows = []
    print(f"GPU: {gpu.name}; unpooling layer time = engine(MaxPool+unpool) - engine(MaxPool)\n")
    print("| input | pre-pool | precision | plugin ms | native ms | native / plugin |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="edgeseg-unpool-") as folder:
        for input_hw in INPUTS:
            for shape in prepool_shapes(input_hw):
                for precision in ("fp32", "fp16"):
                    plugin = measure(Path(folder), shape, precision, "plugin", library, args.runs)
                    native = measure(Path(folder), shape, precision, "native", None, args.runs)
                    ratio = native / plugin if plugin > 0 else float("nan")
                    rows.append(
                        dict(
                            input=input_hw,
                            shape=shape,
                            precision=precision,
                            plugin_ms=plugin,
                            native_ms=native,
                            ratio=ratio,
                        )
                    )
                    print(
                        f"| {input_hw[0]}x{input_hw[1]} | {'x'.join(map(str, shape[1:]))} | "
                        f"{precision} | {plugin:.4f} | {native:.4f} | {ratio:.2f}x |"
                    )
    met = all(r["ratio"] >= GOAL for r in rows)
    print(f"\ngoal: plugin >= {GOAL}x faster per layer: {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"gpu": gpu.name, "goal": GOAL, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
