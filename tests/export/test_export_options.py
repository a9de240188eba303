"""``edgeseg export``'s options and the defaults a newcomer meets.

The flags become one :class:`ExportOptions`, checked before any slow step (shown by a process
in which torch cannot be imported: a missing --calib-data folder is reported without it);
without --out the export lands in ``runs/export`` (the next free name after that), never in the
clone's ``export/`` package; without SOURCE the newest run's ``best.pt`` or the bundled model is
taken, said in one line; without --calib-data the dataset the checkpoint was trained on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error
from model_helpers import TINY_CARD

from edgeseg.checkpoint import save_checkpoint
from edgeseg.data.spec import CAMVID
from edgeseg.errors import EdgesegError
from edgeseg.export.options import ExportOptions, plan_export
from edgeseg.models import create_model


def _checkpoint(path: Path, training_command: str = "", camvid: bool = False) -> Path:
    card = TINY_CARD.replace(training_command=training_command)
    classes = 3
    if camvid:
        classes = CAMVID.num_classes
        card = card.replace(
            num_classes=classes, class_names=CAMVID.class_names, palette=CAMVID.palette
        )
    model = create_model("segnet-basic", classes, channels=8, kernel_size=3)
    save_checkpoint(path, model, card)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("options") / "best.pt")


def test_missing_calib_data_is_reported_before_torch_or_onnx_is_imported(
    checkpoint: Path, tmp_path: Path
) -> None:
    """With torch and onnx unimportable, the only way to reach this error is to check before
    exporting (and before importing what an export needs: onnx alone can take seconds)."""
    script = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
        "from edgeseg.cli.main import main\n"
        f"main(['export', {str(checkpoint)!r}, '--int8', '--calib-data', 'nope/', "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert_one_line_error(result, "calibration data nope not found")
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "plan"}, "unknown format 'plan'"),
        ({"unpool": "native"}, "--unpool native chooses how an engine unpools"),
        ({"opset": 12}, "--opset 12 is too old"),
        ({"samples": 0}, "samples must be at least 1"),
    ],
)
def test_options_are_checked_first(checkpoint: Path, changes: dict, message: str) -> None:
    with pytest.raises(EdgesegError, match=message):
        plan_export(ExportOptions(checkpoint, **changes))


def test_library_and_cli_take_the_same_object(checkpoint: Path) -> None:
    plan = plan_export(ExportOptions(str(checkpoint), "out", fp16=True))
    assert plan.options.source == checkpoint and plan.options.out == Path("out")
    assert plan.options.fp16 and plan.calibration is None
    assert ExportOptions(checkpoint).out is None  # the default folder is claimed at export time


@pytest.mark.slow
def test_default_source_and_folder(cli, checkpoint: Path, tmp_path: Path) -> None:
    """From a folder with a run: its best.pt, into runs/export, then runs/export2."""
    run = tmp_path / "runs" / "camvid"
    run.mkdir(parents=True)
    shutil.copy(checkpoint, run / "best.pt")
    older = tmp_path / "runs" / "old"
    older.mkdir()
    shutil.copy(checkpoint, older / "best.pt")
    os.utime(older / "best.pt", (1_000_000, 1_000_000))
    first = cli("export", "--no-check", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    said = [line for line in first.stderr.splitlines() if "no SOURCE" in line]
    assert said == [
        f"edgeseg: no SOURCE: exporting {Path('runs/camvid/best.pt')}, the newest run's best.pt"
    ]
    assert (tmp_path / "runs" / "export" / "model.onnx").is_file()
    assert (tmp_path / "runs" / "export" / "model.portable.onnx").is_file()
    second = cli("export", "--no-check", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "runs/export holds an earlier export; this one writes to runs/export2" in second.stdout
    assert (tmp_path / "runs" / "export2" / "model.onnx").is_file()
    assert not (tmp_path / "export").exists()


def test_no_run_takes_the_bundled_model(cli, tmp_path: Path) -> None:
    try:
        from edgeseg.apps.default_model import default_checkpoint

        default_checkpoint()
    except EdgesegError as exc:
        pytest.skip(f"no bundled default model here: {exc}")
    result = cli("export", "--opset", "12", cwd=tmp_path)  # stops at the check, after the default
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "edgeseg: no SOURCE and no run under runs/: exporting the bundled model"
    assert lines[1].startswith("edgeseg: error: --opset 12 is too old") and len(lines) == 2
    assert not (tmp_path / "runs").exists()


def test_int8_without_calib_data_names_the_missing_dataset(cli, tmp_path: Path) -> None:
    gone = tmp_path / "datasets" / "camvid"
    checkpoint = _checkpoint(tmp_path / "best.pt", f"edgeseg train --data {gone} --epochs 1")
    result = cli("export", str(checkpoint), "--int8", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "--int8 needs --calib-data: the dataset best.pt was trained on")
    assert f"({gone} is not here)" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_int8_calibrates_on_the_recorded_dataset(cli, camvid_like: Path, tmp_path: Path) -> None:
    command = f"edgeseg train --data {camvid_like} --model segnet-basic"
    checkpoint = _checkpoint(tmp_path / "best.pt", command, camvid=True)
    out = tmp_path / "out"
    result = cli(
        "export", str(checkpoint), "--int8", "--calib-count", "8", "--int8-max-drop", "100",
        "--int8-min-agreement", "0",
        "--no-check", "--out", str(out), env={"EDGESEG_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"INT8 calibration data: {camvid_like}, the dataset best.pt was trained on" in (
        result.stdout
    )
    assert (out / "model.int8.onnx").is_file() and (out / "model.int8.trt.onnx").is_file()


def test_tolerance_help_says_what_it_gates(cli) -> None:
    from edgeseg.export.parity import DEFAULT_GATES

    text = " ".join(cli("export", "--help").stdout.split())
    assert "--tolerance FLOAT FP32 gate: the mean |logit difference|" in text
    stated = text.split("--tolerance FLOAT")[1].split("[default: ")[1].split("]")[0]
    assert float(stated) == DEFAULT_GATES["fp32"][0]
    assert "runs/export" in text and "the newest run's best.pt" in text
