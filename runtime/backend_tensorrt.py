"""TensorRT backend: a serialized engine (``model.engine``) and its card in ``model.engine.json``.

Opening an engine checks, in this order, each with one line that says what to do:

1. the sidecar card exists (engines cannot hold metadata portably);
2. the unpooling plugin library exists at its one documented place,
   ``$EDGESEG_PLUGIN_DIR/libedgeseg_unpool_plugin.so`` else
   ``~/.cache/edgeseg/plugin/libedgeseg_unpool_plugin.so`` (every edgeseg architecture unpools,
   so every engine needs it); ``edgeseg plugin build`` puts it there;
3. the ``tensorrt`` Python package imports;
4. a CUDA binding (cuda-python or pycuda) is installed, for the GPU buffers;
5. the card's ``build`` record matches this machine: TensorRT version, GPU (name and compute
   capability) and plugin version, checked by :func:`edgeseg.engine_card.check_engine_compat`
   (shared with the export stage, which writes the record). An engine only runs on the TensorRT
   and GPU it was built with, so a mismatch is refused before deserializing, with the command
   that rebuilds it, rather than crashing inside TensorRT;
6. the plugin loads through TensorRT's plugin registry (``load_library``), then the engine
   deserializes.

Execution: pinned host buffers, device buffers bound once with ``set_tensor_address``, one
stream, async copies in and out around ``execute_async_v3``. After the first run for a batch
size the copy-execute-copy sequence is captured into a CUDA graph and replayed (cuda-python
only; if TensorRT cannot be captured, e.g. an engine with data-dependent shapes, it keeps the
plain path). The API is TensorRT 10.x/11.x (tensor names, ``num_io_tensors``,
``set_input_shape``); the 8.x binding API is not supported, as the plugin needs 10.0+.

Written against TensorRT's documented Python API; it has not run in CI (no GPU there).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.card import ModelCard, read_sidecar
from edgeseg.engine_card import check_engine_compat, rebuild_command
from edgeseg.errors import EdgesegError
from edgeseg.runtime.backend import Backend, check_output

PLUGIN_DIR_ENV = "EDGESEG_PLUGIN_DIR"
PLUGIN_LIBRARY_NAME = "libedgeseg_unpool_plugin.so"
PLUGIN_BUILD_INFO = "libedgeseg_unpool_plugin.json"  # written beside the library by the build
DEFAULT_PLUGIN_DIR = "~/.cache/edgeseg/plugin"


def plugin_library_path() -> Path:
    """Where the plugin library is loaded from (the same rule ``edgeseg plugin build`` installs
    by; the runtime does not import the export stage, so the rule is restated here)."""
    folder = os.environ.get(PLUGIN_DIR_ENV)
    base = Path(folder).expanduser() if folder else Path(DEFAULT_PLUGIN_DIR).expanduser()
    return base / PLUGIN_LIBRARY_NAME


def require_plugin_library() -> Path:
    """The plugin library's path; EdgesegError naming the path and the build command if absent."""
    path = plugin_library_path()
    if not path.is_file():
        raise EdgesegError(
            f"TensorRT plugin library not found at {path}; build it on this machine with "
            f"edgeseg plugin build (or set {PLUGIN_DIR_ENV} to its folder)"
        )
    return path


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError:
        raise EdgesegError(
            "TensorRT is not installed; on Jetson it comes with JetPack (python3-libnvinfer), "
            "on a desktop: pip install tensorrt"
        ) from None
    return tensorrt


def installed_plugin_version(library: Path) -> str | None:
    """The plugin version ``edgeseg plugin build`` recorded beside the library, if any."""
    try:
        info = json.loads(library.with_name(PLUGIN_BUILD_INFO).read_text())
    except (OSError, ValueError):
        return None
    version = info.get("plugin_version") if isinstance(info, dict) else None
    return str(version) if version is not None else None


def refuse_mismatch(
    card: ModelCard,
    engine: Path,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: str,
    library: Path,
) -> None:
    """Refuse an engine built for another TensorRT, GPU or plugin version (one line saying how
    to rebuild), through the shared :func:`edgeseg.engine_card.check_engine_compat`."""
    check_engine_compat(
        card,
        tensorrt=tensorrt_version,
        gpu=gpu_name,
        compute_capability=compute_capability,
        plugin_version=installed_plugin_version(library),
        engine=engine,
    )


class _Logger:
    """Lazily built ``trt.Logger`` subclass that keeps TensorRT's last error for our message."""

    @staticmethod
    def create(trt: Any) -> Any:
        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.last_error = ""

            def log(self, severity: Any, msg: str) -> None:
                if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                    self.last_error = msg.strip().splitlines()[0] if msg.strip() else msg

        return Logger()


