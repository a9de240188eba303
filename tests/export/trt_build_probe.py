"""End-to-end engine builds over one TensorRT version's real bindings, for ``trt_api_probe.py``.

:func:`edgeseg.export.engine.build_engine` and ``edgeseg export --format engine`` run unchanged:
``import tensorrt`` gives a :class:`trt_api_probe.TrtOverStubs` around the real bindings (the
version check, the enums, every signature are the real ones), the plugin library is a file with
a build record for this version, and the ONNX files are real edgeseg graphs. Only two things
stand in for what this machine lacks: the objects the stub libraries cannot create (builder,
network, config, parser, runtime: signature-checked :class:`trt_contract.Checked`), and the GPU
facts (``gpu_info``: there is no GPU here). What each build hands TensorRT is read back from the
proxies: the ``create_network`` bit set and every ``set_flag``/``clear_flag`` with its enum.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trt_contract import Checked

#: A pinned-layer network: (name, output dtype names, input dtype names), as the ONNX parser
#: names layers after the nodes of the standard-op unpooling block.
LAYERS = (
    ("conv1", ("FLOAT",), ("FLOAT",)),
    ("edgeseg_unpool/d0/window_max", ("FLOAT",), ("FLOAT",)),
    ("edgeseg_unpool/d0/at_max", ("BOOL",), ("FLOAT", "FLOAT")),
    ("edgeseg_unpool/d0/prepool_hw", ("INT64",), ("FLOAT",)),
)


def _tensor(trt: Any, dtype: str, shape: tuple = (1, 3, 36, 52)) -> Checked:
    return Checked(trt, "ITensor", {"dtype": getattr(trt.DataType, dtype), "shape": shape})


def _layer(trt: Any, name: str, outputs: tuple, inputs: tuple) -> Checked:
    outs = [_tensor(trt, d) for d in outputs]
    ins = [_tensor(trt, d) for d in inputs]
    return Checked(
        trt,
        "ILayer",
        {
            "name": name,
            "num_outputs": len(outs),
            "num_inputs": len(ins),
            "get_output": lambda i: outs[i],
            "get_input": lambda i: ins[i],
        },
    )


class Build:
    """One build's proxies, and what TensorRT received through them."""

    def __init__(self, trt: Any, unpool: str = "plugin") -> None:
        from trt_api_probe import TrtOverStubs

        self.trt = trt
        specs = LAYERS if unpool == "native" else LAYERS[:1]  # a plugin graph has no block
        self.layers = [_layer(trt, *spec) for spec in specs]
        self.network = Checked(
            trt,
            "INetworkDefinition",
            {
                "get_input": _tensor(trt, "FLOAT"),
                "num_layers": len(self.layers),
                "get_layer": lambda i: self.layers[i],
            },
        )
        cache = Checked(trt, "ITimingCache", {"serialize": b"timing"})
        self.config = Checked(trt, "IBuilderConfig", {"get_timing_cache": cache})
        info = json.dumps({"Layers": [{"Name": "conv1", "Outputs": [{"Format/Datatype": "Half"}]}]})
        inspector = Checked(trt, "EngineInspector", {"get_engine_information": info})
        engine = Checked(trt, "ICudaEngine", {"create_engine_inspector": inspector})
        registered = iter([None, object()])  # the plugin's creator: absent, then loaded
        self.proxy = TrtOverStubs(
            trt,
            {
                "Builder": {
                    "create_network": self.network,
                    "create_builder_config": self.config,
                    "build_serialized_network": b"\0engine",
                },
                "OnnxParser": {"parse_from_file": True},
                "Runtime": {"deserialize_cuda_engine": engine},
                "IPluginRegistry": {
                    "get_creator": lambda *a: next(registered, object()),
                    "load_library": 1,
                },
            },
        )

    def network_flags(self) -> int:
        builders = [m for m in self.proxy.made if m._cls == "Builder"]
        (args,) = [a for made in builders for n, a in made.arguments if n == "create_network"]
        return int(args[0])

    def flags(self, method: str) -> list[str]:
        return sorted(str(a[0]).rsplit(".", 1)[-1] for n, a in self.config.arguments if n == method)

    def pinned(self) -> list[str]:
        return [
            layer._answers["name"] for layer in self.layers if "ILayer.precision=" in layer.calls
        ]


@contextlib.contextmanager
def over_stubs(build: Build, folder: Path) -> Iterator[Path]:
    """``import tensorrt`` gives ``build.proxy``; a plugin library for this version in
    ``folder``; the GPU facts of a GPU this machine does not have. Yields the library path."""
    from edgeseg.backends import cuda
    from edgeseg.backends import tensorrt as backend
    from edgeseg.export import engine as engine_mod

    library = folder / backend.LIBRARY_NAME
    library.write_bytes(b"")
    record = {"tensorrt_headers": build.trt.__version__, "plugin_version": backend.PLUGIN_VERSION}
    library.with_name(backend.BUILD_INFO_NAME).write_text(json.dumps(record))
    saved = sys.modules["tensorrt"], engine_mod.gpu_info
    gpu = cuda.GpuInfo("NVIDIA Stand-in", "8.7", "12.6", "GPU-0123", 16, 30000)
    sys.modules["tensorrt"] = build.proxy  # type: ignore[assignment]
    engine_mod.gpu_info = lambda: gpu
    try:
        yield library
    finally:
        sys.modules["tensorrt"], engine_mod.gpu_info = saved


