"""GPU memory, streams, CUDA graphs and device facts for TensorRT, through whichever CUDA binding
is installed; the one module in edgeseg that imports one. Tried in this order:

1. cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), what NVIDIA's own
   TensorRT samples use; its major version must not exceed the driver's CUDA (13.x needs a CUDA
   13 driver: on JetPack 6, ``cuda-python<13``);
2. pycuda;
3. torch built with CUDA (an export machine often has it and nothing else): buffers, pinned
   memory and streams through torch's allocator, no CUDA graphs.

All share TensorRT's context: cuda-python and torch call the runtime API (the device's primary
context, current in every thread), and pycuda retains that same primary context and pushes it
around each call, so inference may run on a thread other than the one that loaded the engine.
CUDA graph capture is offered through cuda-python only; the others run without graphs.

A binding that imports but fails (cuda-python 13 on a CUDA 12 driver) does not end the search:
each attempt is recorded (:func:`probe_cuda`) and the next binding tried; when none works, the
one line names each failure by its CUDA error with the driver's CUDA version and the fix
(:mod:`edgeseg.backends.cuda_errors`, where that decision is tested with recorded codes).

Not exercised in CI (no GPU there); a GPU machine runs it through the ``gpu`` tests.
"""

from __future__ import annotations

import ctypes
import importlib.metadata as metadata
from typing import Any

import numpy as np

from edgeseg.backends.cuda_api import CudaApi, GpuInfo, uuid_text
from edgeseg.backends.cuda_fallbacks import PyCudaApi, TorchCudaApi
from edgeseg.errors import EdgesegError

__all__ = [
    "NO_BINDING",
    "NO_GPU",
    "CudaApi",
    "CudaUnavailable",
    "GpuInfo",
    "load_cuda",
    "probe_cuda",
]

# The decision (which error, which fix) lives apart from the bindings; NO_GPU, NO_BINDING and
# version_text are re-exported from here.
from edgeseg.backends.cuda_errors import (
    ABSENT,
    FAILED,
    NO_BINDING,
    NO_DEVICE,
    NO_GPU,
    BindingAttempt,
    error_name,
    unavailable_message,
    version_text,
)


class _CudaPython(CudaApi):
    binding = "cuda-python"
    supports_graphs = True

    def __init__(self, cudart: Any) -> None:
        self.rt = cudart
        self._pinned: dict[int, int] = {}

    def _check(self, result: Any) -> Any:
        # cuda-python returns (error, *values); turn a failure into an exception with its name.
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            _, name = self.rt.cudaGetErrorName(err)
            raise RuntimeError(f"CUDA error {name.decode() if isinstance(name, bytes) else name}")
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def create_stream(self) -> Any:  # non-blocking: see CU_STREAM_NON_BLOCKING
        return self._check(self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking))

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        pointer = int(self._check(self.rt.cudaMalloc(max(1, nbytes))))
        return pointer, pointer

    def device_free(self, owner: Any) -> None:
        self._check(self.rt.cudaFree(owner))

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        pointer = int(self._check(self.rt.cudaMallocHost(nbytes)))
        raw = (ctypes.c_byte * nbytes).from_address(pointer)
        array = np.frombuffer(raw, dtype=np.uint8, count=nbytes)
        array = array[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
        self._pinned[array.__array_interface__["data"][0]] = pointer
        return array

    def pinned_free(self, array: np.ndarray) -> None:
        pointer = self._pinned.pop(array.__array_interface__["data"][0], None)
        if pointer is not None:
            self._check(self.rt.cudaFreeHost(pointer))

    def copy_to_device_async(self, device_ptr: int, host: np.ndarray, nbytes: int, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(device_ptr, host.ctypes.data, nbytes, kind, stream))

    def copy_to_host_async(self, host: np.ndarray, device_ptr: int, nbytes: int, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, device_ptr, nbytes, kind, stream))

    def synchronize(self, stream: Any) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream))

    def destroy_stream(self, stream: Any) -> None:
        self._check(self.rt.cudaStreamDestroy(stream))

    def device_identity(self) -> tuple[str, str]:
        device = self._check(self.rt.cudaGetDevice())
        props = self._check(self.rt.cudaGetDeviceProperties(device))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else props.name
        return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"

    def device_details(self) -> dict[str, Any]:
        props = self._check(self.rt.cudaGetDeviceProperties(self._check(self.rt.cudaGetDevice())))
        return {
            "uuid": uuid_text(bytes(props.uuid.bytes)),
            "multiprocessors": int(props.multiProcessorCount),
            "memory_mib": int(props.totalGlobalMem) >> 20,
        }

    def runtime_version(self) -> str:
        return version_text(int(self._check(self.rt.cudaRuntimeGetVersion())))

    def begin_capture(self, stream: Any) -> None:
        # Thread-local: CUDA calls other threads make meanwhile (OpenCV, another model) are not
        # disturbed by this capture.
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._check(self.rt.cudaStreamBeginCapture(stream, mode))

    def end_capture(self, stream: Any) -> Any:
        graph = self._check(self.rt.cudaStreamEndCapture(stream))
        try:
            try:
                return self._check(self.rt.cudaGraphInstantiate(graph, 0))
            except TypeError:  # cuda-python 11.x: (graph, error node buffer, its size)
                return self._check(self.rt.cudaGraphInstantiate(graph, b"", 0))[0]
        finally:
            self.rt.cudaGraphDestroy(graph)

    def launch_graph(self, graph: Any, stream: Any) -> None:
        self._check(self.rt.cudaGraphLaunch(graph, stream))

    def destroy_graph(self, graph: Any) -> None:
        self.rt.cudaGraphExecDestroy(graph)


