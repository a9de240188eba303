"""GPU memory, streams and CUDA graphs for the TensorRT backend, through whichever CUDA binding
is installed: cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6; what
NVIDIA's TensorRT samples use) or pycuda. Nothing outside this module knows which.

Both share TensorRT's context: cuda-python calls the runtime API (the device's primary context,
current in every thread), and pycuda retains that same primary context and pushes it around each
call, so inference may run on a thread other than the one that loaded the engine. CUDA graph
capture is offered through cuda-python only; with pycuda the backend runs without graphs.

Not exercised in CI (no GPU there); a GPU machine runs it through the ``tensorrt`` tests.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeseg.errors import EdgesegError


class CudaApi:
    """The operations the TensorRT backend needs; one subclass per binding."""

    binding = ""
    supports_graphs = False

    def activate(self) -> contextlib.AbstractContextManager[None]:
        """Make the shared CUDA context current on this thread for the ``with`` block."""
        return contextlib.nullcontext()

    def create_stream(self) -> Any:
        raise NotImplementedError

    def stream_handle(self, stream: Any) -> int:
        """The ``cudaStream_t`` as an int, what ``execute_async_v3`` takes."""
        raise NotImplementedError

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        """(device pointer, owner); the memory lives as long as ``owner`` is passed to free."""
        raise NotImplementedError

    def device_free(self, owner: Any) -> None:
        raise NotImplementedError

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A page-locked host array (async copies need it); freed with :meth:`pinned_free`."""
        raise NotImplementedError

    def pinned_free(self, array: np.ndarray) -> None:
        raise NotImplementedError

    def copy_to_device_async(self, device_ptr: int, host: np.ndarray, nbytes: int, stream) -> None:
        raise NotImplementedError

    def copy_to_host_async(self, host: np.ndarray, device_ptr: int, nbytes: int, stream) -> None:
        raise NotImplementedError

    def synchronize(self, stream: Any) -> None:
        raise NotImplementedError

    def destroy_stream(self, stream: Any) -> None:
        raise NotImplementedError

    def device_identity(self) -> tuple[str, str]:
        """(GPU name, compute capability as ``"8.7"``) of the current device."""
        raise NotImplementedError

    # CUDA graphs (``supports_graphs`` only)
    def begin_capture(self, stream: Any) -> None:
        raise NotImplementedError

    def end_capture(self, stream: Any) -> Any:
        """End the capture and return an instantiated graph; raises RuntimeError on failure."""
        raise NotImplementedError

    def launch_graph(self, graph: Any, stream: Any) -> None:
        raise NotImplementedError

    def destroy_graph(self, graph: Any) -> None:
        raise NotImplementedError


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

    def create_stream(self) -> Any:
        return self._check(self.rt.cudaStreamCreate())

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


class _PyCuda(CudaApi):
    binding = "pycuda"
    supports_graphs = False

    def __init__(self, driver: Any) -> None:
        self.cuda = driver
        driver.init()
        self.context = driver.Device(0).retain_primary_context()

    @contextlib.contextmanager
    def _activated(self) -> Iterator[None]:
        self.context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    def activate(self) -> contextlib.AbstractContextManager[None]:
        return self._activated()

    def create_stream(self) -> Any:
        return self.cuda.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        allocation = self.cuda.mem_alloc(max(1, nbytes))
        return int(allocation), allocation

    def device_free(self, owner: Any) -> None:
        owner.free()

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(shape, dtype)

    def pinned_free(self, array: np.ndarray) -> None:
        base = getattr(array, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def copy_to_device_async(self, device_ptr: int, host: np.ndarray, nbytes: int, stream) -> None:
        flat = host.reshape(-1).view(np.uint8)[:nbytes]
        self.cuda.memcpy_htod_async(device_ptr, flat, stream)

    def copy_to_host_async(self, host: np.ndarray, device_ptr: int, nbytes: int, stream) -> None:
        flat = host.reshape(-1).view(np.uint8)[:nbytes]
        self.cuda.memcpy_dtoh_async(flat, device_ptr, stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def destroy_stream(self, stream: Any) -> None:
        del stream

    def device_identity(self) -> tuple[str, str]:
        device = self.cuda.Device(0)
        major, minor = device.compute_capability()
        return device.name(), f"{major}.{minor}"


def load_cuda() -> CudaApi:
    """The installed CUDA binding: cuda-python first, then pycuda; EdgesegError if neither."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python before 12.6
        except ImportError:
            cudart = None
    if cudart is not None:
        return _CudaPython(cudart)
    try:
        import pycuda.driver as driver
    except ImportError:
        raise EdgesegError(
            "the TensorRT backend needs cuda-python or pycuda for GPU buffers; install one: "
            "pip install cuda-python"
        ) from None
    try:
        return _PyCuda(driver)
    except driver.Error as exc:
        raise EdgesegError(f"pycuda cannot open the GPU: {exc}") from None
