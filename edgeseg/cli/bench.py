"""``edgeseg bench``: latency and throughput per backend x precision x input size.

A thin layer over :func:`edgeseg.apps.bench.run_bench`: parses the comma-separated lists, prints the
table on stdout (progress and notes go to stderr) and writes ``bench.json`` and ``bench.png``.
"""

from __future__ import annotations

import shlex
import sys

import click

from edgeseg.cli.options import exist_ok_option, parse_hw, run_folder


def _split(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None stays None (the library's default)."""
    if text is None:
        return None
    return [part.strip().lower() for part in text.split(",") if part.strip()]


@click.command("bench")
@click.option(
    "--model",
    "model",
    type=click.Path(),
    help="Checkpoint (.pt), ONNX file or TensorRT engine.  [default: the bundled model]",
)
@click.option(
    "--backends",
    default="onnxruntime,torch,tensorrt,tensorrt-native",
    show_default=True,
    help="Comma-separated; one that cannot run here gives rows 'skipped: <reason>'.",
)
@click.option(
    "--precisions",
    help="Comma-separated from fp32, fp16, int8.  [default: all three for a checkpoint; an "
    "ONNX file's or engine's own]",
)
@click.option(
    "--sizes",
    help="Comma-separated HEIGHTxWIDTH network inputs.  [default: the model's own input size, "
    "what edgeseg run runs]",
)
@click.option(
    "--runs", type=click.IntRange(min=1), default=50, show_default=True, help="Timed calls."
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Untimed calls first (allocation, autotuning).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for ONNX Runtime and PyTorch.  [default: theirs]",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="runs/bench",
    show_default=True,
    help="Folder for bench.json and bench.png; one that holds an earlier bench.json is left "
    "alone and the next free name is used (runs/bench2).",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="Dataset root: adds an mIoU column, each measured row run over its --split.",
)
@click.option("--split", default="val", show_default=True, help="Split of --data.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N images of --split.")
@exist_ok_option()
def bench_command(
    model: str | None,
    backends: str,
    precisions: str | None,
    sizes: str | None,
    runs: int,
    warmup: int,
    threads: int | None,
    out_dir: str,
    data: str | None,
    split: str,
    limit: int | None,
    exist_ok: bool,
) -> None:
    """Measure inference latency (p50/p95) and throughput per backend x precision x size.

    Times the backend's inference call on one preprocessed frame, the step precision changes
    (the whole pipeline: benchmarks/runtime_pipeline.py); the combinations of one size take
    turns call by call, so a drift of the machine cannot decide a comparison. A checkpoint is
    measured at its own input size (what edgeseg run runs) unless --sizes says otherwise,
    exported to ONNX, FP16 and INT8, and built into TensorRT engines where TensorRT, a GPU and
    the plugin exist; what cannot run here is listed as skipped, one line per backend and
    reason. With --data, each measured row also gets its mIoU on that dataset.

    \b
    Examples:
      edgeseg bench --model runs/camvid/best.pt --sizes 360x480 --runs 20
      edgeseg bench --model export/model.onnx --backends onnxruntime --threads 2 --out runs/bench-onnx
      edgeseg bench --backends onnxruntime,torch --precisions fp32,int8
      edgeseg bench --backends onnxruntime --data ../shared/datasets/camvid --limit 20 --runs 10
    """  # noqa: E501
    from edgeseg.apps.bench import BenchOptions, plan_bench, run_bench
    from edgeseg.apps.bench_report import CHART_NAME, JSON_NAME, format_table, write_report

    parsed_sizes = None
    if sizes is not None:
        parsed_sizes = [tuple(parse_hw(size)) for size in _split(sizes) or [""]]
    options = BenchOptions(
        model,
        backends=_split(backends) or [],
        precisions=_split(precisions),
        sizes=parsed_sizes,
        runs=runs,
        warmup=warmup,
        threads=threads,
        data=data,
        split=split,
        limit=limit,
        command=shlex.join(["edgeseg", *sys.argv[1:]]),
    )
    plan = plan_bench(options)  # a mistake is one line before any folder is claimed
    inputs = {"--model": model, "--data": data}
    with run_folder(out_dir, (JSON_NAME, CHART_NAME), exist_ok, inputs=inputs) as folder:
        report = run_bench(plan)
        click.echo(format_table(report))
        written = write_report(report, folder)
    for path in written:
        click.echo(f"edgeseg: wrote {path}", err=True)
    if len(written) < 2:
        click.echo(
            "edgeseg: bench.png not written: matplotlib is not installed "
            "(pip install 'edgeseg[train]')",
            err=True,
        )
    if not any(row.status == "ok" for row in report.rows):
        from edgeseg.errors import EdgesegError

        raise EdgesegError("no combination could run here; the table says why for each")
