"""The engine builder without TensorRT: its decisions are pure functions, its failures one line.

The one test that builds and runs a real engine is marked ``tensorrt`` and skips, naming what is
missing, where TensorRT, a GPU or the plugin's build tools are absent.
"""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
import torch
from gpu_helpers import missing

from edgeseg.backends import cuda
from edgeseg.backends.tensorrt import (
    TENSORRT_MISSING,
    check_engine_compat,
    engine_build_facts,
    import_tensorrt,
    parse_version,
    require_plugin_library,
    same_tensorrt,
    tensorrt_major,
)
from edgeseg.card import ModelCard, read_sidecar
from edgeseg.checkpoint import save_checkpoint
from edgeseg.errors import EdgesegError
from edgeseg.export.engine_plan import (
    PrecisionPlan,
    default_profile,
    format_precision_summary,
    layer_precision_summary,
    precision_plan,
)
from edgeseg.models import create_model

CARD = ModelCard(
    architecture="segnet-basic",
    num_classes=2,
    class_names=("bg", "fg"),
    palette=((0, 0, 0), (255, 255, 255)),
    input_hw=(45, 67),
    arch_args={"channels": 8, "kernel_size": 3},
)


# --- version split and precision --------------------------------------------------------------


def test_versions_are_parsed() -> None:
    assert parse_version("10.3.0.30") == (10, 3, 0, 30)
    assert parse_version("11.1.0") == (11, 1, 0)
    assert tensorrt_major("10.3.0.30") == 10 and tensorrt_major("11.0.0.2") == 11
    assert same_tensorrt("10.3.0.30", "10.3.0.26") and not same_tensorrt("10.3.0", "10.7.0")
    with pytest.raises(EdgesegError, match="version"):
        parse_version("dev")


def test_precision_plan_per_major_version() -> None:
    # FP16 is strongly typed from the FP16 ONNX on both: 10.x through
    # NetworkDefinitionCreationFlag::kSTRONGLY_TYPED (NvInfer.h v10.3.0), no precision flag
    # (not allowed on a strongly typed network); 11.x has neither flags nor weak typing.
    for major in (10, 11):
        assert precision_plan(major, "fp16") == PrecisionPlan("fp16", (), (), strongly_typed=True)
    # "fp32" means FP32, not TF32
    assert precision_plan(10, "fp32") == PrecisionPlan("fp32", (), ("TF32",))
    assert precision_plan(11, "fp32") == PrecisionPlan("fp32", (), ("TF32",), strongly_typed=True)
    with pytest.raises(EdgesegError, match=r"10\.x or 11\.x"):
        precision_plan(8, "fp32")
    with pytest.raises(EdgesegError, match=r"10\.x or 11\.x"):
        precision_plan(8, "int8")
    # INT8 is the Q/DQ graph: 10.x still needs BuilderFlag::kINT8 for it (and kFP16 for the
    # float layers with --fp16, with the unpooling layers pinned to FP32); 11.x has no such
    # flags, the graph's types decide.
    assert precision_plan(10, "int8") == PrecisionPlan("int8", ("INT8",), ())
    assert precision_plan(10, "int8", float_fp16=True) == PrecisionPlan(
        "int8", ("INT8", "FP16"), (), pin_unpool=True
    )
    assert precision_plan(11, "int8", float_fp16=True) == PrecisionPlan(
        "int8", (), (), strongly_typed=True
    )
    assert precision_plan(10, "fp16").typing == "strongly typed"
    assert precision_plan(10, "int8").typing == "weakly typed"
    with pytest.raises(EdgesegError, match="fp32, fp16, int8"):
        precision_plan(10, "bf16")


@pytest.mark.slow
def test_onnx_precision_of_reads_the_graph_types() -> None:
    from edgeseg.export.engine_plan import onnx_precision_of
    from edgeseg.export.fp16 import to_fp16
    from edgeseg.export.torch_to_onnx import export_onnx

    model = create_model("segnet-basic", num_classes=2, channels=8, kernel_size=3).eval()
    portable = export_onnx(model, CARD)
    assert onnx_precision_of(portable) == "fp32"
    assert onnx_precision_of(to_fp16(portable)) == "fp16"
    from onnx import TensorProto, helper

    half_in = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 1, 2, 2])
    relu = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [half_in], [])
    assert onnx_precision_of(helper.make_model(relu)) == "fp16"  # no weights, FP16 input
    portable.graph.node.append(helper.make_node("QuantizeLinear", ["a", "s"], ["q"]))
    assert onnx_precision_of(portable) == "int8"


