"""GPU memory, streams, CUDA graphs and device facts for TensorRT, through whichever CUDA binding
is installed; the one module in edgeseg that imports one. Tried in this order:

1. cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), what NVIDIA's own
   TensorRT samples use;
2. pycuda;
3. torch built with CUDA (an export machine often has it and nothing else): buffers, pinned
   memory and streams through torch's allocator, no CUDA graphs.

All share TensorRT's context: cuda-python and torch call the runtime API (the device's primary
context, current in every thread), and pycuda retains that same primary context and pushes it
around each call, so inference may run on a thread other than the one that loaded the engine.
CUDA graph capture is offered through cuda-python only; the others run without graphs.

Not exercised in CI (no GPU there); a GPU machine runs it through the ``gpu`` tests.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeseg.errors import EdgesegError

NO_BINDING = (
    "no CUDA binding for Python: install cuda-python (pip install cuda-python), pycuda, or "
    "torch with CUDA; TensorRT engines are built and run on the machine's GPU"
)
NO_GPU = "no CUDA GPU found: TensorRT engines are built and run on the GPU that will use them"


@dataclass(frozen=True)
class GpuInfo:
    """Device 0 as an engine card records it."""

    name: str
    compute_capability: str  # "8.7"
    cuda_runtime: str  # "12.6"
    # Which GPU exactly, where the binding says: "Orin" names AGX, NX and Nano alike.
    uuid: str | None = None
    multiprocessors: int | None = None
    memory_mib: int | None = None


#: CUstream_flags::CU_STREAM_NON_BLOCKING (cudaStreamNonBlocking in the runtime API).
CU_STREAM_NON_BLOCKING = 1


def _uuid_text(raw: bytes) -> str:
    """16 UUID bytes as nvidia-smi prints them: ``GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``."""
    text = raw[:16].hex()
    return f"GPU-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def version_text(code: int) -> str:
    """CUDA's integer version -> text: 12060 -> "12.6"."""
    return f"{code // 1000}.{(code % 1000) // 10}"


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

    def runtime_version(self) -> str:
        """The CUDA runtime's version, ``"12.6"``."""
        raise NotImplementedError

    def device_details(self) -> dict[str, Any]:
        """``uuid``, ``multiprocessors``, ``memory_mib`` of the current device, those the
        binding reports (for the engine card; none is checked at load)."""
        return {}

    def info(self) -> GpuInfo:
        name, capability = self.device_identity()
        try:
            details = self.device_details()
        except (RuntimeError, AttributeError, TypeError):  # optional: a binding may not say
            details = {}
        return GpuInfo(name, capability, self.runtime_version(), **details)

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
        # Non-blocking: no implicit synchronization with the legacy default stream (torch's, or
        # another library's work on it) while an engine runs.
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
            "uuid": _uuid_text(bytes(props.uuid.bytes)),
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
        return self.cuda.Stream(flags=CU_STREAM_NON_BLOCKING)  # pycuda.driver.Stream(flags=0)

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

    def device_details(self) -> dict[str, Any]:
        device = self.cuda.Device(0)
        count = device.get_attribute(self.cuda.device_attribute.MULTIPROCESSOR_COUNT)
        return {"multiprocessors": int(count), "memory_mib": int(device.total_memory()) >> 20}

    def runtime_version(self) -> str:
        return ".".join(str(v) for v in self.cuda.get_version()[:2])


class _TorchCuda(CudaApi):
    """torch's allocator and streams behind the same operations; no CUDA graphs."""

    binding = "torch"
    supports_graphs = False

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self._owners: dict[int, Any] = {}

    def _bytes(self, pointer: int, nbytes: int) -> Any:
        return self._owners[pointer][:nbytes]

    def create_stream(self) -> Any:
        return self.torch.cuda.Stream()  # torch creates its pool streams non-blocking

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def device_alloc(self, nbytes: int) -> tuple[int, Any]:
        tensor = self.torch.empty(max(1, nbytes), dtype=self.torch.uint8, device="cuda")
        self._owners[tensor.data_ptr()] = tensor
        return tensor.data_ptr(), tensor

    def device_free(self, owner: Any) -> None:
        self._owners.pop(owner.data_ptr(), None)

    def pinned_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        tensor = self.torch.empty(nbytes, dtype=self.torch.uint8, pin_memory=True)
        array = tensor.numpy()[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
        self._owners[array.__array_interface__["data"][0]] = tensor
        return array

    def pinned_free(self, array: np.ndarray) -> None:
        self._owners.pop(array.__array_interface__["data"][0], None)

    def _host_bytes(self, host: np.ndarray, nbytes: int) -> Any:
        pinned = self._owners.get(host.__array_interface__["data"][0])
        if pinned is not None:
            return pinned[:nbytes]
        return self.torch.from_numpy(host.reshape(-1).view(np.uint8)[:nbytes])

    def copy_to_device_async(self, device_ptr: int, host: np.ndarray, nbytes: int, stream) -> None:
        with self.torch.cuda.stream(stream):
            self._bytes(device_ptr, nbytes).copy_(self._host_bytes(host, nbytes), True)

    def copy_to_host_async(self, host: np.ndarray, device_ptr: int, nbytes: int, stream) -> None:
        with self.torch.cuda.stream(stream):
            self._host_bytes(host, nbytes).copy_(self._bytes(device_ptr, nbytes), True)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def destroy_stream(self, stream: Any) -> None:
        del stream

    def device_identity(self) -> tuple[str, str]:
        major, minor = self.torch.cuda.get_device_capability(0)
        return self.torch.cuda.get_device_name(0), f"{major}.{minor}"

    def device_details(self) -> dict[str, Any]:
        props = self.torch.cuda.get_device_properties(0)
        uuid = getattr(props, "uuid", None)
        return {
            "uuid": str(uuid) if uuid is not None else None,
            "multiprocessors": int(props.multi_processor_count),
            "memory_mib": int(props.total_memory) >> 20,
        }

    def runtime_version(self) -> str:
        return str(self.torch.version.cuda)


def _torch_cuda() -> CudaApi | None:
    try:
        import torch
    except ImportError:
        return None
    if torch.version.cuda is None or not torch.cuda.is_available():
        return None
    return _TorchCuda(torch)


def load_cuda() -> CudaApi:
    """The installed CUDA binding: cuda-python, pycuda, then torch's CUDA; EdgesegError (naming
    what to install, or that there is no GPU) when none works."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python before 12.6
        except ImportError:
            cudart = None
    if cudart is not None:
        error, *count = cudart.cudaGetDeviceCount()  # no driver fails here, not at import
        if int(error) != 0 or not count or count[0] < 1:
            raise EdgesegError(NO_GPU)
        return _CudaPython(cudart)
    try:
        import pycuda.driver as driver
    except ImportError:
        driver = None
    if driver is not None:
        try:
            return _PyCuda(driver)
        except driver.Error as exc:
            raise EdgesegError(f"{NO_GPU} (pycuda: {exc})") from None
    torch_api = _torch_cuda()
    if torch_api is not None:
        return torch_api
    raise EdgesegError(NO_BINDING)


def gpu_info() -> GpuInfo:
    """Device 0's name, compute capability and CUDA runtime; one-line errors for no binding or
    no GPU."""
    return load_cuda().info()
