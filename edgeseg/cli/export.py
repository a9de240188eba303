"""``edgeseg export``: checkpoint -> ONNX (portable and TensorRT) -> TensorRT engine."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    default="export",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder.",
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
    help="Largest FP32 logit difference, relative to the largest logit.  [default: 1e-3]",
)
@click.option(
    "--workspace-mb",
    type=click.IntRange(min=16),
    help="TensorRT builder workspace in MiB.  [default: 1024]",
)
def export_command(
    source: str,
    out: str,
    fmt: str,
    fp16: bool,
    dynamic: bool,
    argmax: bool,
    opset: int | None,
    check: bool,
    tolerance: float | None,
    workspace_mb: int | None,
) -> None:
    """Export a checkpoint to ONNX and, with --format engine, to a TensorRT engine.

    SOURCE is a checkpoint, or an ONNX file written by edgeseg export (to build its engine on
    the machine that will run it, e.g. a Jetson without torch).

    \b
    Examples:
      edgeseg export runs/camvid/best.pt --out export/
      edgeseg export runs/camvid/best.pt --out export/ --format engine --fp16 --argmax
      edgeseg export export/model.trt.onnx --format engine --fp16 --out export/
    """
    from edgeseg.export.pipeline import export_checkpoint

    export_checkpoint(
        source,
        out,
        format=fmt,
        fp16=fp16,
        dynamic=dynamic,
        argmax=argmax,
        opset=opset,
        check=check,
        tolerance=tolerance,
        workspace_mb=workspace_mb,
        log=click.echo,
    )
