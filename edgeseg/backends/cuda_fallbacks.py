"""The CUDA bindings tried after cuda-python, behind :class:`~edgeseg.backends.cuda.CudaApi`:
pycuda (the library the product names) and torch's allocator and streams. Each is handed the
binding module that :mod:`edgeseg.backends.cuda` imported (the one module that imports one);
neither offers CUDA graphs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeseg.backends.cuda_api import CU_STREAM_NON_BLOCKING, CudaApi


class PyCudaApi(CudaApi):
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


class TorchCudaApi(CudaApi):
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