def test_default_profile() -> None:
    assert default_profile((1, 3, 360, 480), (360, 480)) == ((1, 3, 360, 480),) * 3
    low, opt, high = default_profile((-1, 3, -1, -1), (360, 480))
    assert low == (1, 3, 160, 224) and opt == (1, 3, 360, 480) and high == (8, 3, 736, 960)
    low, _, high = default_profile((-1, 3, 45, 67), (45, 67), max_batch=4)
    assert low == (1, 3, 45, 67) and high == (4, 3, 45, 67)
    low, _, _ = default_profile((1, 3, -1, -1), (40, 40))
    assert low == (1, 3, 32, 32)  # never below 32 (SegNet's five poolings)


def test_layer_precision_summary() -> None:
    information = json.dumps(
        {
            "Layers": [
                {
                    "Name": "conv1",
                    "LayerType": "CaskConvolution",
                    "Outputs": [
                        {
                            "Name": "a",
                            "Dimensions": [1, 64, 360, 480],
                            "Format/Datatype": "Channel major FP16 format where channel % 8 == 0",
                        }
                    ],
                },
                {"Name": "conv2", "Outputs": [{"Format/Datatype": "Channel major FP16 format"}]},
                {
                    "Name": "EdgesegUnpool/decoders.0.unpool",
                    "LayerType": "PluginV3",
                    "Outputs": [{"Format/Datatype": "Row major linear FP32"}],
                },
                {"Name": "argmax", "Outputs": [{"Format/Datatype": "Row major linear Int32"}]},
            ],
            "Bindings": ["input", "class_map"],
        }
    )
    counts = layer_precision_summary(information)
    assert counts == Counter({"fp16": 2, "fp32": 1, "int32": 1})
    assert format_precision_summary(counts) == "layer precisions: 2 fp16, 1 fp32, 1 int32"
    names_only = json.dumps({"Layers": ["conv1", "conv2"], "Bindings": []})
    assert layer_precision_summary(names_only) == Counter()
    assert "not reported" in format_precision_summary(Counter())


# --- one-line failures ----------------------------------------------------------------------------


def test_missing_tensorrt_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as if not installed
    with pytest.raises(EdgesegError) as caught:
        import_tensorrt()
    assert str(caught.value) == TENSORRT_MISSING
    assert "pip install tensorrt" in TENSORRT_MISSING and "JetPack 6.1/6.2" in TENSORRT_MISSING


def test_old_tensorrt_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="8.6.1"))
    with pytest.raises(EdgesegError, match=r"TensorRT 8\.6\.1 is installed; edgeseg needs 10.x"):
        import_tensorrt()


def test_missing_plugin_names_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", str(tmp_path))
    with pytest.raises(EdgesegError, match=r"not built .*: edgeseg plugin build \(or set"):
        require_plugin_library()


def _no_torch_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)


