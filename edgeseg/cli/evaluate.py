"""``edgeseg eval``: metrics of a checkpoint or ONNX file on a dataset split."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgeseg.cli.options import data_option, device_option


@click.command("eval")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@data_option()
@click.option("--split", default="val", show_default=True, help="train, val or test (CamVid).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Write metrics here (- for stdout).",
)
@click.option(
    "--confusion",
    type=click.Path(dir_okay=False),
    help="Confusion-matrix PNG (one model).  [default: beside --json, or confusion_<split>.png]",
)
@click.option("--batch-size", type=int, default=4, show_default=True)
@device_option()
@click.option("--limit", type=int, help="Evaluate only the first N images.")
def eval_command(
    artifacts: tuple[str, ...],
    data: str,
    split: str,
    json_path: str | None,
    confusion: str | None,
    batch_size: int,
    device: str,
    limit: int | None,
) -> None:
    """Evaluate checkpoints (.pt) or ONNX files: per-class table, JSON metrics, confusion PNG.

    Several models are compared on the same images, read once: mIoU and per-class IoU changes
    against the first (put the FP32 model first). ONNX files with edgeseg's TensorRT plugin
    (*.trt.onnx) run with the plugin as its exact standard-op equivalent.

    \b
    Examples:
      edgeseg eval runs/camvid/best.pt --data ../shared/datasets/camvid --split val --json m.json
      edgeseg eval export/model.onnx --data ../shared/datasets/camvid --split val
      edgeseg eval export/model.onnx export/model.fp16.onnx export/model.int8.onnx \\
        --data ../shared/datasets/camvid --split val --json compare.json

    No output may be a model or inside --data, nor two outputs one file (checked before the
    models are run); a device, a FIFO or - is written in place. Exit 0, or 2 with one line.
    """
    from edgeseg.apps.evaluate import evaluate_many
    from edgeseg.errors import EdgesegError
    from edgeseg.files import atomic_write_bytes
    from edgeseg.metrics import format_comparison, format_table, to_jsonable
    from edgeseg.outputs import check_outputs
    from edgeseg.plots import plot_confusion_matrix

    if confusion and len(artifacts) > 1:
        raise EdgesegError("--confusion applies to one model; evaluate them one at a time")
    if confusion is None and len(artifacts) == 1:
        beside = json_path if json_path and json_path != "-" else None
        folder = Path(beside).parent if beside else Path(".")
        confusion = str(folder / f"confusion_{split}.png")
    inputs = [
        ("the model", a) if i == 0 else ("a compared model", a) for i, a in enumerate(artifacts)
    ]
    check_outputs([*inputs, ("--data", data)], {"--json": json_path, "--confusion": confusion})
    results = evaluate_many(artifacts, data, split, batch_size, device, limit)
    records = [
        {"artifact": str(a), "split": split, "precision": card.precision, **to_jsonable(metrics)}
        for a, (metrics, _, card) in zip(artifacts, results, strict=True)
    ]
    if len(artifacts) > 1:
        click.echo(format_comparison([str(a) for a in artifacts], [r[0] for r in results]))
        if json_path:
            payload = {"split": split, "reference": str(artifacts[0]), "models": records}
            atomic_write_bytes(json_path, (json.dumps(payload, indent=1) + "\n").encode())
        return
    (metrics, matrix, card), artifact = results[0], artifacts[0]
    click.echo(format_table(metrics))
    if json_path:
        atomic_write_bytes(json_path, (json.dumps(records[0], indent=1) + "\n").encode())
    plot_confusion_matrix(
        matrix,
        card.class_names,
        confusion,
        title=f"{Path(artifact).name} on {split} (mIoU {metrics['miou']:.3f})",
    )
    click.echo(f"confusion matrix: {confusion}")