def tiny_onnx(folder: Path, precision: str, unpool: str) -> Path:
    """A real edgeseg TensorRT graph of the tiny test model in ``precision``, saved in
    ``folder``."""
    import onnx

    from edgeseg.export.onnx_io import save_onnx

    graph = onnx.load_from_string(_tiny_graph(precision, unpool))
    return save_onnx(graph, folder / f"tiny.{precision}.{unpool}.onnx")


@functools.cache
def _tiny_graph(precision: str, unpool: str) -> bytes:
    import onnx

    from edgeseg.export.trt_graph import to_trt_graph
    from edgeseg.unpool_graph import reexpand_plugins

    graph = to_trt_graph(onnx.load_from_string(_tiny_portable(precision)))
    if unpool == "native":
        graph = reexpand_plugins(graph)
    return graph.SerializeToString()


@functools.cache
def _tiny_portable(precision: str) -> bytes:
    """The tiny model's portable graph in ``precision``: one torch export per probe, shared by
    the plugin and native graphs of every precision (each export costs seconds)."""
    import numpy as np
    import onnx

    from edgeseg.calibration.quantize import quantize_int8
    from edgeseg.export.fp16 import to_fp16

    portable = onnx.load_from_string(_tiny_fp32())
    if precision == "fp16":
        portable = to_fp16(portable)
    elif precision == "int8":
        calib = np.random.default_rng(0).standard_normal((4, 3, 36, 52)).astype(np.float32)
        portable = quantize_int8(portable, calib, method="minmax")
    return portable.SerializeToString()


@functools.cache
def _tiny_fp32() -> bytes:
    import torch
    from model_helpers import TINY_CARD

    from edgeseg.export.torch_to_onnx import export_onnx
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("segnet-basic", num_classes=3, channels=8, kernel_size=3).eval()
    return export_onnx(model, TINY_CARD).SerializeToString()


def build_case(trt: Any, precision: str, float_fp16: bool, unpool: str) -> dict[str, Any]:
    """Run ``build_engine`` with the plan the export makes; returns what TensorRT received."""
    from model_helpers import TINY_CARD

    from edgeseg.backends.tensorrt import tensorrt_major
    from edgeseg.card import read_sidecar
    from edgeseg.export.engine import build_engine
    from edgeseg.export.engine_plan import precision_plan

    plan = precision_plan(tensorrt_major(trt.__version__), precision, float_fp16=float_fp16)
    build = Build(trt, unpool)
    with tempfile.TemporaryDirectory() as tmp, over_stubs(build, Path(tmp)) as library:
        source = tiny_onnx(Path(tmp), plan.onnx_precision, unpool)
        engine = Path(tmp) / "model.engine"
        build_engine(
            source,
            engine,
            TINY_CARD,
            precision=precision,
            plan=plan,
            plugin_library=library if unpool == "plugin" else None,
            unpool=unpool,
            log=lambda _m: None,
        )
        card = read_sidecar(engine)
    return {
        "network_flags": build.network_flags(),
        "set": build.flags("set_flag"),
        "cleared": build.flags("clear_flag"),
        "pinned": build.pinned(),
        "card": card.build,
        "precision": card.precision,
    }


def export_case(trt: Any, fp16: bool, int8: bool) -> dict[str, Any]:
    """``edgeseg export <tiny checkpoint> --format engine [--fp16] [--int8]`` end to end (no
    parity check: no GPU runs the engine); returns what TensorRT received."""
    import cv2
    import numpy as np
    import torch
    from model_helpers import TINY_CARD, randomize_batchnorm

    from edgeseg.calibration.int8 import Int8Options
    from edgeseg.card import read_sidecar
    from edgeseg.checkpoint import save_checkpoint
    from edgeseg.export.options import ExportOptions
    from edgeseg.export.pipeline import export_checkpoint
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("segnet-basic", num_classes=3, channels=8, kernel_size=3).eval()
    randomize_batchnorm(model)
    build = Build(trt)
    with tempfile.TemporaryDirectory() as tmp, over_stubs(build, Path(tmp)) as library:
        folder = Path(tmp)
        checkpoint = folder / "tiny.pt"
        save_checkpoint(checkpoint, model, TINY_CARD)
        int8_options = None
        if int8:
            images = folder / "calib"
            images.mkdir()
            rng = np.random.default_rng(0)
            for i in range(4):
                cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 255, (36, 52, 3), np.uint8))
            int8_options = Int8Options(images, count=4, use_cache=False, min_agreement=0.0)
        import os

        os.environ["EDGESEG_PLUGIN_DIR"] = str(library.parent)
        options = ExportOptions(
            checkpoint, folder / "out", format="engine", fp16=fp16, int8=int8_options,
            check=False,
        )  # fmt: skip
        result = export_checkpoint(options, log=lambda _m: None)
        card = read_sidecar(result.files["engine"])
    return {
        "network_flags": build.network_flags(),
        "set": build.flags("set_flag"),
        "cleared": build.flags("clear_flag"),
        "card": card.build,
        "precision": card.precision,
    }