class CudaUnavailable(EdgesegError):
    """No binding works: the one line, plus each attempt and the driver's CUDA for doctor."""

    def __init__(self, attempts: list[BindingAttempt], driver_cuda: str) -> None:
        super().__init__(unavailable_message(attempts, driver_cuda))
        self.attempts, self.driver_cuda = attempts, driver_cuda


def driver_cuda_version() -> str:
    """The CUDA version the driver runs ("12.6"), from libcuda itself (``cuDriverGetVersion``),
    which answers whatever binding is installed; "" where there is no driver."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return ""
    version = ctypes.c_int(0)
    if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return ""
    return version_text(version.value)


def _distribution_version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


def _try_cuda_python() -> tuple[BindingAttempt, CudaApi | None]:
    version = _distribution_version("cuda-python", "cuda-bindings")
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python before 12.6
        except ImportError:
            return BindingAttempt("cuda-python", ABSENT, version), None
    try:
        _, built = cudart.cudaRuntimeGetVersion()
        built_for = version_text(int(built or 0))
    except Exception:  # an older binding without it: the package version says enough
        built_for = ""
    try:
        error, *count = cudart.cudaGetDeviceCount()  # no driver fails here, not at import
    except Exception as exc:  # a binding that imports but cannot even call (a missing libcuda)
        return BindingAttempt("cuda-python", FAILED, version, _one_line(exc), built_for), None
    if int(error) == 0 and count and count[0] >= 1:
        return BindingAttempt("cuda-python", "works", version, "", built_for), _CudaPython(cudart)
    name = error_name(int(error))
    outcome = NO_DEVICE if name in ("cudaErrorNoDevice", "cudaSuccess") else FAILED
    return BindingAttempt("cuda-python", outcome, version, name, built_for), None


def _try_pycuda() -> tuple[BindingAttempt, CudaApi | None]:
    version = _distribution_version("pycuda")
    try:
        import pycuda.driver as driver
    except ImportError:
        return BindingAttempt("pycuda", ABSENT, version), None
    try:
        return BindingAttempt("pycuda", "works", version), PyCudaApi(driver)
    except Exception as exc:  # pycuda.driver.Error and whatever its build raises
        outcome = NO_DEVICE if "no CUDA-capable device" in str(exc) else FAILED
        return BindingAttempt("pycuda", outcome, version, _one_line(exc)), None


def _try_torch() -> tuple[BindingAttempt, CudaApi | None]:
    try:
        import torch
    except ImportError:
        return BindingAttempt("torch", ABSENT), None
    version = str(torch.__version__)
    if torch.version.cuda is None:
        return BindingAttempt("torch", ABSENT, version, "CPU-only build"), None
    if not torch.cuda.is_available():
        return BindingAttempt("torch", NO_DEVICE, version, "no GPU", str(torch.version.cuda)), None
    attempt = BindingAttempt("torch", "works", version, "", str(torch.version.cuda))
    return attempt, TorchCudaApi(torch)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]


def probe_cuda() -> tuple[list[BindingAttempt], CudaApi | None]:
    """Each binding in turn until one works: (the attempts so far, the working API or None).
    A binding that imports but fails is recorded and the next one is tried."""
    attempts = []
    for attempt_binding in (_try_cuda_python, _try_pycuda, _try_torch):
        attempt, api = attempt_binding()
        attempts.append(attempt)
        if api is not None:
            return attempts, api
    return attempts, None


def load_cuda() -> CudaApi:
    """The first CUDA binding that works: cuda-python, pycuda, then torch's CUDA.
    :class:`CudaUnavailable` (an EdgesegError: one line naming each failure by its CUDA error,
    the driver's CUDA beside the binding's, and the fix) when none does."""
    attempts, api = probe_cuda()
    if api is None:
        raise CudaUnavailable(attempts, driver_cuda_version())
    return api


def gpu_info() -> GpuInfo:
    """Device 0's name, compute capability and CUDA runtime; one-line errors for no binding or
    no GPU."""
    return load_cuda().info()
