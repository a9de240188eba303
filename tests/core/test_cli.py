"""The CLI's error boundary: user mistakes are one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, edgeseg


def test_help_lists_the_commands() -> None:
    result = edgeseg("--help")
    assert result.returncode == 0
    for command in ("train", "eval"):
        assert f"  {command}" in result.stdout


def test_version() -> None:
    result = edgeseg("--version")
    assert result.returncode == 0 and "edgeseg" in result.stdout


def test_train_missing_data_dir(tmp_path: Path) -> None:
    result = edgeseg("train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "nope")
    assert not (tmp_path / "run").exists()


def test_train_without_data() -> None:
    assert_one_line_error(edgeseg("train"), "--data")


def test_train_unknown_model(camvid_like: Path, tmp_path: Path) -> None:
    result = edgeseg(
        "train", "--data", str(camvid_like), "--model", "unet", "--out", str(tmp_path / "run")
    )
    assert_one_line_error(result, "segnet, segnet-basic")


def test_train_bad_choice_lists_valid_values(tmp_path: Path) -> None:
    result = edgeseg("train", "--data", str(tmp_path), "--optimizer", "adam")
    assert_one_line_error(result, "'sgd', 'adamw'")


def test_unknown_command() -> None:
    assert_one_line_error(edgeseg("trian"), "trian")


def test_eval_missing_checkpoint(tmp_path: Path) -> None:
    result = edgeseg("eval", str(tmp_path / "best.pt"), "--data", str(tmp_path))
    assert_one_line_error(result, "not found")


def test_eval_not_a_checkpoint(tmp_path: Path, camvid_like: Path) -> None:
    junk = tmp_path / "best.pt"
    junk.write_text("hello")
    assert_one_line_error(edgeseg("eval", str(junk), "--data", str(camvid_like)), "checkpoint")


def test_resume_refuses_other_flags(tmp_path: Path) -> None:
    result = edgeseg("train", "--resume", str(tmp_path / "last.pt"), "--lr", "0.1")
    assert_one_line_error(result, "only --epochs")


@pytest.mark.parametrize("size", ["360", "axb", "16x480"])
def test_bad_input_size(size: str, camvid_like: Path, tmp_path: Path) -> None:
    result = edgeseg(
        "train", "--data", str(camvid_like), "--input-size", size, "--out", str(tmp_path / "r")
    )
    assert_one_line_error(result, "HEIGHTxWIDTH")
