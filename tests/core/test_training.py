"""Training on a small synthetic dataset: loss falls, resume is exact, outputs and eval work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgeseg.checkpoint import read_checkpoint
from edgeseg.training.config import config_from_checkpoint, load_config
from edgeseg.training.loop import train


def small_config(data: Path, out: Path, **changes) -> object:
    values = dict(data=str(data), out=str(out), model="segnet", model_options={"width": 0.125},
                  input_hw=[64, 64], epochs=2, batch_size=4, optimizer="adamw", lr=0.005,
                  workers=0, warmup_epochs=0.5, collage_images=2, seed=3)
    values.update(changes)
    return load_config(**values)


def test_two_epochs_loss_falls_and_outputs_exist(camvid_like: Path, tmp_path: Path) -> None:
    result = train(small_config(camvid_like, tmp_path / "run", epochs=3))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    for name in ("best.pt", "last.pt", "metrics.csv", "metrics.json", "curves.png",
                 "collage.png", "confusion.png", "config.yaml", "class_weights.json"):
        assert (tmp_path / "run" / name).is_file(), name
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,lr,miou") and len(rows) == 4
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == result.best_epoch
    assert best["card"]["input_hw"] == [64, 64]


def test_resume_continues_exactly(camvid_like: Path, tmp_path: Path) -> None:
    straight = train(small_config(camvid_like, tmp_path / "straight"))
    train(small_config(camvid_like, tmp_path / "split", epochs=1))
    payload = read_checkpoint(tmp_path / "split" / "last.pt")
    resumed = train(config_from_checkpoint(payload, epochs=2), resume_from=payload)
    assert resumed.history[1]["train_loss"] == pytest.approx(straight.history[1]["train_loss"],
                                                             rel=1e-6)
    assert resumed.history[1]["miou"] == pytest.approx(straight.history[1]["miou"], rel=1e-6)
    a = read_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for name in a:
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-6), name


def test_eval_cli_writes_metrics_json_and_confusion(camvid_like: Path, tmp_path: Path) -> None:
    train(small_config(camvid_like, tmp_path / "run", epochs=1))
    out = tmp_path / "eval" / "metrics.json"
    result = subprocess.run(
        [sys.executable, "-m", "edgeseg", "eval", str(tmp_path / "run" / "best.pt"), "--data",
         str(camvid_like), "--split", "val", "--json", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    for key in ("miou", "pixel_accuracy", "class_accuracy", "fwiou", "per_class"):
        assert key in metrics
    assert {"name", "iou", "accuracy", "dice"} <= set(metrics["per_class"][0])
    assert len(metrics["per_class"]) == 11
    assert (out.parent / "confusion_val.png").is_file()
    assert "Sky" in result.stdout


def test_eval_test_split_reads_test_folders(camvid_like: Path, tmp_path: Path) -> None:
    train(small_config(camvid_like, tmp_path / "run", epochs=1))
    result = subprocess.run(
        [sys.executable, "-m", "edgeseg", "eval", str(tmp_path / "run" / "best.pt"), "--data",
         str(camvid_like), "--split", "test", "--json", str(tmp_path / "t.json")],
        capture_output=True, text=True, check=False,
    )
    has_test = (camvid_like / "test").is_dir()
    assert (result.returncode == 0) == has_test, result.stderr
