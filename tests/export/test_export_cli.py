"""``edgeseg export`` and ``edgeseg plugin`` from the command line: output, help examples and
one-line errors with exit code 2.

In-process (``cli`` fixture), except the Jetson path, which needs torch made unimportable before
anything imports it: a real process.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error
from model_helpers import TINY_CARD

from edgeseg.checkpoint import save_checkpoint
from edgeseg.models import create_model

CARD = TINY_CARD


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "best.pt"
    save_checkpoint(path, create_model("segnet-basic", 3, channels=8, kernel_size=3), CARD)
    return path


def test_missing_checkpoint(cli, tmp_path: Path) -> None:
    result = cli("export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "nope.pt not found")
    assert not (tmp_path / "out").exists()


def test_not_a_checkpoint(cli, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint\n")
    assert_one_line_error(cli("export", str(bogus), "--out", str(tmp_path / "out")), "notes.pt")


def test_engine_without_tensorrt(cli, checkpoint: Path, tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    result = cli(
        "export", str(checkpoint), "--out", str(tmp_path / "out"), "--format", "engine", "--fp16"
    )
    assert_one_line_error(result, "TensorRT is not installed: desktop: pip install tensorrt")
    assert "Jetson: JetPack 6.1/6.2 ships TensorRT 10.3" in result.stderr
    assert not (tmp_path / "out").exists()


def test_too_old_opset(cli, checkpoint: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        cli("export", str(checkpoint), "--opset", "13", "--out", str(tmp_path)),
        "--opset 13 is too old",
    )


def test_onnx_source_needs_format_engine(cli, checkpoint: Path, tmp_path: Path) -> None:
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"")
    assert_one_line_error(cli("export", str(onnx_file)), "use --format engine")


def test_plugin_path(cli, tmp_path: Path) -> None:
    result = cli("plugin", "path", env={"EDGESEG_PLUGIN_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.strip() == str(tmp_path / "libedgeseg_unpool_plugin.so")
    assert "edgeseg plugin build" in result.stderr  # not built yet


def test_help_lists_the_commands(cli) -> None:
    result = cli("--help")
    assert "  export" in result.stdout and "  plugin" in result.stdout


def _examples(cli, *command: str) -> list[list[str]]:
    text = cli(*command, "--help").stdout
    block = text.split("Examples:")[1].split("Options:")[0]
    return [shlex.split(line.strip()) for line in block.strip().splitlines()]


@pytest.mark.slow
def test_export_help_examples_run(cli, checkpoint: Path, camvid_like: Path, tmp_path: Path) -> None:
    """The --help examples, with their paths pointed at a real checkpoint and a scratch folder."""
    examples = _examples(cli, "export")
    assert len(examples) == 6 and all(e[:2] == ["edgeseg", "export"] for e in examples)
    first, *engine_examples, int8_dataset, int8_folder = examples
    places = {"../shared/datasets/camvid": camvid_like, "frames/": camvid_like / "train"}
    for index, example in enumerate((int8_dataset, int8_folder)):
        args = [str(checkpoint) if a.endswith(".pt") else str(places.get(a, a)) for a in example]
        out = tmp_path / f"int8-{index}"
        # A random model: INT8 moves its near-arbitrary decisions, so the gate is opened.
        gate = ("--int8-max-drop", "100", "--int8-min-agreement", "0")
        result = cli(*args[1:], "--out", str(out), *gate)
        assert result.returncode == 0, result.stderr
        assert (out / "model.int8.onnx").is_file() and (out / "int8_report.json").is_file()
    args = [
        str(checkpoint) if a.endswith(".pt") else str(tmp_path / "out") if a == "export/" else a
        for a in first[2:]
    ]
    result = cli("export", *args)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert (tmp_path / "out" / "model.trt.onnx").is_file()
    report = result.stdout
    assert "parity with PyTorch" in report and "max |diff|" in report
    assert re.search(r"model\.onnx .* ok ", report) and re.search(
        r"model\.trt\.onnx .* ok ", report
    )
    assert "[torch.onnx]" not in report  # the exporter's progress lines are kept out
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        for example in engine_examples:  # without TensorRT, each is the one-line refusal
            args = [
                str(checkpoint)
                if a.endswith(".pt")
                else str(tmp_path / "out" / Path(a).name)
                if a.endswith(".onnx")
                else str(tmp_path / "out")
                if a == "export/"
                else a
                for a in example[2:]
            ]
            assert_one_line_error(cli("export", *args), "TensorRT is not installed")


def test_plugin_help_examples_parse(cli) -> None:
    examples = _examples(cli, "plugin")
    assert [e[:3] for e in examples] == [["edgeseg", "plugin", "build"]] * 2 + [
        ["edgeseg", "plugin", "path"]
    ]
    for example in examples:
        assert cli(*example[1:], "--help").returncode == 0


@pytest.mark.slow
def test_engine_path_from_onnx_needs_no_torch(checkpoint: Path, tmp_path: Path) -> None:
    """A Jetson builds its engine from an exported ONNX without torch: everything up to
    TensorRT imports and runs with torch made unimportable."""
    from edgeseg.export import ExportOptions, export_checkpoint

    out = tmp_path / "out"
    export_checkpoint(ExportOptions(checkpoint, out, check=False), log=lambda line: None)
    script = f"""
import sys
sys.modules["torch"] = None  # any 'import torch' now fails
from edgeseg.export.fp16 import to_fp16
from edgeseg.export.onnx_io import card_of, load_onnx
from edgeseg.backends.runner import run_onnx
from edgeseg.export.parity import sample_inputs
from edgeseg.export.trt_graph import to_trt_graph, trt_graph_problems
from edgeseg.unpool_graph import reexpand_plugins
import edgeseg.export.engine, edgeseg.export.pipeline, edgeseg.backends.tensorrt
model = load_onnx({str(out / "model.trt.onnx")!r})
card = card_of(model)
half = to_trt_graph(to_fp16(reexpand_plugins(model)))
assert trt_graph_problems(half, 4) == [], trt_graph_problems(half, 4)
run_onnx(reexpand_plugins(half), sample_inputs(card, 1))
from edgeseg.cli.main import main
main(["export", {str(out / "model.trt.onnx")!r}, "--format", "engine", "--out", {str(out)!r}])
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert_one_line_error(result, "TensorRT is not installed")
    else:
        assert "torch" not in result.stderr, result.stderr


@pytest.mark.slow
def test_parity_failure_writes_nothing(checkpoint: Path, tmp_path: Path) -> None:
    from edgeseg.errors import EdgesegError
    from edgeseg.export import ExportOptions, export_checkpoint

    lines: list[str] = []
    with pytest.raises(EdgesegError) as caught:
        export_checkpoint(
            ExportOptions(checkpoint, tmp_path / "out", tolerance=1e-12), log=lines.append
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("parity check failed (nothing was written): model.onnx: mean")
    for name in ("model.portable.onnx", "model.trt.onnx"):
        assert f"{name}: mean |logit diff|" in message
    assert "FAILED" in "\n".join(lines)  # the report came first
    assert not (tmp_path / "out").exists()


def test_plugin_build_without_headers_is_one_line(cli, tmp_path: Path) -> None:
    result = cli(
        "plugin",
        "build",
        "--tensorrt-include",
        str(tmp_path / "nowhere"),
        env={"EDGESEG_PLUGIN_DIR": str(tmp_path)},
    )
    assert_one_line_error(result, "no NvInfer.h in")
