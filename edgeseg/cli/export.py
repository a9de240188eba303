"""``edgeseg export``: checkpoint -> ONNX (portable and TensorRT) -> TensorRT engine."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("source", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder; an existing one is written into (files replaced).  [default: "
    "runs/export, or the next free name (runs/export2) when it holds an earlier export]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "engine"]),
    default="onnx",
    show_default=True,
    help="onnx: model.onnx + model.trt.onnx; engine: also model.engine (TensorRT, GPU).",
)
@click.option(
    "--unpool",
    type=click.Choice(["plugin", "native"]),
    default="plugin",
    show_default=True,
    help="How the engine unpools: plugin (edgeseg's CUDA plugin: edgeseg plugin build) or "
    "native (TensorRT's own layers from the standard-op graph, no plugin; also written as "
    "model.native.onnx). With --format engine.",
)
@click.option(
    "--fp16",
    is_flag=True,
    help="Also write FP16 ONNX files (FP32 inputs/outputs); build an FP16 engine.",
)
@click.option(
    "--dynamic",
    is_flag=True,
    help="Dynamic batch, height and width (TensorRT profile: batch 1-8, half to double "
    "the card's input size).",
)
@click.option(
    "--argmax",
    is_flag=True,
    help="End the graph with ArgMax: output an int32 (N, H, W) class map, not logits.",
)
@click.option("--opset", type=int, help="ONNX opset, 17 or later.  [default: 18]")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Compare every file with PyTorch (and the engine with ONNX Runtime); fail "
    "beyond the tolerance.",
)
@click.option(
    "--tolerance",
    type=float,
    help="FP32 gate: the mean |logit difference| of each FP32 file against PyTorch (and of "
    "an FP32 engine against ONNX Runtime) may be at most this share of the largest logit. "
    "FP16 and INT8 keep their own gates (docs/export.md).  [default: 1e-4]",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Also write model.int8.onnx (Q/DQ, runs in ONNX Runtime) and model.int8.trt.onnx, "
    "calibrated on --calib-data and checked against FP32; build an INT8 engine.",
)
@click.option(
    "--calib-data",
    help="INT8 calibration images: an image folder or glob, a video file (every k-th frame) "
    "or a dataset root (its --calib-split).  [default: the dataset the checkpoint was "
    "trained on, when it is on disk]",
)
@click.option(
    "--calib-method",
    type=click.Choice(["percentile", "minmax", "entropy"]),
    default="percentile",
    show_default=True,
    help="How activation ranges are chosen (docs/int8.md compares them on CamVid).",
)
@click.option(
    "--calib-count",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Calibration images, spread evenly over the data (about 1 in 8 is held out for "
    "the check).",
)
@click.option("--calib-split", default="train", show_default=True, help="Split of a dataset root.")
@click.option(
    "--keep-float",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave the N layers that lose most when quantized in float (runs the --report analysis).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Per-layer INT8 sensitivity: int8_report.json and int8_sensitivity.png in --out.",
)
@click.option(
    "--int8-max-drop",
    type=float,
    default=1.0,
    show_default=True,
    help="Labelled calibration data (a dataset root): fail when INT8 loses more mIoU points "
    "than this against FP32 on the held-out images.",
)
@click.option(
    "--int8-min-agreement",
    type=float,
    default=0.97,
    show_default=True,
    help="Fail when INT8 agrees with FP32 on less than this share of the pixels FP32 decides "
    "(held-out images; the gate FP16 exports pass too, see docs/export.md).",
)
@click.option(
    "--no-calib-cache",
    is_flag=True,
    help="Decode the calibration data again instead of using the cached copy.",
)
@click.option(
    "--workspace-mb",
    type=click.IntRange(min=16),
    help="TensorRT builder workspace in MiB.  [default: 1024]",
)
def export_command(
    source: str | None,
    out: str | None,
    fmt: str,
    unpool: str,
    fp16: bool,
    dynamic: bool,
    argmax: bool,
    opset: int | None,
    check: bool,
    tolerance: float | None,
    int8: bool,
    calib_data: str | None,
    calib_method: str,
    calib_count: int,
    calib_split: str,
    keep_float: int,
    report: bool,
    int8_max_drop: float,
    int8_min_agreement: float,
    no_calib_cache: bool,
    workspace_mb: int | None,
) -> None:
    """Export a checkpoint to ONNX and, with --format engine, to a TensorRT engine.

    SOURCE is a checkpoint, or an ONNX file written by edgeseg export (to build its engine on
    the machine that will run it, e.g. a Jetson without torch). Without SOURCE: the newest
    run's best.pt under runs/, else the bundled model.

    \b
    Examples:
      edgeseg export runs/camvid/best.pt --out export/
      edgeseg export runs/camvid/best.pt --out export/ --format engine --fp16 --argmax
      edgeseg export export/model.trt.onnx --format engine --fp16 --out export/
      edgeseg export export/model.onnx --format engine --unpool native --out export/
      edgeseg export runs/camvid/best.pt --int8 --calib-data ../shared/datasets/camvid --report
      edgeseg export runs/camvid/best.pt --int8 --calib-data frames/ --keep-float 2 --fp16
    """
    from edgeseg.calibration.settings import Int8Options
    from edgeseg.errors import EdgesegError
    from edgeseg.export.options import ExportOptions, plan_export

    if (calib_data or keep_float or report) and not int8:
        raise EdgesegError("--calib-data, --keep-float and --report apply with --int8")
    int8_options = None
    if int8:
        int8_options = Int8Options(
            data=calib_data,
            method=calib_method,
            count=calib_count,
            split=calib_split,
            keep_float=keep_float,
            report=report,
            max_drop=int8_max_drop,
            min_agreement=int8_min_agreement,
            use_cache=not no_calib_cache,
        )
    options = ExportOptions(
        source=source or _default_source(),
        out=out,
        format=fmt,
        unpool=unpool,
        fp16=fp16,
        dynamic=dynamic,
        argmax=argmax,
        opset=opset,
        check=check,
        tolerance=tolerance,
        workspace_mb=workspace_mb,
        int8=int8_options,
    )
    plan = plan_export(options, log=click.echo)  # before onnx and torch are even imported

    from edgeseg.export.pipeline import export_checkpoint

    export_checkpoint(plan, log=click.echo)


def _default_source() -> str:
    """The newest run's best.pt, else the bundled checkpoint; said in one line."""
    from edgeseg.apps.default_model import default_checkpoint, newest_run_checkpoint

    found = newest_run_checkpoint()
    if found is not None:
        click.echo(f"edgeseg: no SOURCE: exporting {found}, the newest run's best.pt", err=True)
        return str(found)
    click.echo("edgeseg: no SOURCE and no run under runs/: exporting the bundled model", err=True)
    return str(default_checkpoint())
