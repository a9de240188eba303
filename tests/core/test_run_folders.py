"""Runs never overwrite runs, damaged checkpoints and read-only paths are one line (issue 12).

``edgeseg train`` runs in this process through the console entry point (the same code path as
the command, without paying a Python start per case), on the small synthetic CamVid.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error
from fault_helpers import read_only_folder

from edgeseg.checkpoint import read_checkpoint, save_checkpoint
from edgeseg.run_dirs import claim_run_dir

TINY = ("--width", "0.125", "--input-size", "32x32", "--batch-size", "2", "--workers", "0")
SMALL = (*TINY, "--limit-train", "2", "--limit-val", "1", "--epochs", "1")
MARKERS = ("config.yaml", "last.pt", "best.pt")


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    with read_only_folder(tmp_path) as folder:
        yield folder


def test_the_next_free_name_as_ultralytics_gives_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert claim_run_dir(runs / "train", MARKERS) == runs / "train"  # created, nothing there
    assert claim_run_dir(runs / "train", MARKERS) == runs / "train"  # an empty folder is used
    (runs / "train" / "last.pt").write_bytes(b"a run")
    assert claim_run_dir(runs / "train", MARKERS) == runs / "train2"
    (runs / "train3").mkdir()  # taken by something else: skipped, never written into
    (runs / "train2" / "config.yaml").write_text("out: runs/train2")
    assert claim_run_dir(runs / "train", MARKERS, create=False) == runs / "train4"
    assert not (runs / "train4").exists()
    assert claim_run_dir(runs / "train", MARKERS, exist_ok=True) == runs / "train"


@pytest.mark.slow
def test_train_into_a_run_takes_the_next_name_and_resume_stays_beside_its_checkpoint(
    cli, camvid_like: Path, tmp_path: Path
) -> None:
    earlier = tmp_path / "run"
    earlier.mkdir()
    (earlier / "config.yaml").write_text("earlier: true\n")
    (earlier / "last.pt").write_bytes(b"the earlier run's checkpoint")
    result = cli("train", "--data", str(camvid_like), "--out", str(earlier), *SMALL)
    assert result.returncode == 0, result.stderr
    assert f"{earlier} holds an earlier run; this one writes to {earlier}2" in result.stderr
    assert (earlier / "last.pt").read_bytes() == b"the earlier run's checkpoint"
    assert sorted(p.name for p in earlier.iterdir()) == ["config.yaml", "last.pt"]
    second = tmp_path / "run2"
    assert (second / "best.pt").is_file() and f"outputs in {second}/" in result.stdout
    assert read_checkpoint(second / "last.pt")["config"]["out"] == str(second)

    # A copied last.pt resumes beside itself, not into the run it was copied from; the temporary
    # file a killed writer left there is cleaned away.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(second / "last.pt", copy / "last.pt")
    (copy / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    original = (second / "last.pt").read_bytes()
    resumed = cli("train", "--resume", str(copy / "last.pt"), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming into {copy}" in resumed.stderr
    assert read_checkpoint(copy / "last.pt")["epoch"] == 2
    assert len((copy / "metrics.csv").read_text().splitlines()) == 3
    assert (second / "last.pt").read_bytes() == original
    assert not (copy / ".last.pt.k1ll3d.tmp").exists()


def test_resume_may_name_its_folder(cli, tmp_path: Path) -> None:
    result = cli("train", "--resume", str(tmp_path / "last.pt"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "checkpoint")  # --out accepted; the missing file is the error
    assert "not found" in result.stderr
    result = cli("train", "--resume", str(tmp_path / "last.pt"), "--lr", "0.1")
    assert_one_line_error(result, "only --epochs, --out and --exist-ok")


def test_a_read_only_out_is_one_line(cli, camvid_like: Path, read_only: Path) -> None:
    target = read_only / "run"
    result = cli("train", "--data", str(camvid_like), "--out", str(target), *SMALL)
    assert_one_line_error(result, f"{target}: ")
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model_helpers import TINY_CARD

    from edgeseg.models import create_model

    model = create_model("segnet-basic", 3, channels=8, kernel_size=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, TINY_CARD)
    return path


def test_eval_json_into_a_read_only_folder_is_one_line(
    cli, tiny_checkpoint: Path, camvid_like: Path, read_only: Path
) -> None:
    # The tiny model has 3 classes: evaluate it on a 3-class dataset.
    from synthetic import make_generic

    data = make_generic(read_only.parent / "generic", layout="lists", mask_format="index", seed=1)
    target = read_only / "m.json"
    result = cli("eval", str(tiny_checkpoint), "--data", str(data), "--json", str(target))
    lines = [x for x in result.stderr.splitlines() if x.startswith("edgeseg: error:")]
    assert result.returncode == 2 and lines and lines[0].startswith(f"edgeseg: error: {target}: ")
    assert len(lines) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_export_into_a_read_only_folder_is_one_line(
    cli, tiny_checkpoint: Path, read_only: Path
) -> None:
    target = read_only / "export"
    assert_one_line_error(cli("export", str(tiny_checkpoint), "--out", str(target)), str(target))


def _damaged(tmp_path: Path, tiny_checkpoint: Path, change) -> Path:
    payload = torch.load(tiny_checkpoint, weights_only=True)
    change(payload)
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    return path


def test_a_checkpoint_whose_model_is_not_a_mapping_is_one_line(
    cli, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    path = _damaged(tmp_path, tiny_checkpoint, lambda p: p.update(model=[1, 2, 3]))
    assert_one_line_error(cli("export", str(path), "--out", str(tmp_path / "e")), "is damaged")
    assert not (tmp_path / "e").exists()


def test_nan_weights_are_one_line_in_export_and_eval(
    cli, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    def poison(payload: dict) -> None:
        name = next(k for k, v in payload["model"].items() if v.is_floating_point())
        payload["model"][name] = torch.full_like(payload["model"][name], float("nan"))

    path = _damaged(tmp_path, tiny_checkpoint, poison)
    result = cli("export", str(path), "--out", str(tmp_path / "e"))
    assert_one_line_error(result, "holds NaN or Inf weights")
    assert "--tolerance" not in result.stderr
    result = cli("eval", str(path), "--data", str(tmp_path))
    assert_one_line_error(result, "holds NaN or Inf weights")
