"""An engine's batch profile for several streams: ``edgeseg export --format engine --max-batch N``.

The option is checked before any slow work here; the engine it builds (profile maximum N, used
by a multi-stream run N frames per call) is checked where TensorRT and a GPU are present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgeseg.backends import cuda
from edgeseg.card import ModelCard, read_sidecar
from edgeseg.checkpoint import save_checkpoint
from edgeseg.errors import EdgesegError
from edgeseg.export.options import ExportOptions, plan_export
from edgeseg.models import create_model

CARD = ModelCard(
    architecture="segnet-basic",
    num_classes=2,
    class_names=("background", "thing"),
    palette=((0, 0, 0), (255, 0, 0)),
    input_hw=(32, 32),
    arch_args={"channels": 8, "kernel_size": 3},
)


def test_max_batch_applies_to_engines_only(cli, tmp_path: Path) -> None:
    checkpoint = tmp_path / "m.pt"
    checkpoint.write_bytes(b"not read before the options are checked")
    with pytest.raises(EdgesegError, match=r"--max-batch 4: .* applies with --format engine"):
        plan_export(ExportOptions(checkpoint, tmp_path / "out", max_batch=4))
    engine = ExportOptions(checkpoint, tmp_path / "out", format="engine", max_batch=4)
    assert plan_export(engine).options.max_batch == 4
    result = cli("export", str(checkpoint), "--out", str(tmp_path / "out"), "--max-batch", "4")
    assert result.returncode == 2 and "applies with --format engine" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.tensorrt
def test_a_dynamic_engine_takes_the_stream_count_in_one_call(tmp_path: Path) -> None:
    try:  # TensorRT and a GPU: checked for the marker by tests/conftest.py
        cuda.gpu_info()
    except EdgesegError as exc:
        pytest.skip(str(exc))
    from edgeseg.export import export_checkpoint
    from edgeseg.runtime.options import OutputOptions
    from edgeseg.runtime.run_streams import run_streams
    from edgeseg.runtime.segmenter import Segmenter

    checkpoint = tmp_path / "m.pt"
    torch.manual_seed(0)
    save_checkpoint(checkpoint, create_model("segnet-basic", 2, channels=8, kernel_size=3), CARD)
    options = ExportOptions(checkpoint, tmp_path / "out", format="engine", dynamic=True,
                            unpool="native", max_batch=12)  # fmt: skip
    result = export_checkpoint(options)
    engine = result.files["engine"]
    assert read_sidecar(engine).build["profile"]["max"][0] == 12
    with Segmenter(engine) as segmenter:
        assert segmenter.max_batch == 12
    import cv2
    import numpy as np

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    sources = [f"s{i}={folder}" for i in range(10)]
    summary = run_streams(engine, sources, outputs=OutputOptions(masks=tmp_path / "masks"))
    assert summary.stats.batch.engine_batch == 10 and summary.stats.batch.max_batch == 10