class TensorRTBackend(Backend):
    """One engine, one execution context, one stream; not thread-safe (Segmenter locks)."""

    name = "tensorrt"

    def __init__(self, path: str | Path, use_cuda_graph: bool = True) -> None:
        self.path = path = Path(path)
        self.card = read_sidecar(path)
        self.output = self.card.output
        library = require_plugin_library()
        trt = self.trt = import_tensorrt()
        from edgeseg.runtime.cuda_buffers import load_cuda

        self.cuda = load_cuda()
        gpu_name, capability = self.cuda.device_identity()
        refuse_mismatch(self.card, path, trt.__version__, gpu_name, capability, library)
        self.logger = _Logger.create(trt)
        # Standard TensorRT plugins first, then ours, before the engine that names it.
        trt.init_libnvinfer_plugins(self.logger, "")
        try:
            handle = trt.get_plugin_registry().load_library(str(library))
        except RuntimeError:
            handle = None
        if not handle:
            raise EdgesegError(
                f"TensorRT could not load the plugin library {library} "
                f"({self.logger.last_error or 'built for another TensorRT?'}); "
                "rebuild it with edgeseg plugin build"
            )
        self.device = f"{gpu_name}, TensorRT {trt.__version__}, {self.cuda.binding}"
        self._graph: Any = None
        self._graph_batch = 0
        self.use_cuda_graph = use_cuda_graph and self.cuda.supports_graphs
        with self.cuda.activate():
            self._load(trt, path)

    def _load(self, trt: Any, path: Path) -> None:
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            reason = self.logger.last_error or "unknown error"
            raise EdgesegError(
                f"TensorRT cannot deserialize {path} ({reason}); rebuild it here: "
                f"{rebuild_command(self.card, path)}"
            )
        self.runtime = runtime
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise EdgesegError(
                f"{path.name} has {len(inputs)} inputs and {len(outputs)} outputs; an edgeseg "
                "engine has one input and one output"
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        shape = tuple(int(d) for d in self.engine.get_tensor_shape(self.input_name))
        wanted = (3, *self.card.input_hw)
        if -1 in shape:  # dynamic dimensions: optimization profile 0 bounds them
            low, _, high = (
                tuple(int(d) for d in dims)
                for dims in self.engine.get_tensor_profile_shape(self.input_name, 0)
            )
            bounds = zip(low[1:], wanted, high[1:], strict=True)
            fits = all(lo <= want <= hi for lo, want, hi in bounds)
            self.max_batch = high[0]
        else:
            fits, self.max_batch = shape[1:] == wanted, shape[0]
        if not fits:
            raise EdgesegError(
                f"{path.name}: input {shape[1:]} does not take the card's {wanted}; rebuild it "
                f"from the matching ONNX file: {rebuild_command(self.card, path)}"
            )
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise EdgesegError(f"TensorRT could not create an execution context for {path.name}")
        self.stream = self.cuda.create_stream()
        self._bind(self.max_batch)
        self._allocate()

    def _bind(self, batch: int) -> tuple[int, ...]:
        self.context.set_input_shape(self.input_name, (batch, 3, *self.card.input_hw))
        self._bound_batch = batch
        self._output_shape = tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))
        return self._output_shape

    def _allocate(self) -> None:
        # Sized for the largest batch; smaller batches use a prefix of the same buffers, so the
        # addresses TensorRT (and a captured graph) hold never change.
        in_shape = (self.max_batch, 3, *self.card.input_hw)
        self.host_in = self.cuda.pinned_empty(in_shape, self.input_dtype)
        self.host_out = self.cuda.pinned_empty(self._output_shape, self.output_dtype)
        self.dev_in, self._dev_in_owner = self.cuda.device_alloc(self.host_in.nbytes)
        self.dev_out, self._dev_out_owner = self.cuda.device_alloc(self.host_out.nbytes)
        self.context.set_tensor_address(self.input_name, self.dev_in)
        self.context.set_tensor_address(self.output_name, self.dev_out)

    def _enqueue(self, in_bytes: int, out_bytes: int) -> None:
        self.cuda.copy_to_device_async(self.dev_in, self.host_in, in_bytes, self.stream)
        if not self.context.execute_async_v3(self.cuda.stream_handle(self.stream)):
            raise RuntimeError(f"TensorRT execution failed: {self.logger.last_error}")
        self.cuda.copy_to_host_async(self.host_out, self.dev_out, out_bytes, self.stream)

    def _capture(self, in_bytes: int, out_bytes: int, batch: int) -> None:
        # Called after one plain run at this shape (TensorRT must run once before capture).
        try:
            self.cuda.begin_capture(self.stream)
        except RuntimeError:
            self.use_cuda_graph = False
            return
        with contextlib.suppress(RuntimeError):  # a failed capture shows in end_capture
            self._enqueue(in_bytes, out_bytes)
        try:
            self._graph = self.cuda.end_capture(self.stream)
            self._graph_batch = batch
        except RuntimeError:
            self._graph = None
            self.use_cuda_graph = False  # this engine cannot be captured; keep the plain path

    def infer(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        with self.cuda.activate():
            if n != self._bound_batch:
                self._drop_graph()
                self._bind(n)
            out_shape = self._output_shape
            self.host_in[:n] = batch
            in_bytes = self.host_in[:n].nbytes
            out_bytes = int(np.prod(out_shape)) * self.output_dtype.itemsize
            if self._graph is not None and self._graph_batch == n:
                self.cuda.launch_graph(self._graph, self.stream)
            else:
                self._enqueue(in_bytes, out_bytes)
                self.cuda.synchronize(self.stream)
                if self.use_cuda_graph:
                    self._capture(in_bytes, out_bytes, n)
            self.cuda.synchronize(self.stream)
        # A copy: the pinned buffer is overwritten by the next call.
        output = self.host_out.reshape(-1)[: int(np.prod(out_shape))].reshape(out_shape).copy()
        return check_output(output, self.card, n, self.path.name, self.output)

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self.cuda.destroy_graph(self._graph)
            self._graph = None

    def close(self) -> None:
        if getattr(self, "context", None) is None:
            return
        with self.cuda.activate():
            self.cuda.synchronize(self.stream)
            self._drop_graph()
            self.cuda.device_free(self._dev_in_owner)
            self.cuda.device_free(self._dev_out_owner)
            self.cuda.pinned_free(self.host_in)
            self.cuda.pinned_free(self.host_out)
            self.cuda.destroy_stream(self.stream)
            self.context = None
            self.engine = None
