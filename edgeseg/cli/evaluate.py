"""``edgeseg eval``: metrics of a checkpoint or ONNX file on a dataset split."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgeseg.cli.options import data_option


@click.command("eval")
@click.argument("artifact", type=click.Path(dir_okay=False))
@data_option()
@click.option("--split", default="val", show_default=True, help="train, val or test (CamVid).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write metrics here.")
@click.option(
    "--confusion",
    type=click.Path(dir_okay=False),
    help="Confusion-matrix PNG.  [default: beside --json, or confusion_<split>.png]",
)
@click.option("--batch-size", default=4, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--limit", type=int, help="Evaluate only the first N images.")
def eval_command(
    artifact: str,
    data: str,
    split: str,
    json_path: str | None,
    confusion: str | None,
    batch_size: int,
    device: str,
    limit: int | None,
) -> None:
    """Evaluate a checkpoint (.pt) or ONNX file: per-class table, JSON metrics, confusion PNG.

    \b
    Examples:
      edgeseg eval runs/camvid/best.pt --data ../shared/datasets/camvid --split val --json m.json
      edgeseg eval export/model.onnx --data ../shared/datasets/camvid --split val
    """
    from edgeseg.card import atomic_write_bytes
    from edgeseg.evaluate import evaluate
    from edgeseg.metrics import format_table, to_jsonable
    from edgeseg.plots import plot_confusion_matrix

    metrics, matrix, card = evaluate(artifact, data, split, batch_size, device, limit)
    click.echo(format_table(metrics))
    if json_path:
        record = {
            "artifact": str(artifact),
            "split": split,
            "precision": card.precision,
            **to_jsonable(metrics),
        }
        atomic_write_bytes(json_path, json.dumps(record, indent=1).encode())
    if confusion is None:
        folder = Path(json_path).parent if json_path else Path(".")
        confusion = str(folder / f"confusion_{split}.png")
    plot_confusion_matrix(
        matrix,
        card.class_names,
        confusion,
        title=f"{Path(artifact).name} on {split} (mIoU {metrics['miou']:.3f})",
    )
    click.echo(f"confusion matrix: {confusion}")
