"""Run in a subprocess over one TensorRT version's bindings (``.ci/tensorrt-bindings``): every
TensorRT call edgeseg makes, driven through edgeseg's own functions where they take the objects
as arguments, checked by :mod:`trt_contract`. Prints one JSON object: {check: "ok" | reason}.

One process imports one ``tensorrt``, so tests/export/test_trt_api.py starts this once per
version. The checks are listed in :data:`CHECKS` (importable without TensorRT, for test ids).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from trt_contract import Checked, accepts, check_call

FACTORIES = ("Builder", "Runtime", "OnnxParser")


class TrtOverStubs:
    """The real ``tensorrt`` module, except that the objects the stubs cannot create (builder,
    runtime, parser, plugin registry) are :class:`Checked` stand-ins, after the real constructor's
    signature accepted the arguments. ``answers`` script the values edgeseg's control flow reads.
    """

    def __init__(self, trt: Any, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self._trt = trt
        self._answers = answers or {}
        self.made: list[Checked] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._trt, name)
        if name in FACTORIES:
            return lambda *args: self._make(name, real, args)
        if name == "get_plugin_registry":
            return lambda: self._checked("IPluginRegistry")
        return real

    def _checked(self, cls: str) -> Checked:
        made = Checked(self._trt, cls, self._answers.get(cls))
        self.made.append(made)
        return made

    def _make(self, name: str, real: type, args: tuple) -> Checked:
        problem = accepts(self._trt, real.__init__, (Checked(self._trt, name), *args), {})
        if problem:
            raise TypeError(f"TensorRT {self._trt.__version__}: {name}{problem}")
        return self._checked(name)


def _logger(trt: Any) -> Any:
    from edgeseg.backends.tensorrt_engine import make_logger

    return make_logger(trt)


# --- the checks ----------------------------------------------------------------------------


def check_import(trt: Any) -> None:
    from edgeseg.backends.tensorrt import SUPPORTED_MAJORS, import_tensorrt, tensorrt_major

    module = import_tensorrt()
    assert module.__version__ == trt.__version__
    assert tensorrt_major(module.__version__) in SUPPORTED_MAJORS


def check_logger(trt: Any) -> None:
    logger = _logger(trt)
    assert isinstance(logger, trt.ILogger)
    logger.log(trt.ILogger.Severity.ERROR, "first line\nsecond line")
    assert logger.last_error == "first line"
    logger.log(trt.ILogger.Severity.WARNING, "not an error")
    assert logger.last_error == "first line"
    trt.Logger(trt.Logger.WARNING)


def check_plugin_registry(trt: Any) -> None:
    from edgeseg.backends import tensorrt as backend

    check_call(trt, "IPluginRegistry", "load_library", "/x/lib.so")
    check_call(trt, "IPluginRegistry", "get_creator", "EdgesegUnpool", "1", "edgeseg")
    with tempfile.TemporaryDirectory() as folder:
        library = Path(folder) / backend.LIBRARY_NAME
        library.write_bytes(b"")
        record = {"tensorrt_headers": trt.__version__, "plugin_version": backend.PLUGIN_VERSION}
        library.with_name(backend.BUILD_INFO_NAME).write_text(json.dumps(record))
        creators = iter([None, object()])  # not registered before the load, registered after
        proxy = TrtOverStubs(
            trt, {"IPluginRegistry": {"get_creator": lambda *a: next(creators), "load_library": 1}}
        )
        handle = backend.load_plugin(proxy, library)
        again = backend.load_plugin(proxy, library)  # once per process: no second load_library
        calls = [c for made in proxy.made for c in made.calls]
        assert handle == again == 1
        assert calls.count("IPluginRegistry.load_library") == 1, calls


def check_plugin_refused(trt: Any) -> None:
    from edgeseg.backends import tensorrt as backend
    from edgeseg.errors import EdgesegError

    major = int(trt.__version__.split(".")[0])
    with tempfile.TemporaryDirectory() as folder:
        library = Path(folder) / backend.LIBRARY_NAME
        library.write_bytes(b"")
        other = "10.3.0" if major == 11 else "11.1.0"
        library.with_name(backend.BUILD_INFO_NAME).write_text(
            json.dumps({"tensorrt_headers": other, "plugin_version": "1"})
        )
        proxy = TrtOverStubs(trt, {"IPluginRegistry": {"get_creator": None}})
        try:
            backend.load_plugin(proxy, library)
        except EdgesegError as exc:
            message = str(exc)
        else:
            raise AssertionError("a plugin built for another TensorRT was loaded")
        assert other in message and trt.__version__ in message and "\n" not in message
        assert "edgeseg plugin build" in message and "--unpool native" in message
        calls = [c for made in proxy.made for c in made.calls]
        assert "IPluginRegistry.load_library" not in calls, calls


def check_builder(trt: Any) -> None:
    logger = _logger(trt)
    try:
        trt.Builder(logger)
    except TypeError as exc:  # the signature took the logger; the stub returned no builder
        assert "nullptr" in str(exc), exc
    check_call(trt, "Builder", "create_network", 0, returns="INetworkDefinition")
    check_call(trt, "Builder", "create_builder_config", returns="IBuilderConfig")
    check_call(trt, "Builder", "create_optimization_profile", returns="IOptimizationProfile")
    network, config = Checked(trt, "INetworkDefinition"), Checked(trt, "IBuilderConfig")
    check_call(trt, "Builder", "build_serialized_network", network, config, returns="IHostMemory")
    check_call(
        trt, "IBuilderConfig", "set_memory_pool_limit", trt.MemoryPoolType.WORKSPACE, 1 << 30
    )
    Checked(trt, "IBuilderConfig").profiling_verbosity = trt.ProfilingVerbosity.DETAILED


def _precision_check(precision: str, float_fp16: bool = False) -> Any:
    def check(trt: Any) -> None:
        from edgeseg.backends.tensorrt import tensorrt_major
        from edgeseg.export.engine import _set_precision
        from edgeseg.export.engine_plan import precision_plan

        plan = precision_plan(tensorrt_major(trt.__version__), precision, float_fp16=float_fp16)
        config = Checked(trt, "IBuilderConfig")
        network = Checked(trt, "INetworkDefinition", {"num_layers": 0})
        _set_precision(trt, config, network, plan)  # getattr(trt.BuilderFlag, name): real enum
        flags = [c for c in config.calls if c.endswith(("set_flag", "clear_flag"))]
        assert len(flags) == len(plan.builder_flags) + len(
            [f for f in plan.clear_flags if hasattr(trt.BuilderFlag, f)]
        ), flags

    return check


def check_timing_cache(trt: Any) -> None:
    from edgeseg.export.engine import _use_timing_cache

    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "tensorrt.timing-cache"
        config = Checked(trt, "IBuilderConfig", {"set_timing_cache": False})
        _use_timing_cache(config, cache)  # no file yet, then a refused cache: both paths
        cache.write_bytes(b"\0" * 16)
        _use_timing_cache(config, cache)
    assert config.calls.count("IBuilderConfig.create_timing_cache") == 4, config.calls
    check_call(trt, "IBuilderConfig", "get_timing_cache", returns="ITimingCache")
    check_call(trt, "ITimingCache", "serialize", returns="IHostMemory")


def check_profile(trt: Any) -> None:
    from edgeseg.card import ModelCard
    from edgeseg.export.engine import _add_profile

    tensor = Checked(trt, "ITensor", {"shape": (-1, 3, -1, -1), "name": "input"})
    network = Checked(trt, "INetworkDefinition", {"get_input": tensor})
    profile = Checked(trt, "IOptimizationProfile")
    builder = Checked(trt, "Builder", {"create_optimization_profile": profile})
    config = Checked(trt, "IBuilderConfig")
    card = ModelCard("segnet", 2, ("a", "b"), ((0, 0, 0), (255, 255, 255)), (180, 240))
    record = _add_profile(builder, config, network, card, 8)
    assert record == {"min": [1, 3, 64, 96], "opt": [1, 3, 180, 240], "max": [8, 3, 384, 480]}
    assert profile.calls == ["IOptimizationProfile.set_shape"]
    assert config.calls == ["IBuilderConfig.add_optimization_profile"]


def check_parser(trt: Any) -> None:
    from edgeseg.errors import EdgesegError
    from edgeseg.export.engine import _parse
    from edgeseg.export.engine_plan import PrecisionPlan

    error = Checked(
        trt, "ParserError", {"desc": "No importer registered for op: X", "node_name": "n1"}
    )
    proxy = TrtOverStubs(
        trt, {"OnnxParser": {"parse_from_file": False, "num_errors": 1, "get_error": error}}
    )
    builder = Checked(trt, "Builder")
    try:
        _parse(proxy, builder, _logger(trt), Path("model.trt.onnx"), PrecisionPlan("fp32", (), ()))
    except EdgesegError as exc:
        assert "1 parser errors" in str(exc), exc
    else:
        raise AssertionError("a failed parse was not reported")
    assert "ParserError.desc" in error.calls and "ParserError.node_name" in error.calls


def check_inspector(trt: Any) -> None:
    from edgeseg.export.engine import _layer_precisions

    layers = '{"Layers": [{"Name": "conv1"}, {"Name": "EdgesegUnpool/decoders.0.unpool"}]}'
    inspector = Checked(trt, "EngineInspector", {"get_engine_information": layers})
    engine = Checked(trt, "ICudaEngine", {"create_engine_inspector": inspector})
    proxy = TrtOverStubs(trt, {"Runtime": {"deserialize_cuda_engine": engine}})
    assert _layer_precisions(proxy, _logger(trt), b"\0" * 8)[1] == {"unpool": 1, "all": 2}
    assert inspector.calls == ["EngineInspector.get_engine_information"]


def _engine(trt: Any, set_input_shape: bool) -> Any:
    from edgeseg.backends.tensorrt_engine import TensorRTEngine

    context = Checked(
        trt,
        "IExecutionContext",
        {"set_input_shape": set_input_shape, "get_tensor_shape": (1, 11, 128, 128)},
    )
    modes = {"input": trt.TensorIOMode.INPUT, "output": trt.TensorIOMode.OUTPUT}
    engine = Checked(
        trt,
        "ICudaEngine",
        {
            "num_io_tensors": 2,
            "get_tensor_name": lambda i: ["input", "output"][i],
            "get_tensor_mode": lambda name: modes[name],
            "get_tensor_dtype": lambda name: trt.DataType.FLOAT,
            "get_tensor_shape": lambda name: (-1, 3, -1, -1),
            "get_tensor_profile_shape": lambda name, i: [
                (1, 3, 64, 64),
                (1, 3, 128, 128),
                (8, 3, 256, 256),
            ],
            "create_execution_context": context,
        },
    )
    runner = object.__new__(TensorRTEngine)
    runner.trt = TrtOverStubs(trt, {"Runtime": {"deserialize_cuda_engine": engine}})
    runner.logger = _logger(trt)
    runner.rebuild_hint = "rebuild it"
    runner.cuda = SimpleNamespace(create_stream=lambda: None)
    folder = tempfile.mkdtemp()
    runner.path = Path(folder) / "model.engine"
    runner.path.write_bytes(b"\0" * 8)
    runner._load()
    return runner, context


def check_engine(trt: Any) -> None:
    runner, context = _engine(trt, set_input_shape=True)
    assert runner.profile == ((1, 3, 64, 64), (8, 3, 256, 256)) and runner.max_batch == 8
    assert runner.input_dtype.name == "float32"  # trt.nptype, for real
    runner.input_chw = (3, 128, 128)
    runner._bind(2)
    assert "IExecutionContext.set_input_shape" in context.calls
    check_call(
        trt, "IExecutionContext", "set_input_shape", "input", (2, 3, 128, 128), returns="bool"
    )
    check_call(trt, "IExecutionContext", "set_tensor_address", "input", 1 << 40, returns="bool")
    check_call(trt, "IExecutionContext", "execute_async_v3", 0, returns="bool")


def check_engine_refuses_shape(trt: Any) -> None:
    from edgeseg.errors import EdgesegError

    runner, context = _engine(trt, set_input_shape=False)  # TensorRT says no: one line
    runner.input_chw = (3, 128, 128)
    try:
        runner._bind(1)
    except EdgesegError as exc:
        assert "does not take input (1, 3, 128, 128)" in str(exc), exc
    else:
        raise AssertionError("a refused set_input_shape was ignored")
    runner.input_chw = (3, 512, 128)  # outside the profile: refused before TensorRT is asked
    calls = len(context.calls)
    try:
        runner._bind(1)
    except EdgesegError:
        assert len(context.calls) == calls
    else:
        raise AssertionError("a shape outside the profile was passed to TensorRT")


def check_checker_catches_mistakes(trt: Any) -> None:
    """The checks above can fail: wrong types, unknown names and version gaps are caught."""
    from edgeseg.backends.tensorrt import tensorrt_major

    wrong = [
        lambda: check_call(trt, "IBuilderConfig", "set_memory_pool_limit", "WORKSPACE", 1),
        lambda: check_call(trt, "IExecutionContext", "set_input_shape", "input"),
        lambda: check_call(trt, "IExecutionContext", "execute_async_v3", 0, returns="None"),
        lambda: Checked(trt, "IBuilderConfig").set_precision_flags(),
        lambda: setattr(Checked(trt, "IBuilderConfig"), "profiling_verbosity", 2),
        lambda: setattr(Checked(trt, "ICudaEngine"), "num_io_tensors", 2),
    ]
    for attempt in wrong:
        try:
            attempt()
        except (AssertionError, AttributeError, TypeError):
            continue
        raise AssertionError("the contract checker let a wrong call through")
    # The precision split is real: 10.x has the FP16/INT8 builder flags, 11.x has none.
    assert hasattr(trt.BuilderFlag, "FP16") == (tensorrt_major(trt.__version__) == 10)


CHECKS = {
    "checker-catches-mistakes": check_checker_catches_mistakes,
    "import": check_import,
    "logger": check_logger,
    "plugin-registry-load-once": check_plugin_registry,
    "plugin-other-tensorrt-refused": check_plugin_refused,
    "builder-config": check_builder,
    "precision-fp32": _precision_check("fp32"),
    "precision-fp16": _precision_check("fp16"),
    "precision-int8": _precision_check("int8"),
    "precision-int8-fp16": _precision_check("int8", float_fp16=True),
    "timing-cache": check_timing_cache,
    "optimization-profile": check_profile,
    "onnx-parser": check_parser,
    "engine-inspector": check_inspector,
    "runtime-engine-context": check_engine,
    "set-input-shape-refused": check_engine_refuses_shape,
}


def _build_checks() -> dict:
    from trt_build_probe import BUILD_CHECKS

    return BUILD_CHECKS


CHECKS.update(_build_checks())


def main() -> None:
    import tensorrt as trt

    results = {}
    only = os.environ.get("TRT_PROBE_ONLY", "")  # a name prefix, to rerun a few checks by hand
    for name, check in CHECKS.items():
        if not name.startswith(only):
            continue
        try:
            check(trt)
            results[name] = "ok"
        except Exception as exc:  # reported per check; the test shows the traceback's end
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            results[name] = "".join(lines[-3:]).strip()
    json.dump({"version": trt.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