def expected(major: int, precision: str, float_fp16: bool, unpool: str) -> dict[str, Any]:
    """What each version must receive: the builder flags, cleared flags, network flags."""
    if major >= 11:  # no precision flags at all; strongly typed always (flag ignored: 0)
        cleared = ["TF32"] if precision == "fp32" else []
        return {"set": [], "cleared": cleared, "network_flags": 0, "network": "strongly typed"}
    if precision == "fp16":  # 1 << NetworkDefinitionCreationFlag::kSTRONGLY_TYPED (= 1)
        return {"set": [], "cleared": [], "network_flags": 2, "network": "strongly typed"}
    if precision == "fp32":
        return {"set": [], "cleared": ["TF32"], "network_flags": 0, "network": "weakly typed"}
    flags = ["FP16", "INT8"] if float_fp16 else ["INT8"]
    if float_fp16 and unpool == "native":
        flags = ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"]
    return {"set": flags, "cleared": [], "network_flags": 0, "network": "weakly typed"}


def assert_received(trt: Any, got: dict[str, Any], precision: str, fp16: bool, unpool: str):
    from edgeseg.backends.tensorrt import tensorrt_major

    want = expected(tensorrt_major(trt.__version__), precision, fp16, unpool)
    received = {
        "set": got["set"],
        "cleared": got["cleared"],
        "network_flags": got["network_flags"],
        "network": got["card"]["network"],
    }
    assert received == want, f"TensorRT received {received}, expected {want}"
    card_flags = sorted(got["card"]["builder_flags"])
    assert card_flags == want["set"], f"the card records {card_flags}, TensorRT got {want['set']}"
    assert got["precision"] == precision and got["card"]["network_flags"] == want["network_flags"]
    identity = {
        k: got["card"].get(k) for k in ("gpu_uuid", "gpu_multiprocessors", "gpu_memory_mib")
    }
    assert identity == {"gpu_uuid": "GPU-0123", "gpu_multiprocessors": 16, "gpu_memory_mib": 30000}


def build_check(precision: str, float_fp16: bool, unpool: str) -> Any:
    def check(trt: Any) -> None:
        got = build_case(trt, precision, float_fp16, unpool)
        assert_received(trt, got, precision, float_fp16, unpool)
        pins = ["edgeseg_unpool/d0/window_max", "edgeseg_unpool/d0/at_max"]
        pinned_expected = "FP16" in got["set"] and unpool == "native"
        assert got["pinned"] == (pins if pinned_expected else []), got["pinned"]

    return check


def export_check(fp16: bool, int8: bool) -> Any:
    def check(trt: Any) -> None:
        got = export_case(trt, fp16, int8)
        assert_received(trt, got, "int8" if int8 else "fp16" if fp16 else "fp32", fp16, "plugin")

    return check


def check_wrong_precision_refused(trt: Any) -> None:
    """An FP32 graph for a strongly typed FP16 plan: one line, before any builder exists."""
    from model_helpers import TINY_CARD

    from edgeseg.backends.tensorrt import tensorrt_major
    from edgeseg.errors import EdgesegError
    from edgeseg.export.engine import build_engine
    from edgeseg.export.engine_plan import precision_plan

    build = Build(trt)
    with tempfile.TemporaryDirectory() as tmp, over_stubs(build, Path(tmp)) as library:
        source = tiny_onnx(Path(tmp), "fp32", "plugin")
        plan = precision_plan(tensorrt_major(trt.__version__), "fp16")
        try:
            build_engine(source, Path(tmp) / "m.engine", TINY_CARD, precision="fp16", plan=plan,
                         plugin_library=library, log=lambda _m: None)  # fmt: skip
        except EdgesegError as exc:
            assert "fp32 graph" in str(exc) and "model.fp16.trt.onnx" in str(exc), exc
        else:
            raise AssertionError("an FP32 graph was built as an FP16 engine")
    assert not [m for m in build.proxy.made if m._cls == "Builder"], "a builder was made"


BUILD_CHECKS = {
    **{
        f"build-{name}-{unpool}": build_check(precision, fp16, unpool)
        for name, precision, fp16 in (
            ("fp32", "fp32", False),
            ("fp16", "fp16", False),
            ("int8", "int8", False),
            ("int8-fp16", "int8", True),
        )
        for unpool in ("plugin", "native")
    },
    "build-wrong-precision-refused": check_wrong_precision_refused,
    "export-fp16-engine": export_check(True, False),
    "export-int8-fp16-engine": export_check(True, True),
}