def test_no_cuda_binding_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_torch_cuda(monkeypatch)
    for name in (
        "cuda",
        "cuda.bindings",
        "cuda.bindings.runtime",
        "cuda.cudart",
        "pycuda",
        "pycuda.autoinit",
        "pycuda.driver",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(EdgesegError) as caught:
        cuda.load_cuda()
    assert str(caught.value) == cuda.NO_BINDING


def test_no_gpu_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_torch_cuda(monkeypatch)
    runtime = types.ModuleType("cuda.bindings.runtime")
    runtime.cudaGetDeviceCount = lambda: (100, 0)  # cudaErrorNoDevice
    package = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = runtime
    package.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", package)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    for name in ("pycuda", "pycuda.autoinit", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(EdgesegError) as caught:
        cuda.load_cuda()
    assert str(caught.value) == cuda.NO_GPU


def test_engine_export_without_tensorrt_fails_before_exporting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from edgeseg.export import ExportOptions, export_checkpoint

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    checkpoint = tmp_path / "m.pt"
    save_checkpoint(checkpoint, create_model("segnet-basic", 2, channels=8, kernel_size=3), CARD)
    with pytest.raises(EdgesegError, match="TensorRT is not installed"):
        export_checkpoint(ExportOptions(checkpoint, tmp_path / "out", format="engine"))
    assert not (tmp_path / "out").exists()


# --- the engine's card ---------------------------------------------------------------------------


def engine_card(**overrides: str) -> ModelCard:
    facts = engine_build_facts(
        tensorrt="10.3.0.30",
        cuda="12.6",
        gpu="Orin",
        compute_capability="8.7",
        precision="fp16",
        plugin_version="1",
        edgeseg="0.1.0",
        source_onnx="model.trt.onnx",
    )
    facts.update(overrides)
    return CARD.replace(precision="fp16", build=facts)


def test_compatible_engine_is_accepted() -> None:
    check_engine_compat(
        engine_card(),
        tensorrt="10.3.0.30",
        gpu="Orin",
        compute_capability="8.7",
        plugin_version="1",
        engine="export/model.engine",
    )


@pytest.mark.parametrize(
    "machine, fragment",
    [
        ({"tensorrt": "10.7.0.23"}, "TensorRT 10.3.0.30, this machine has 10.7.0.23"),
        (
            {"gpu": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"},
            "GPU Orin (compute 8.7), this machine has NVIDIA GeForce RTX 4090 (compute 8.9)",
        ),
        ({"plugin_version": "2"}, "unpooling plugin version 1, installed 2"),
    ],
)
def test_foreign_engine_is_refused_with_the_rebuild_command(machine: dict, fragment: str) -> None:
    here = {
        "tensorrt": "10.3.0.30",
        "gpu": "Orin",
        "compute_capability": "8.7",
        "plugin_version": "1",
        **machine,
    }
    with pytest.raises(EdgesegError) as caught:
        check_engine_compat(engine_card(), engine="export/model.engine", **here)
    message = str(caught.value)
    assert "\n" not in message and fragment in message
    assert message.startswith("model.engine was built for")
    assert message.endswith(
        "rebuild it here: edgeseg export export/model.trt.onnx --format engine --fp16 --out export"
    )


def test_engine_without_build_record_is_refused() -> None:
    with pytest.raises(EdgesegError, match="no record of what built it"):
        check_engine_compat(CARD, tensorrt="10.3.0", gpu="Orin", compute_capability="8.7")


# --- a real engine, where TensorRT and a GPU are present ---------------------------------------


@pytest.mark.tensorrt
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_engine_build_and_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fp16: bool
) -> None:
    try:  # TensorRT and a GPU: checked for the marker by tests/conftest.py
        gpu = cuda.gpu_info()
    except EdgesegError as exc:
        missing(str(exc))
    from edgeseg.backends.tensorrt import PLUGIN_VERSION, plugin_library_path
    from edgeseg.export import ExportOptions, export_checkpoint
    from edgeseg.export.plugin import build_plugin

    if not plugin_library_path().is_file():
        monkeypatch.setenv("EDGESEG_PLUGIN_DIR", str(tmp_path / "plugin"))
        try:
            build_plugin()
        except EdgesegError as exc:
            missing(f"cannot build the plugin here: {exc}")
    checkpoint = tmp_path / "m.pt"
    torch.manual_seed(0)
    save_checkpoint(checkpoint, create_model("segnet-basic", 2, channels=8, kernel_size=3), CARD)
    result = export_checkpoint(
        ExportOptions(checkpoint, tmp_path / "out", format="engine", fp16=fp16)
    )
    (engine_figure,) = [f for f in result.parity if f.artifact == "model.engine"]
    assert engine_figure.passed, engine_figure.row()
    card = read_sidecar(result.files["engine"])
    assert card.precision == ("fp16" if fp16 else "fp32")
    import tensorrt as trt

    check_engine_compat(
        card,
        tensorrt=trt.__version__,
        gpu=gpu.name,
        compute_capability=gpu.compute_capability,
        plugin_version=PLUGIN_VERSION,
        engine=result.files["engine"],
    )


def test_gpu_identity_in_the_card_is_what_the_binding_reports() -> None:
    from edgeseg.backends.cuda_api import uuid_text
    from edgeseg.export.engine import gpu_identity

    assert uuid_text(bytes(range(16))) == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
    full = cuda.GpuInfo("Orin", "8.7", "12.6", "GPU-1", 16, 62000)
    assert gpu_identity(full) == {
        "gpu_uuid": "GPU-1",
        "gpu_multiprocessors": 16,
        "gpu_memory_mib": 62000,
    }
    assert gpu_identity(cuda.GpuInfo("Orin", "8.7", "12.6")) == {}  # a binding that cannot say
