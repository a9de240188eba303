"""``edgeseg doctor --model FILE`` here (no GPU, no TensorRT): one line saying so, then the
``trtexec`` and ``polygraphy run`` commands that repeat the check elsewhere, for real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import TINY_CARD

from edgeseg.apps.doctor_model import describe_model, equivalent_commands, missing_device
from edgeseg.backends.runner import run_onnx
from edgeseg.backends.tensorrt import engine_build_facts
from edgeseg.card import write_sidecar
from edgeseg.export.fp16 import to_fp16
from edgeseg.export.onnx_io import attach_card, load_onnx, save_onnx
from edgeseg.export.torch_to_onnx import export_onnx
from edgeseg.export.trt_graph import to_trt_graph
from edgeseg.models import create_model
from edgeseg.unpool_graph import plugin_nodes

pytestmark = pytest.mark.skipif(
    missing_device() is None, reason="TensorRT and a GPU are here: doctor --model runs for real"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.trt.onnx (FP32, static) and model.fp16.trt.onnx (dynamic), with their cards."""
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = create_model("segnet-basic", num_classes=3, channels=8, kernel_size=3).eval()
    for name, precision, dynamic in (("model", "fp32", False), ("model.fp16", "fp16", True)):
        portable = export_onnx(model, TINY_CARD, dynamic=dynamic)
        graph = to_trt_graph(to_fp16(portable) if precision == "fp16" else portable)
        attach_card(graph, TINY_CARD.replace(precision=precision))
        save_onnx(graph, folder / f"{name}.trt.onnx")
    return folder


@pytest.mark.slow
def test_without_a_gpu_one_line_then_the_commands(cli, exported: Path) -> None:
    source = exported / "model.fp16.trt.onnx"
    result = cli("doctor", "--model", str(source))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == (
        "doctor --model: TensorRT is not installed: model.fp16.trt.onnx was not built or run "
        "here; the same check on a machine with TensorRT and a GPU:"
    )
    native = exported / "model.fp16.native.onnx"
    assert lines[1] == f"  (wrote {native}: the graph without the plugin, for Polygraphy)"
    trtexec, polygraphy = lines[2].strip(), lines[3].strip()
    assert trtexec.startswith(f"trtexec --onnx={source} --stronglyTyped ")
    assert "--minShapes=input:1x3x32x32 --optShapes=input:1x3x36x52" in trtexec
    assert "--dynamicPlugins=" in trtexec and "--shapes=input:1x3x36x52" in trtexec
    assert polygraphy == (
        f"polygraphy run {native} --trt --onnxrt --strongly-typed --input-shapes input:[1,3,36,52]"
    )
    # The written graph is the same network without the plugin: ONNX Runtime runs it alike.
    assert not plugin_nodes(load_onnx(native))
    inputs = np.random.default_rng(0).standard_normal((1, 3, 36, 52)).astype(np.float32)
    np.testing.assert_array_equal(
        run_onnx(load_onnx(native), inputs), run_onnx(load_onnx(source), inputs)
    )
    again = cli("doctor", "--model", str(source))  # the file is not written twice
    assert "(wrote" not in again.stdout and native.stat().st_size > 0


def test_fp32_and_engine_commands(exported: Path) -> None:
    onnx_model = describe_model(exported / "model.trt.onnx")
    assert (onnx_model.unpool, onnx_model.precision, onnx_model.dynamic) == (
        "plugin",
        "fp32",
        False,
    )
    trtexec = equivalent_commands(onnx_model, Path("/lib/p.so"))[0]
    assert trtexec == (
        f"trtexec --onnx={exported / 'model.trt.onnx'} --noTF32 --dynamicPlugins=/lib/p.so "
        "--profilingVerbosity=detailed --dumpLayerInfo"
    )
    engine = exported / "model.engine"
    engine.write_bytes(b"\0")
    facts = engine_build_facts(
        tensorrt="10.3.0", cuda="12.6", gpu="Orin", compute_capability="8.7", precision="int8",
        plugin_version="1", edgeseg="x", source_onnx="model.trt.onnx",
        builder_flags=["INT8", "FP16"], cleared_flags=[], network="weakly typed",
    )  # fmt: skip
    write_sidecar(TINY_CARD.replace(precision="int8", build=facts), engine)
    described = describe_model(engine)
    assert described.kind == "engine" and described.onnx == exported / "model.trt.onnx"
    commands = equivalent_commands(described, Path("/lib/p.so"))
    assert commands[0] == (
        f"trtexec --loadEngine={engine} --dynamicPlugins=/lib/p.so "
        "--profilingVerbosity=detailed --dumpLayerInfo"
    )
    assert commands[1].startswith(f"polygraphy run {exported / 'model.native.onnx'} --trt")
    assert "--int8 --fp16" in commands[1]  # what the card says TensorRT was given


def test_a_missing_model_is_one_line(cli, tmp_path: Path) -> None:
    result = cli("doctor", "--model", str(tmp_path / "nope.onnx"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"edgeseg: error: --model {tmp_path / 'nope.onnx'} not found"
    ]


def test_a_portable_graph_is_built_from_its_block_form(exported: Path) -> None:
    """model.onnx holds MaxUnpool, which TensorRT's parser rejects: the commands (and the build
    on a device) use its block form, written beside it."""
    from edgeseg.unpool_graph import to_maxunpool_form

    trt_graph = load_onnx(exported / "model.trt.onnx")
    from edgeseg.unpool_graph import reexpand_plugins

    portable = to_maxunpool_form(reexpand_plugins(trt_graph))
    attach_card(portable, TINY_CARD)
    save_onnx(portable, exported / "portable.onnx")
    model = describe_model(exported / "portable.onnx")
    assert model.max_unpool and model.unpool == "native"
    native = exported / "portable.native.onnx"
    trtexec, polygraphy = equivalent_commands(model, None)
    assert trtexec.startswith(f"trtexec --onnx={native} --noTF32 ") and "Plugins" not in trtexec
    assert polygraphy.startswith(f"polygraphy run {native} --trt --onnxrt")
    from edgeseg.apps.doctor_model import tensorrt_source

    assert tensorrt_source(model) == native and native.is_file()
    graph = load_onnx(native)
    assert not any(n.op_type == "MaxUnpool" for n in graph.graph.node)
    assert not plugin_nodes(graph)
    inputs = np.random.default_rng(1).standard_normal((1, 3, 36, 52)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(graph, inputs), run_onnx(portable, inputs), atol=1e-5)
