"""``edgeseg export --int8`` and ``edgeseg eval`` comparing FP32, FP16 and INT8 files, end to end
from the command line on a CamVid-layout dataset written for the test."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from cli_helpers import assert_one_line_error
from model_helpers import randomize_batchnorm

from edgeseg.calibration.quantize import qdq_problems
from edgeseg.card import ModelCard
from edgeseg.checkpoint import save_checkpoint
from edgeseg.data.spec import CAMVID
from edgeseg.export.onnx_io import card_of
from edgeseg.models import create_model
from edgeseg.unpool_graph import plugin_nodes

CARD = ModelCard(
    architecture="segnet-basic",
    num_classes=CAMVID.num_classes,
    class_names=CAMVID.class_names,
    palette=CAMVID.palette,
    input_hw=(48, 64),
    arch_args={"channels": 8, "kernel_size": 3},
    ignore_index=CAMVID.ignore_index,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("int8") / "best.pt"
    model = create_model("segnet-basic", CAMVID.num_classes, channels=8, kernel_size=3)
    save_checkpoint(path, randomize_batchnorm(model.eval(), var_low=0.05), CARD)
    return path


@pytest.mark.slow
def test_int8_export_report_and_compare(
    cli, checkpoint: Path, camvid_like: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    env = {"EDGESEG_CACHE_DIR": str(tmp_path / "cache")}
    result = cli(
        "export", str(checkpoint), "--out", str(out), "--fp16", "--int8",
        "--calib-data", str(camvid_like), "--calib-count", "8", "--calib-method", "minmax",
        "--keep-float", "1", "--int8-max-drop", "100", "--int8-min-agreement", "0", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx", "model.int8.trt.onnx"):
        assert (out / name).is_file(), name
    assert "only 8 calibration images" in result.stderr
    assert "INT8 against FP32: agreement" in result.stdout  # the gate's figure, then
    assert (
        "of pixels the FP32 reference decides" in result.stdout
        and "consistency mIoU" in result.stdout
    )
    assert "against the labels of those images (at 48x64): FP32 mIoU" in result.stdout
    assert "model.int8.trt.onnx" in result.stdout and "FAILED" not in result.stdout

    int8 = onnx.load(out / "model.int8.onnx")
    assert qdq_problems(int8) == []
    card = card_of(int8)
    assert card.precision == "int8"
    calibration = card.build["int8"]
    assert calibration["method"] == "minmax" and len(calibration["kept_float"]) == 1
    assert set(json.loads((out / "int8_report.json").read_text())["labelled"]) == {
        "fp32_miou", "int8_miou", "drop_points"
    }  # fmt: skip
    assert calibration["images"] == 4  # 8 images: every second one is held out for the check
    trt = onnx.load(out / "model.int8.trt.onnx")
    assert len(plugin_nodes(trt)) == 4
    assert any(n.op_type == "QuantizeLinear" for n in trt.graph.node)

    report = json.loads((out / "int8_report.json").read_text())
    assert report["kept_float"] == [report["sensitivity"][0]["layer"]]
    assert (out / "int8_sensitivity.png").stat().st_size > 0

    # The same calibration data again comes from the cache.
    again = cli(
        "export", str(checkpoint), "--out", str(tmp_path / "again"), "--int8",
        "--calib-data", str(camvid_like), "--calib-count", "8", "--int8-max-drop", "100",
        "--int8-min-agreement", "0",
        "--no-check", env=env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "cache" / "calibration").glob("*.npy"))) == 1

    files = [out / n for n in ("model.onnx", "model.fp16.onnx", "model.int8.onnx")]
    files.append(out / "model.int8.trt.onnx")  # runs with its plugin re-expanded
    compare = cli(
        "eval", *map(str, files), "--data", str(camvid_like), "--split", "val",
        "--json", str(tmp_path / "compare.json"),
    )  # fmt: skip
    assert compare.returncode == 0, compare.stderr
    assert "dmIoU" in compare.stdout and "per-class IoU" in compare.stdout
    record = json.loads((tmp_path / "compare.json").read_text())
    models = record["models"]
    assert [m["precision"] for m in models] == ["fp32", "fp16", "int8", "int8"]
    # The TensorRT graph computes exactly what the INT8 ONNX computes.
    assert models[2]["miou"] == models[3]["miou"]
    assert models[2]["per_class"] == models[3]["per_class"]


@pytest.mark.slow
def test_gate_failure_writes_nothing_but_the_report(
    cli, checkpoint: Path, camvid_like: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    images = camvid_like / "train"  # a plain image folder: no labels, the agreement gate
    result = cli(
        "export", str(checkpoint), "--out", str(out), "--int8", "--calib-data", str(images),
        "--calib-count", "8", "--report", "--int8-min-agreement", "1", "--no-check",
        env={"EDGESEG_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    # Progress and warnings come first; the failure is the last line, and exit code 2.
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("edgeseg: error: nothing was written: INT8 agreement") and (
        "below 100%" in last
    )
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["int8_report.json", "int8_sensitivity.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--int8"], "--int8 needs --calib-data"),
        (["--report"], "apply with --int8"),
        (["--int8", "--calib-data", "nope/"], "calibration data nope not found"),
        (["--int8", "--calib-data", "{data}", "--keep-float", "99"], "--keep-float must be"),
        (["--int8", "--calib-data", "{data}", "--calib-method", "kl"], "Invalid value"),
    ],
)
def test_int8_mistakes(
    cli, checkpoint: Path, camvid_like: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("{data}", str(camvid_like)) for a in args]
    result = cli("export", str(checkpoint), "--out", str(tmp_path / "out"), *args)
    assert_one_line_error(result, message)
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_eval_confusion_needs_one_model(cli, checkpoint: Path, camvid_like: Path) -> None:
    result = cli(
        "eval", str(checkpoint), str(checkpoint), "--data", str(camvid_like),
        "--confusion", "c.png",
    )  # fmt: skip
    assert_one_line_error(result, "--confusion applies to one model")
