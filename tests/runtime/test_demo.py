"""``edgeseg demo``, the synthetic clip and ``edgeseg run`` without ``--model``: real runs of the
bundled model (real export and INT8 calibration, real ONNX Runtime and PyTorch), with the user
cache in ``tmp_path``. That the bundled ONNX is the bundled checkpoint exported is
``tests/core/test_default_model.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import assert_one_line_error
from runtime_helpers import count_video_frames

from edgeseg.apps.synthetic_clip import LABEL, synthetic_frames, write_synthetic_clip
from edgeseg.errors import EdgesegError

SIZE_HW = (120, 160)
NO_TORCH = "import sys; sys.modules['torch'] = None; from edgeseg.cli.main import main; main()"


def _label_box(frame: np.ndarray) -> np.ndarray:
    """The top-right region the label is drawn in (same geometry as the generator)."""
    width = frame.shape[1]
    scale = max(0.35, width / 1000)
    thickness = max(1, round(scale * 2))
    (text_w, text_h), base = cv2.getTextSize(LABEL, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    return frame[6 : 10 + text_h + base, max(0, width - text_w - 10) : width - 6]


def test_synthetic_clip_reads_back_with_every_frame_labelled(tmp_path: Path) -> None:
    clip = write_synthetic_clip(tmp_path / "clip.mp4", frames=12, size_hw=SIZE_HW, fps=10)
    assert clip == tmp_path / "clip.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left
    capture = cv2.VideoCapture(str(clip))
    decoded = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        decoded.append(image)
    capture.release()
    assert len(decoded) == 12 and decoded[0].shape == (*SIZE_HW, 3)
    for image in decoded:  # white text on a black box, where the scene has bright sky
        box = _label_box(image).max(axis=2)
        assert (box < 70).mean() > 0.5 and (box > 170).mean() > 0.03
    assert LABEL == "SYNTHETIC - edgeseg demo clip"
    first, again = synthetic_frames(3, SIZE_HW, seed=0), synthetic_frames(3, SIZE_HW, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], first[2])  # the scene moves
    with pytest.raises(EdgesegError, match=r"must end in \.mp4"):
        write_synthetic_clip(tmp_path / "clip.avi", frames=2, size_hw=SIZE_HW)


def test_demo_bad_source_is_one_line(cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    assert_one_line_error(cli("demo", "--source", str(missing)), f"{missing} not found")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    out = tmp_path / "out"
    result = cli("demo", "--source", str(junk), "--out", str(out))
    assert_one_line_error(result, "cannot read video")
    assert not out.exists()  # refused before anything was written


def test_a_missing_source_is_refused_before_a_run_folder_is_named(cli, tmp_path: Path) -> None:
    # The working directory (the test's own) holds an earlier demo, as after README command 1.
    earlier = Path("runs/demo")
    earlier.mkdir(parents=True)
    (earlier / "demo.json").write_text("{}")
    result = cli("demo", "--source", "missing.mp4")
    assert_one_line_error(result, "missing.mp4 not found")
    assert "writes to" not in result.stderr
    assert sorted(p.name for p in Path("runs").iterdir()) == ["demo"]


@pytest.mark.slow
def test_without_torch_the_default_model_runs_and_the_demo_says_what_to_install(
    tmp_path: Path,
) -> None:
    # Real processes: torch must be unimportable before anything imports it, as on a Jetson or
    # in an embedding app that installed edgeseg[onnx] only.
    clip = write_synthetic_clip(tmp_path / "clip.mp4", frames=4, size_hw=SIZE_HW)
    out = tmp_path / "out.mp4"

    def no_torch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", NO_TORCH, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )

    run = no_torch("run", "--source", str(clip), "--output", str(out), "--headless")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "no --model: running the bundled demo model" in run.stderr
    assert "segnet_w025_camvid.onnx" in run.stderr and "Traceback" not in run.stderr
    assert count_video_frames(out) == 4
    demo = no_torch("demo", "--out", str(tmp_path / "d"))
    assert_one_line_error(demo, "pip install 'edgeseg[export]'")
    assert "edgeseg run needs neither" in demo.stderr


@pytest.mark.slow
def test_demo_end_to_end(cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = cli(
        "demo",
        "--frames",
        "20",
        "--calib-count",
        "10",
        "--out",
        str(out),
        env={"EDGESEG_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    assert "SYNTHETIC" in stdout and "not a production model" in stdout
    assert re.search(r"trained on camvid train(\+val)?", stdout) and "CC BY-NC" in stdout
    # a model fit on train+val has no held-out figure to show; one fit on train shows val's
    assert ("val mIoU" in stdout) != ("no held-out split" in stdout)
    assert "calibrated on 10 frames of this clip itself" in stdout
    assert "parity with PyTorch" in stdout
    assert re.search(r"^backend +precision +device +frames +FPS +decode .*infer", stdout, re.M)
    assert re.search(r"^ONNX Runtime +FP32 +CPUExecutionProvider +20 +[\d.]+ ", stdout, re.M)
    assert re.search(r"^PyTorch +FP32 +cpu +20 +[\d.]+ ", stdout, re.M)
    assert re.search(r"^TensorRT +FP16 +(skipped: \S|\S+ +20 )", stdout, re.M)
    assert "Traceback" not in result.stderr

    assert count_video_frames(out / "overlay.mp4") == 20
    assert count_video_frames(out / "synthetic_clip.mp4") == 20
    summary = json.loads((out / "demo.json").read_text())
    assert set(summary) >= {"edgeseg_version", "model", "clip", "export", "runs", "overlay"}
    assert summary["clip"]["synthetic"] is True
    model = summary["model"]
    assert model["dataset"] == "camvid" and model["trained_on"] in ("train", "train+val")
    assert model["val_miou"] > 0 if model["trained_on"] == "train" else model["val_miou"] is None
    assert all(p["passed"] for p in summary["export"]["parity"])
    runs = {(r["backend"], r["precision"]): r for r in summary["runs"]}
    for key in (("ONNX Runtime", "FP32"), ("PyTorch", "FP32")):
        assert runs[key]["frames_done"] == 20 and runs[key]["mean_fps"] > 0
        assert runs[key]["stage_ms"]["infer"] > 0
    tensorrt = runs["TensorRT", "FP16"]
    assert tensorrt.get("frames_done") == 20 or tensorrt["skipped"], tensorrt

    int8 = runs["ONNX Runtime", "INT8"]
    assert int8["frames_done"] == 20, int8
    assert int8["artifact"] == str(out / "export" / "model.int8.onnx")
    assert 0 < summary["export"]["int8_check"]["consistency_miou"] <= 1
    assert re.search(r"^ONNX Runtime +INT8 +CPUExecutionProvider +20 +[\d.]+ ", stdout, re.M)
