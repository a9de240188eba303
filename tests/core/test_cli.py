"""The CLI's error boundary: user mistakes are one line on stderr and exit code 2.

The mistakes run in-process (``cli`` fixture); the installed console script runs as a real
process twice, for the exit statuses a shell sees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, console_script


def test_help_lists_the_commands(cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("train", "eval"):
        assert f"  {command}" in result.stdout


def test_version(cli) -> None:
    result = cli("--version")
    assert result.returncode == 0 and "edgeseg" in result.stdout


def test_console_script_exit_statuses() -> None:
    """The real ``edgeseg`` executable: 0 for --version, 2 and one line for a mistake (both
    answered before torch is imported, so each process takes well under a second)."""
    script = str(console_script())
    run = dict(capture_output=True, text=True, check=False, timeout=120)
    version = subprocess.run([script, "--version"], **run)
    assert version.returncode == 0 and "edgeseg" in version.stdout, version.stderr
    assert_one_line_error(subprocess.run([script, "trian"], **run), "No such command 'trian'")


def test_train_missing_data_dir(cli, tmp_path: Path) -> None:
    result = cli("train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "nope")
    assert not (tmp_path / "run").exists()


def test_train_without_data(cli) -> None:
    assert_one_line_error(cli("train"), "--data")


def test_train_unknown_model(cli, camvid_like: Path, tmp_path: Path) -> None:
    result = cli(
        "train", "--data", str(camvid_like), "--model", "unet", "--out", str(tmp_path / "run")
    )
    assert_one_line_error(result, "segnet, segnet-basic")


def test_train_bad_choice_lists_valid_values(cli, tmp_path: Path) -> None:
    result = cli("train", "--data", str(tmp_path), "--optimizer", "adam")
    assert_one_line_error(result, "'sgd', 'adamw'")


def test_unknown_command(cli) -> None:
    assert_one_line_error(cli("trian"), "trian")


def test_eval_missing_checkpoint(cli, tmp_path: Path) -> None:
    result = cli("eval", str(tmp_path / "best.pt"), "--data", str(tmp_path))
    assert_one_line_error(result, "not found")


def test_eval_not_a_checkpoint(cli, tmp_path: Path, camvid_like: Path) -> None:
    junk = tmp_path / "best.pt"
    junk.write_text("hello")
    assert_one_line_error(cli("eval", str(junk), "--data", str(camvid_like)), "checkpoint")


def test_resume_refuses_other_flags(cli, tmp_path: Path) -> None:
    result = cli("train", "--resume", str(tmp_path / "last.pt"), "--lr", "0.1")
    assert_one_line_error(result, "only --epochs")


@pytest.mark.parametrize("size", ["360", "axb", "16x480"])
def test_bad_input_size(cli, size: str, camvid_like: Path, tmp_path: Path) -> None:
    result = cli(
        "train", "--data", str(camvid_like), "--input-size", size, "--out", str(tmp_path / "r")
    )
    assert_one_line_error(result, "HEIGHTxWIDTH")
