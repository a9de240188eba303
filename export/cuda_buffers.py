"""GPU memory, streams and device facts for TensorRT, through whichever CUDA binding is present.

TensorRT's Python API takes raw device pointers and a CUDA stream handle; it allocates nothing
for the caller. This module hides which library provides them, tried in this order:

1. torch, when it is built with CUDA (the export machine usually has it);
2. cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), what NVIDIA's own
   TensorRT samples use;
3. pycuda.

:func:`cuda_backend` returns the first that works; its absence or the absence of a GPU is one
:class:`EdgesegError` line. Every binding is imported lazily, inside the function that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeseg.errors import EdgesegError

NO_BINDING = (
    "no CUDA binding for Python: install cuda-python (pip install cuda-python) or pycuda, or "
    "torch with CUDA; TensorRT engines are built and run on the machine's GPU"
)
NO_GPU = "no CUDA GPU found: TensorRT engines are built and run on the GPU that will use them"


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "8.7"
    cuda_runtime: str  # "12.6"


class DeviceArray:
    """A device allocation: ``ptr`` for ``set_tensor_address``, ``shape``/``dtype`` for reading
    it back. ``owner`` keeps the binding's own object alive."""

    def __init__(self, ptr: int, shape: tuple[int, ...], dtype: np.dtype, owner: Any) -> None:
        self.ptr, self.shape, self.dtype, self.owner = (
            int(ptr),
            tuple(shape),
            np.dtype(dtype),
            owner,
        )

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


def _version_text(code: int) -> str:
    return f"{code // 1000}.{(code % 1000) // 10}"  # 12060 -> "12.6"


class _TorchBackend:
    name = "torch"

    def __init__(self) -> None:
        import torch

        if torch.version.cuda is None:
            raise ImportError("this torch is built without CUDA")
        if not torch.cuda.is_available():
            raise RuntimeError("torch has no CUDA device")
        self.torch = torch

    def info(self) -> GpuInfo:
        major, minor = self.torch.cuda.get_device_capability(0)
        return GpuInfo(
            self.torch.cuda.get_device_name(0), f"{major}.{minor}", str(self.torch.version.cuda)
        )

    def upload(self, array: np.ndarray) -> DeviceArray:
        tensor = self.torch.from_numpy(np.ascontiguousarray(array)).cuda()
        return DeviceArray(tensor.data_ptr(), array.shape, array.dtype, tensor)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceArray:
        tensor = self.torch.from_numpy(np.empty(shape, dtype=dtype)).cuda()
        return DeviceArray(tensor.data_ptr(), shape, dtype, tensor)

    def download(self, array: DeviceArray) -> np.ndarray:
        return array.owner.cpu().numpy()

    def stream(self) -> tuple[int, Any]:
        stream = self.torch.cuda.Stream()
        return stream.cuda_stream, stream

    def synchronize(self, stream: tuple[int, Any]) -> None:
        stream[1].synchronize()


class _CudaPythonBackend:
    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python 12.6 and later
        except ImportError:
            from cuda import cudart  # older cuda-python
        self.cudart = cudart
        if not self._check(cudart.cudaGetDeviceCount()):
            raise RuntimeError("no CUDA device")

    def _check(self, result: tuple) -> Any:
        error, *values = result
        if int(error) != 0:
            raise RuntimeError(f"CUDA error {error}")
        return values[0] if len(values) == 1 else values

    def info(self) -> GpuInfo:
        props = self._check(self.cudart.cudaGetDeviceProperties(0))
        name = props.name.decode(errors="replace").rstrip("\0")
        runtime = self._check(self.cudart.cudaRuntimeGetVersion())
        return GpuInfo(name, f"{props.major}.{props.minor}", _version_text(int(runtime)))

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceArray:
        size = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        ptr = self._check(self.cudart.cudaMalloc(size))
        return DeviceArray(int(ptr), shape, dtype, _Freeing(self.cudart, ptr))

    def upload(self, array: np.ndarray) -> DeviceArray:
        array = np.ascontiguousarray(array)
        device = self.empty(array.shape, array.dtype)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.cudart.cudaMemcpy(device.ptr, array.ctypes.data, array.nbytes, kind))
        return device

    def download(self, array: DeviceArray) -> np.ndarray:
        host = np.empty(array.shape, dtype=array.dtype)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.cudart.cudaMemcpy(host.ctypes.data, array.ptr, array.nbytes, kind))
        return host

    def stream(self) -> tuple[int, Any]:
        stream = self._check(self.cudart.cudaStreamCreate())
        return int(stream), stream

    def synchronize(self, stream: tuple[int, Any]) -> None:
        self._check(self.cudart.cudaStreamSynchronize(stream[1]))


class _Freeing:
    def __init__(self, cudart: Any, ptr: Any) -> None:
        self.cudart, self.ptr = cudart, ptr

    def __del__(self) -> None:
        self.cudart.cudaFree(self.ptr)


class _PyCudaBackend:
    name = "pycuda"

    def __init__(self) -> None:
        import pycuda.autoinit  # noqa: F401  (creates the context on device 0)
        import pycuda.driver as cuda

        self.cuda = cuda

    def info(self) -> GpuInfo:
        device = self.cuda.Context.get_device()
        major, minor = device.compute_capability()
        return GpuInfo(
            device.name(), f"{major}.{minor}", ".".join(str(v) for v in self.cuda.get_version()[:2])
        )

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceArray:
        allocation = self.cuda.mem_alloc(max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize))
        return DeviceArray(int(allocation), shape, dtype, allocation)

    def upload(self, array: np.ndarray) -> DeviceArray:
        array = np.ascontiguousarray(array)
        device = self.empty(array.shape, array.dtype)
        self.cuda.memcpy_htod(device.owner, array)
        return device

    def download(self, array: DeviceArray) -> np.ndarray:
        host = np.empty(array.shape, dtype=array.dtype)
        self.cuda.memcpy_dtoh(host, array.owner)
        return host

    def stream(self) -> tuple[int, Any]:
        stream = self.cuda.Stream()
        return stream.handle, stream

    def synchronize(self, stream: tuple[int, Any]) -> None:
        stream[1].synchronize()


def cuda_backend() -> Any:
    """The first working binding (torch with CUDA, cuda-python, pycuda); one-line errors for no
    binding or no GPU."""
    saw_binding = False
    for backend in (_TorchBackend, _CudaPythonBackend, _PyCudaBackend):
        try:
            return backend()
        except ImportError:
            continue
        except Exception:  # a binding present, but no usable device behind it
            saw_binding = True
            continue
    raise EdgesegError(NO_GPU if saw_binding else NO_BINDING)
