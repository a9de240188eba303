"""ONNX Runtime CPU latency, FP32 against INT8 (the Q/DQ graph ``edgeseg export --int8`` writes),
at 360x480 for SegNet and its width-0.25 variant.

Random (seeded) weights: latency does not depend on them, nor on the calibration data
(:mod:`edgeseg.apps.bench` quantizes with min-max on random frames). The timing is
``edgeseg bench``'s (:func:`edgeseg.apps.bench.run_bench`): p50/p95 of ``Segmenter.infer`` on
one frame.

    python benchmarks/int8_latency.py [--runs 30] [--warmup 5] [--threads N] [--json out.json]
    python benchmarks/int8_latency.py --quick      # width 0.25 only, 10 runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from runtime_model import random_segnet

from edgeseg.apps.bench import BenchOptions, run_bench
from edgeseg.apps.bench_report import format_table
from edgeseg.checkpoint import save_checkpoint
from edgeseg.files import atomic_write_bytes

SIZE = (360, 480)
WIDTHS = {"segnet": 1.0, "segnet width 0.25": 0.25}


def random_checkpoint(folder: Path, width: float) -> Path:
    """A SegNet checkpoint with seeded random weights and a CamVid card at 360x480."""
    model, card = random_segnet(width, SIZE)
    path = folder / f"segnet_w{width}.pt"
    save_checkpoint(path, model, card)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--quick", action="store_true", help="width 0.25 only, 10 runs")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    models = {"segnet width 0.25": 0.25} if args.quick else WIDTHS
    runs = 10 if args.quick else args.runs
    figures, tables = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name, width in models.items():
            report = run_bench(
                BenchOptions(
                    random_checkpoint(Path(folder), width),
                    backends=["onnxruntime"],
                    precisions=["fp32", "int8"],
                    sizes=[SIZE],
                    runs=runs,
                    warmup=args.warmup,
                    threads=args.threads,
                    command=" ".join(sys.argv),
                )
            )
            tables.append(f"{name}:\n{format_table(report)}")
            p50 = {row.precision: row.p50_ms for row in report.rows}
            for precision in ("fp32", "int8"):
                figures.append(
                    {"figure": f"{name} {precision} p50, ORT CPU 360x480", "value": p50[precision],
                     "unit": "ms"}
                )  # fmt: skip
            if p50.get("fp32") and p50.get("int8"):
                ratio = p50["fp32"] / p50["int8"]
                figures.append(
                    {"figure": f"{name} INT8 speed-up (FP32 p50 / INT8 p50)",
                     "value": round(ratio, 2), "unit": "x"}
                )  # fmt: skip
    print("\n\n".join(tables))
    for figure in figures:
        print(f"{figure['figure']}: {figure['value']} {figure['unit']}")
    if args.json:
        atomic_write_bytes(args.json, json.dumps({"figures": figures}, indent=1).encode())


if __name__ == "__main__":
    main()
