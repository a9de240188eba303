"""Export of every model of the family: parity with PyTorch, the files, their cards, their graphs.

Each checkpoint holds seeded random weights with randomised BatchNorm statistics (so logits are
not trivially small). ``export_checkpoint`` itself gates on parity; these tests also hold the
figures to tighter bounds than its defaults and check the TensorRT graph's structure.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from model_helpers import randomize_batchnorm

from edgeseg.backends.tensorrt import PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from edgeseg.card import ONNX_METADATA_KEY, ModelCard
from edgeseg.checkpoint import load_model, save_checkpoint
from edgeseg.export import ExportOptions, export_checkpoint
from edgeseg.export.parity import sample_inputs
from edgeseg.export.trt_graph import trt_graph_problems
from edgeseg.models import create_model
from edgeseg.unpool_graph import PLUGIN_DOMAIN, plugin_nodes


def make_checkpoint(
    path: Path, architecture: str, input_hw: tuple[int, int], seed: int = 0, **arch_args: object
) -> Path:
    torch.manual_seed(seed)
    model = randomize_batchnorm(create_model(architecture, 5, **arch_args))
    card = ModelCard(
        architecture=architecture,
        num_classes=5,
        class_names=("a", "b", "c", "d", "e"),
        palette=((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)),
        input_hw=input_hw,
        arch_args=dict(arch_args),
        dataset="synthetic",
    )
    save_checkpoint(path, model, card)
    return path


def export(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    architecture: str,
    input_hw: tuple[int, int],
    arch_args: dict,
    **options: object,
):
    folder = tmp_path_factory.mktemp(name)
    checkpoint = make_checkpoint(folder / "model.pt", architecture, input_hw, **arch_args)
    lines: list[str] = []
    result = export_checkpoint(
        ExportOptions(checkpoint, folder / "export", **options), log=lines.append
    )
    result.log = "\n".join(lines)  # type: ignore[attr-defined]
    return result


@pytest.fixture(scope="module")
def segnet_small(tmp_path_factory):
    """Full SegNet at 45x67: odd sizes at every pooling stage (45->22, 67->33->16->8->4)."""
    return export(tmp_path_factory, "segnet", "segnet", (45, 67), {})


@pytest.fixture(scope="module")
def segnet_basic(tmp_path_factory):
    return export(tmp_path_factory, "basic", "segnet-basic", (45, 67), {}, fp16=True)


@pytest.fixture(scope="module")
def segnet_quarter_dynamic(tmp_path_factory):
    return export(
        tmp_path_factory, "quarter", "segnet", (64, 96), {"width": 0.25}, dynamic=True, argmax=True
    )


def assert_tight_parity(result) -> None:
    """Tighter than the export gate: FP32 mean difference within 2e-5 of the largest logit and
    99.99% agreement (the largest difference is reported, not bounded: see parity's doc)."""
    assert result.parity, "no parity figures"
    for figure in result.parity:
        assert figure.passed, figure.row()
        if "fp16" not in figure.artifact:
            assert figure.agreement >= 0.9999, figure.row()
            if figure.mean_abs_diff is not None:
                assert figure.mean_abs_diff <= 2e-5 * figure.logit_scale, figure.row()


def card_in(path: Path) -> ModelCard:
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    return ModelCard.from_json(props[ONNX_METADATA_KEY])


# --- parity ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_segnet_parity_at_an_odd_size(segnet_small) -> None:
    assert_tight_parity(segnet_small)
    assert {f.artifact for f in segnet_small.parity} == {
        "model.onnx",
        "model.portable.onnx",
        "model.trt.onnx",
    }
    assert "parity with PyTorch" in segnet_small.log


@pytest.mark.slow
def test_segnet_basic_parity_fp32_and_fp16(segnet_basic) -> None:
    assert_tight_parity(segnet_basic)
    fp16 = [f for f in segnet_basic.parity if "fp16" in f.artifact]
    assert {f.artifact for f in fp16} == {"model.fp16.onnx", "model.fp16.trt.onnx"}
    for figure in fp16:
        assert figure.agreement > 0.99, figure.row()
        assert figure.mean_abs_diff < 1e-2 * figure.logit_scale, figure.row()


@pytest.mark.slow
def test_segnet_quarter_dynamic_class_map_parity(segnet_quarter_dynamic) -> None:
    result = segnet_quarter_dynamic
    assert_tight_parity(result)
    assert {f.output for f in result.parity} == {"class_map"}
    # the dynamic file ran at the card's size with batch 2 and at another, odd size
    assert {f.inputs for f in result.parity} == {"2x64x96", "1x97x65"}


@pytest.mark.slow
def test_segnet_parity_at_360x480(tmp_path_factory) -> None:
    result = export(tmp_path_factory, "segnet360", "segnet", (360, 480), {}, samples=1)
    assert_tight_parity(result)
    assert {f.inputs for f in result.parity} == {"1x360x480"}


# --- the files and their cards ----------------------------------------------------------------


def test_files_and_cards(segnet_basic, segnet_quarter_dynamic) -> None:
    files = segnet_basic.files
    assert {p.name for p in files.values()} == {
        "model.onnx",
        "model.portable.onnx",
        "model.trt.onnx",
        "model.fp16.onnx",
        "model.fp16.trt.onnx",
    }
    for role, path in files.items():
        card = card_in(path)
        assert card.architecture == "segnet-basic" and card.input_hw == (45, 67)
        assert card.precision == ("fp16" if "fp16" in role else "fp32")
        assert card.output == "logits" and card.edgeseg_version
        assert card.build["opset"] == 18 and card.build["dynamic"] is False
    assert card_in(files["trt_onnx"]).build["plugin"] == {
        "op_type": PLUGIN_OP_TYPE,
        "namespace": PLUGIN_NAMESPACE,
        "version": PLUGIN_VERSION,
    }
    quarter = card_in(segnet_quarter_dynamic.files["onnx"])
    assert quarter.output == "class_map" and quarter.build["dynamic"] is True
    assert quarter.arch_args == {"width": 0.25}


def test_static_input_and_logits_output(segnet_small) -> None:
    model = onnx.load(str(segnet_small.files["onnx"]))
    (graph_input,) = model.graph.input
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "input" and dims == [1, 3, 45, 67]
    (graph_output,) = model.graph.output
    assert graph_output.name == "logits"
    assert [d.dim_value for d in graph_output.type.tensor_type.shape.dim] == [1, 5, 45, 67]


def test_dynamic_class_map_runs_at_other_sizes(segnet_quarter_dynamic) -> None:
    path = segnet_quarter_dynamic.files["onnx"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    output = session.get_outputs()[0]
    assert output.name == "class_map" and output.type == "tensor(int32)"
    model, card = load_model(segnet_quarter_dynamic.out_dir.parent / "model.pt")
    inputs = sample_inputs(card, 3, (33, 161), seed=3)  # 3 frames, odd sizes down to 1x5
    class_map = session.run(None, {"input": inputs})[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).argmax(1).numpy()
    assert class_map.shape == (3, 33, 161)
    assert (class_map == expected).mean() >= 0.9999


def test_portable_onnx_uses_standard_ops_only(segnet_small, segnet_quarter_dynamic) -> None:
    for result in (segnet_small, segnet_quarter_dynamic):
        model = onnx.load(str(result.files["onnx"]))
        onnx.checker.check_model(model, full_check=True)
        assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
        assert all(o.version >= 17 for o in model.opset_import)
        assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
        ops = Counter(n.op_type for n in model.graph.node)
        assert not {"ScatterND", "ScatterElements", "DepthToSpace"} & set(ops)
        assert ops["ArgMax"] == (result.card.output == "class_map")  # only a class-map head
        # The ONNX Runtime form: every unpooling is MaxUnpool at its encoder MaxPool's Indices.
        pools = [n for n in model.graph.node if n.op_type == "MaxPool"]
        assert ops["MaxUnpool"] == len(pools) == 5
        assert all(len(n.output) == 2 for n in pools)
        # no exporter stack traces (local paths) in the file
        assert not any(n.metadata_props for n in model.graph.node)


# --- the TensorRT graph ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, expected", [("segnet_small", 5), ("segnet_basic", 4), ("segnet_quarter_dynamic", 5)]
)
def test_trt_graph_structure(request, fixture: str, expected: int) -> None:
    result = request.getfixturevalue(fixture)
    roles = [r for r in result.files if r.endswith("trt_onnx")]
    for role in roles:
        model = onnx.load(str(result.files[role]))
        assert trt_graph_problems(model, expected) == []
        onnx.checker.check_model(model, full_check=True)
        ops = Counter(n.op_type for n in model.graph.node)
        assert ops[PLUGIN_OP_TYPE] == expected and ops["MaxPool"] == expected
        assert "MaxUnpool" not in ops
        assert not {op for op in ops if op.startswith(("Scatter", "Gather"))}
        assert all(len(n.output) == 1 for n in model.graph.node if n.op_type == "MaxPool")
        assert {"SpaceToDepth", "DepthToSpace", "Where", "Equal"}.isdisjoint(ops)
        assert any(o.domain == PLUGIN_DOMAIN for o in model.opset_import)
        pool_inputs = {n.input[0] for n in model.graph.node if n.op_type == "MaxPool"}
        producers = {o: n for n in model.graph.node for o in n.output}
        types = {
            v.name: v.type.tensor_type.elem_type
            for v in (*model.graph.value_info, *model.graph.input)
        }
        for node in plugin_nodes(model):
            assert node.domain == PLUGIN_DOMAIN
            attrs = {a.name: a.s.decode() for a in node.attribute}
            assert attrs == {"plugin_namespace": "edgeseg", "plugin_version": "1"}
            assert node.input[1] in pool_inputs  # exactly the tensor the MaxPool pools
            for name in node.input:  # no int64 index tensor feeds the plugin
                assert types[name] in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
                assert producers[name].op_type in ("Relu", "Conv", "MaxPool")
            if "fp16" in role:
                assert types[node.input[0]] == onnx.TensorProto.FLOAT16


def test_trt_graph_is_the_portable_graph_with_plugins(segnet_small) -> None:
    portable = onnx.load(str(segnet_small.files["onnx"]))
    trt = onnx.load(str(segnet_small.files["trt_onnx"]))
    outside = Counter(
        n.op_type for n in portable.graph.node if not n.name.startswith("edgeseg_unpool/")
    )
    assert Counter(n.op_type for n in trt.graph.node) == outside + Counter({PLUGIN_OP_TYPE: 5})
    assert {i.name for i in trt.graph.initializer} == {i.name for i in portable.graph.initializer}


def test_trt_onnx_cannot_run_in_onnx_runtime_as_is(segnet_basic) -> None:
    # Why parity re-expands the plugin nodes: ONNX Runtime has no EdgesegUnpool kernel.
    with pytest.raises(Exception, match=r"EdgesegUnpool|edgeseg"):
        ort.InferenceSession(
            str(segnet_basic.files["trt_onnx"]), providers=["CPUExecutionProvider"]
        )


def test_class_map_dtype_and_values(segnet_quarter_dynamic) -> None:
    session = ort.InferenceSession(
        str(segnet_quarter_dynamic.files["onnx"]), providers=["CPUExecutionProvider"]
    )
    out = session.run(None, {"input": np.zeros((1, 3, 64, 96), np.float32)})[0]
    assert out.dtype == np.int32 and out.shape == (1, 64, 96)
    assert out.min() >= 0 and out.max() < 5
