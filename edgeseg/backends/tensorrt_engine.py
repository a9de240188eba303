"""A deserialized TensorRT engine with its execution context, buffers, stream and CUDA graph.

Wrapped by :class:`edgeseg.backends.tensorrt_runner.TensorRTRunner`, which the runtime, the
export stage's engine check and doctor's self-test use, so an engine is run one way only.
TensorRT 10.x/11.x API: tensor names, ``num_io_tensors``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3`` (the 8.x binding API is not supported; the plugin
needs 10.0+).

Execution: pinned host buffers and device buffers sized for the largest batch and bound once,
one stream, async copies in and out around ``execute_async_v3``. After the first run at a batch
size, the copy-execute-copy sequence is captured into a CUDA graph and replayed (cuda-python
only; an engine TensorRT cannot capture keeps the plain path). A shape outside the engine's
optimization profile, or one TensorRT refuses, is one line, never a crash inside TensorRT.

Written against TensorRT's documented Python API; it has not run in CI (no GPU there).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.backends.cuda import CudaApi, load_cuda
from edgeseg.backends.tensorrt import check_unpool, import_tensorrt, load_plugin
from edgeseg.errors import EdgesegError


def make_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` that keeps TensorRT's last error line, for our one-line messages."""

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.last_error = ""

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.last_error = msg.strip().splitlines()[0] if msg.strip() else msg

    return Logger()


class TensorRTEngine:
    """One engine file, one execution context, one stream; not thread-safe.

    ``plugin_library``: the plugin to register first (default: its one documented path); the
    load happens once per process (:func:`edgeseg.backends.tensorrt.load_plugin`). ``unpool``:
    ``"native"`` for an engine built without the plugin (nothing is loaded). ``cuda``: an
    already loaded :class:`~edgeseg.backends.cuda.CudaApi`. Raises EdgesegError when the engine
    cannot be deserialized or does not have one input and one output.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        plugin_library: str | Path | None = None,
        unpool: str = "plugin",
        cuda: CudaApi | None = None,
        use_cuda_graph: bool = True,
        rebuild_hint: str = "rebuild it with edgeseg export",
    ) -> None:
        self.path = Path(path)
        self.rebuild_hint = rebuild_hint
        trt = self.trt = import_tensorrt()
        self.cuda = cuda or load_cuda()
        self.logger = make_logger(trt)
        # No trt.init_libnvinfer_plugins: an edgeseg engine uses none of TensorRT's own
        # plugins, and that call loads their library and keeps a logger alive per engine.
        if check_unpool(unpool) == "plugin":
            load_plugin(trt, plugin_library)
        self._graph: Any = None
        self._graph_batch = 0
        self._bound_batch = 0
        self.context: Any = None
        self.use_cuda_graph = use_cuda_graph and self.cuda.supports_graphs
        with self.cuda.activate():
            self._load()

    # --- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        trt = self.trt
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            reason = self.logger.last_error or "unknown error"
            raise EdgesegError(
                f"TensorRT cannot deserialize {self.path} ({reason}); {self.rebuild_hint}"
            )
        self.runtime = runtime
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgesegError(
                f"{self.path.name} has {len(inputs)} inputs and {len(outputs)} outputs; an "
                "edgeseg engine has one of each"
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        shape = tuple(int(d) for d in self.engine.get_tensor_shape(self.input_name))
        if -1 in shape:  # dynamic dimensions: optimization profile 0 bounds them
            low, _, high = (
                tuple(int(d) for d in dims)
                for dims in self.engine.get_tensor_profile_shape(self.input_name, 0)
            )
            self.profile: tuple[tuple[int, ...], tuple[int, ...]] = (low, high)
        else:
            self.profile = (shape, shape)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise EdgesegError(
                f"TensorRT could not create an execution context for {self.path.name} "
                f"({self.logger.last_error or 'out of GPU memory?'})"
            )
        self.stream = self.cuda.create_stream()

    @property
    def max_batch(self) -> int:
        return self.profile[1][0]

    def accepts(self, chw: tuple[int, int, int]) -> bool:
        """Whether (C, H, W) inputs fit the engine's profile at some batch size."""
        low, high = self.profile
        return all(lo <= v <= hi for lo, v, hi in zip(low[1:], chw, high[1:], strict=True))

    def allocate(self, chw: tuple[int, int, int]) -> None:
        """Bind buffers for inputs (N <= ``max_batch``, *chw*), sized for the largest batch:
        smaller batches use a prefix of the same buffers, so the addresses TensorRT (and a
        captured graph) hold never change."""
        self.input_chw = tuple(int(v) for v in chw)
        self._bind(self.max_batch)
        with self.cuda.activate():
            self.host_in = self.cuda.pinned_empty((self.max_batch, *chw), self.input_dtype)
            self.host_out = self.cuda.pinned_empty(self._output_shape, self.output_dtype)
            self.dev_in, self._dev_in_owner = self.cuda.device_alloc(self.host_in.nbytes)
            self.dev_out, self._dev_out_owner = self.cuda.device_alloc(self.host_out.nbytes)
        for name, pointer in ((self.input_name, self.dev_in), (self.output_name, self.dev_out)):
            if not self.context.set_tensor_address(name, pointer):
                raise RuntimeError(f"TensorRT refused the address of {name}")

    def _bind(self, batch: int) -> None:
        shape = (batch, *self.input_chw)
        low, high = self.profile
        inside = all(lo <= v <= hi for lo, v, hi in zip(low, shape, high, strict=True))
        if not inside or not self.context.set_input_shape(self.input_name, shape):
            raise EdgesegError(
                f"{self.path.name} does not take input {shape} (its profile spans {low} to "
                f"{high}{'; ' + self.logger.last_error if self.logger.last_error else ''}); "
                f"{self.rebuild_hint}"
            )
        self._bound_batch = batch
        self._output_shape = tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))

    # --- running ---------------------------------------------------------------------------

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
        """(N, *chw) inputs, N <= ``max_batch`` -> the output for those N (a copy)."""
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
        return self.host_out.reshape(-1)[: int(np.prod(out_shape))].reshape(out_shape).copy()

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self.cuda.destroy_graph(self._graph)
            self._graph = None

    def close(self) -> None:
        """Free the buffers, graph and stream; the engine is unusable afterwards."""
        if self.context is None:
            return
        with self.cuda.activate():
            self.cuda.synchronize(self.stream)
            self._drop_graph()
            if getattr(self, "host_in", None) is not None:
                self.cuda.device_free(self._dev_in_owner)
                self.cuda.device_free(self._dev_out_owner)
                self.cuda.pinned_free(self.host_in)
                self.cuda.pinned_free(self.host_out)
                self.host_in = None
            self.cuda.destroy_stream(self.stream)
        self.context = None
        self.engine = None
