"""What the TensorRT backend asks of a CUDA binding (:class:`CudaApi`) and what it records of
the GPU (:class:`GpuInfo`); one subclass per binding in :mod:`edgeseg.backends.cuda` (cuda-python)
and :mod:`edgeseg.backends.cuda_fallbacks` (pycuda, torch)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np


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


#: CUstream_flags::CU_STREAM_NON_BLOCKING (cudaStreamNonBlocking in the runtime API): engine
#: streams do not synchronize implicitly with the legacy default stream (torch's, or another
#: library's work on it) while an engine runs.
CU_STREAM_NON_BLOCKING = 1


def uuid_text(raw: bytes) -> str:
    """16 UUID bytes as nvidia-smi prints them: ``GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``."""
    text = raw[:16].hex()
    return f"GPU-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


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
