"""Training on a small synthetic dataset: loss falls, resume is exact, outputs and eval work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from synthetic import make_camvid_like

from edgeseg.checkpoint import held_out_metrics, read_checkpoint, trained_splits
from edgeseg.train.config import config_from_checkpoint, load_config
from edgeseg.train.loop import TrainResult, train

pytestmark = pytest.mark.slow  # every test trains a small SegNet, or reads the one run below


def small_config(data: Path, out: Path, **changes) -> object:
    values = dict(
        data=str(data),
        out=str(out),
        model="segnet",
        model_options={"width": 0.125},
        input_hw=[64, 64],
        epochs=2,
        batch_size=2,
        optimizer="adamw",
        lr=0.02,
        workers=0,
        warmup_epochs=0.5,
        collage_images=2,
        seed=3,
    )
    values.update(changes)
    return load_config(**values)


@pytest.fixture(scope="module")
def camvid_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conftest's dataset, once for this module: no test here writes into it."""
    root = tmp_path_factory.mktemp("camvid") / "camvid_like"
    return make_camvid_like(root, n_train=8, n_val=4, n_test=2, seed=0)


@pytest.fixture(scope="module")
def two_epochs(camvid_like: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """One uninterrupted two-epoch run (``result.out``), trained once: the outputs test,
    the resume test (its reference) and the eval tests (its ``best.pt``) only read it."""
    return train(small_config(camvid_like, tmp_path_factory.mktemp("train") / "run"))


def test_two_epochs_loss_falls_and_outputs_exist(two_epochs: TrainResult) -> None:
    result = two_epochs
    run = result.out
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    for name in (
        "best.pt",
        "last.pt",
        "metrics.csv",
        "metrics.json",
        "curves.png",
        "collage.png",
        "confusion.png",
        "config.yaml",
        "class_weights.json",
    ):
        assert (run / name).is_file(), name
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,lr,miou") and len(rows) == 3
    best = read_checkpoint(run / "best.pt")
    assert best["epoch"] == result.best_epoch
    assert list(best["card"]["input_hw"]) == [64, 64]


def test_resume_continues_exactly(
    two_epochs: TrainResult, camvid_like: Path, tmp_path: Path
) -> None:
    straight = two_epochs
    # The same run killed after epoch 1 (its schedule still spans 2 epochs), then resumed.
    train(small_config(camvid_like, tmp_path / "split"), stop_after_epoch=1, command="first")
    payload = read_checkpoint(tmp_path / "split" / "last.pt")
    assert payload["epoch"] == 1
    resumed = train(config_from_checkpoint(payload), resume_from=payload, command="second")
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    # The card says how the run began, not just how it was resumed.
    assert resumed.card.training_command == "first; resumed with: second"
    assert resumed.history[1]["train_loss"] == straight.history[1]["train_loss"]
    assert resumed.history[1]["miou"] == straight.history[1]["miou"]
    a = read_checkpoint(straight.out / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_ema_is_what_a_run_validates_saves_and_resumes(camvid_like: Path, tmp_path: Path) -> None:
    from edgeseg.checkpoint import load_model
    from edgeseg.data import load_split
    from edgeseg.evaluate import evaluate_predictor, load_eval_set, torch_predictor

    straight = train(small_config(camvid_like, tmp_path / "ema", ema=0.9))
    last = read_checkpoint(tmp_path / "ema" / "last.pt")
    assert last["ema_updates"] == 2 * 4  # 2 epochs of 8 images in batches of 2
    floats = [k for k, v in last["model"].items() if v.is_floating_point()]
    # "model" is the average, "trained_model" the weights the optimiser moved
    assert any(not torch.equal(last["model"][k], last["trained_model"][k]) for k in floats)
    # what the last epoch reported on val is what last.pt's weights ("model") score there
    model, card = load_model(tmp_path / "ema" / "last.pt")
    spec, samples = load_split(str(camvid_like), "val", seed=3)
    metrics, _, _ = evaluate_predictor(load_eval_set(samples, spec), card, torch_predictor(model))
    assert metrics["miou"] == pytest.approx(straight.history[-1]["miou"], abs=1e-12)

    # killed after epoch 1 and resumed: the average continues as if uninterrupted
    train(small_config(camvid_like, tmp_path / "split", ema=0.9), stop_after_epoch=1)
    payload = read_checkpoint(tmp_path / "split" / "last.pt")
    resumed = train(config_from_checkpoint(payload), resume_from=payload)
    assert resumed.history[1]["miou"] == straight.history[1]["miou"]
    after = read_checkpoint(tmp_path / "split" / "last.pt")
    for key in ("model", "trained_model"):
        for name, tensor in last[key].items():
            assert torch.equal(after[key][name], tensor), (key, name)


def test_ema_outside_zero_to_one_is_one_line(camvid_like: Path, tmp_path: Path) -> None:
    from edgeseg.errors import EdgesegError

    with pytest.raises(EdgesegError, match=r"ema 1\.0 must be at least 0"):
        train(small_config(camvid_like, tmp_path / "bad", ema=1.0))
    assert not (tmp_path / "bad").exists()


def test_eval_cli_writes_metrics_json_and_confusion(
    cli, two_epochs: TrainResult, camvid_like: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval" / "metrics.json"
    result = cli(
        "eval",
        str(two_epochs.out / "best.pt"),
        "--data",
        str(camvid_like),
        "--split",
        "val",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    for key in ("miou", "pixel_accuracy", "class_accuracy", "fwiou", "per_class"):
        assert key in metrics
    assert {"name", "iou", "accuracy", "dice"} <= set(metrics["per_class"][0])
    assert len(metrics["per_class"]) == 11
    assert (out.parent / "confusion_val.png").is_file()
    assert "Sky" in result.stdout


def test_eval_test_split_reads_test_folders(
    cli, two_epochs: TrainResult, camvid_like: Path, tmp_path: Path
) -> None:
    result = cli(
        "eval",
        str(two_epochs.out / "best.pt"),
        "--data",
        str(camvid_like),
        "--split",
        "test",
        "--json",
        str(tmp_path / "t.json"),
    )
    has_test = (camvid_like / "test").is_dir()
    assert (result.returncode == 0) == has_test, result.stderr


def test_onnx_export_evaluates_like_its_checkpoint(
    cli, two_epochs: TrainResult, camvid_like: Path, tmp_path: Path
) -> None:
    """A static-batch ONNX (batch 1) is fed in chunks and scores exactly as the checkpoint."""
    best = two_epochs.out / "best.pt"
    exported = cli("export", str(best), "--out", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    scores = {}
    for name, artifact in (("pt", best), ("onnx", tmp_path / "export" / "model.onnx")):
        result = cli(
            "eval",
            str(artifact),
            "--data",
            str(camvid_like),
            "--batch-size",
            "3",
            "--json",
            str(tmp_path / f"{name}.json"),
        )
        assert result.returncode == 0, result.stderr
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert scores["onnx"]["miou"] == pytest.approx(scores["pt"]["miou"], abs=1e-3)
    assert scores["onnx"]["pixel_accuracy"] == pytest.approx(
        scores["pt"]["pixel_accuracy"], abs=1e-3
    )


def test_train_split_joins_splits_and_warns_that_val_is_trained_on(
    camvid_like: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    train(small_config(camvid_like, tmp_path / "both", train_split="train+val", epochs=1))
    out, err = capfd.readouterr()
    assert "12 train / 4 val images" in out + err  # 8 train + 4 val images trained on
    assert "note: val is trained on" in err
    # its val figures measure nothing, so the checkpoint offers none as the model's accuracy
    both = read_checkpoint(tmp_path / "both" / "best.pt")
    assert trained_splits(both) == "train+val" and both["metrics"]["miou"] >= 0
    assert held_out_metrics(both) == {}


def test_init_starts_from_another_checkpoints_weights(camvid_like: Path, tmp_path: Path) -> None:
    train(small_config(camvid_like, tmp_path / "first", epochs=1))
    best = read_checkpoint(tmp_path / "first" / "best.pt")  # val held out: its figures count
    assert trained_splits(best) == "train" and held_out_metrics(best) == best["metrics"] != {}
    start = read_checkpoint(tmp_path / "first" / "last.pt")["model"]
    # A learning rate of 1e-12 leaves the weights where they began: the first run's, not the
    # seed's (the same seed without --init starts from the first run's *initial* weights).
    tuned = small_config(
        camvid_like, tmp_path / "tuned", epochs=1, lr=1e-12, init=str(tmp_path / "first/last.pt")
    )
    train(tuned)
    after = read_checkpoint(tmp_path / "tuned" / "last.pt")["model"]
    convs = [name for name, tensor in start.items() if tensor.ndim == 4]
    assert convs
    for name in convs:
        torch.testing.assert_close(after[name], start[name], rtol=0, atol=1e-6)
    assert read_checkpoint(tmp_path / "tuned" / "last.pt")["config"]["init"].endswith("last.pt")


def test_init_with_other_weights_is_one_line(camvid_like: Path, tmp_path: Path) -> None:
    from edgeseg.errors import EdgesegError

    train(small_config(camvid_like, tmp_path / "narrow", epochs=1))
    wide = small_config(
        camvid_like, tmp_path / "wide", init=str(tmp_path / "narrow/last.pt"),
        model_options={"width": 0.25},
    )  # fmt: skip
    with pytest.raises(EdgesegError, match=r"^--init .*do not fit.*--width") as caught:
        train(wide)
    assert "\n" not in str(caught.value)
