"""The example application in ``examples/`` runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime_helpers import ROOT, count_video_frames


def test_embed_camera_example_writes_an_overlay_video(
    tiny_onnx: Path, make_video, tmp_path: Path
) -> None:
    out = tmp_path / "overlay.mp4"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "embed_camera.py"),
            "--model",
            str(tiny_onnx),
            "--source",
            str(make_video(frames=9)),
            "--out",
            str(out),
            "--classes",
            "road,car",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "9 frames" in result.stdout
    assert count_video_frames(out) == 9
