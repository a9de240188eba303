"""The unpooling kernel outside TensorRT: compiled on its own and called through ctypes.

Two libraries, both exposing the plain C entry points of ``unpool_kernel.h``:

* :func:`host_library` compiles ``unpool_host.cpp`` with a C++ compiler (``g++ -O2 -shared
  -fPIC``) or, as host code, with nvcc. It loops over the outputs calling the kernel's own
  ``__host__ __device__`` index function, so CI machines without a GPU test the device logic.
* :func:`cuda_library` compiles ``unpool_kernel.cu`` with nvcc; on a GPU it runs the real kernel
  on torch CUDA tensors (:func:`unpool_cuda`).

Libraries are cached by a hash of their sources, compiler and flags under the temporary folder,
so a test session compiles each once. This is test and benchmark tooling: TensorRT loads the
plugin built by :func:`edgeseg.export.plugin.build_plugin`, never these.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeseg.export.plugin import source_dir
from edgeseg.export.plugin.build import find_nvcc, normalize_cuda_arch

if TYPE_CHECKING:
    import numpy as np
    import torch

HEADERS = ("unpool_kernel.cuh", "unpool_kernel.h")
DTYPE_CODES = {"float32": 0, "float16": 1}  # EDGESEG_UNPOOL_FLOAT32 / _FLOAT16


def _cache_root() -> Path:
    return Path(tempfile.gettempdir()) / f"edgeseg-kernel-{os.getuid()}"


def _compile_cached(command: list[str], source: str, name: str) -> Path:
    """Run ``command + [source, -o, tmp]`` unless a library of the same inputs is cached."""
    digest = hashlib.sha256("\0".join(command).encode())
    for file_name in (*HEADERS, source):
        digest.update(file_name.encode() + b"\0" + (source_dir() / file_name).read_bytes())
    target = _cache_root() / digest.hexdigest()[:20] / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{name}.{os.getpid()}.tmp")
    full = [*command, str(source_dir() / source), "-o", str(temporary)]
    result = subprocess.run(full, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        # Our sources failing with a working compiler is a bug, not a user mistake.
        raise RuntimeError(f"{' '.join(full)} failed:\n{result.stdout}{result.stderr}")
    os.replace(temporary, target)
    return target


def find_cxx() -> str | None:
    """A C++ compiler: $CXX, else g++, else c++ on PATH; None if there is none."""
    for candidate in (os.environ.get("CXX"), "g++", "c++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def host_library(compiler: str | None = None) -> Path:
    """Compile the host implementation; returns the shared library's path.

    ``compiler``: a C++ compiler (default: :func:`find_cxx`) or ``"nvcc"``, which compiles the
    same source as CUDA (``-x cu``), so the index header is read with ``__CUDACC__`` defined.
    Raises EdgesegError when the compiler is missing.
    """
    from edgeseg.errors import EdgesegError

    if compiler == "nvcc":
        nvcc = find_nvcc()
        if nvcc is None:
            raise EdgesegError("nvcc not found; install the CUDA toolkit")
        command = [str(nvcc), "-x", "cu", "-O2", "-std=c++17", "-shared", "-Xcompiler", "-fPIC"]
        return _compile_cached(command, "unpool_host.cpp", "libedgeseg_unpool_host_nvcc.so")
    cxx = shutil.which(compiler) if compiler else find_cxx()
    if cxx is None:
        raise EdgesegError(f"C++ compiler {compiler or 'g++'} not found; install g++")
    command = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra"]
    return _compile_cached(command, "unpool_host.cpp", "libedgeseg_unpool_host.so")


def cuda_library(cuda_arch: str | None = None) -> Path:
    """Compile ``unpool_kernel.cu`` into a standalone library; returns its path.

    ``cuda_arch``: compute capabilities such as ``"90"`` or ``"87;90"`` (SASS plus PTX for each),
    or ``"native"`` (default: the GPU of this machine). The CUDA runtime is linked statically, so
    the library loads beside torch's own runtime without a libcudart on the loader path. Raises
    EdgesegError without nvcc.
    """
    from edgeseg.errors import EdgesegError

    nvcc = find_nvcc()
    if nvcc is None:
        raise EdgesegError("nvcc not found; install the CUDA toolkit")
    arch = normalize_cuda_arch(cuda_arch or "native")
    if arch == "native":
        flags = ["-arch=native"]
    elif all(a.isdigit() for a in arch.split(";")):
        flags = [f"-gencode=arch=compute_{a},code=[sm_{a},compute_{a}]" for a in arch.split(";")]
    else:
        raise EdgesegError(f"cuda_library takes compute capabilities like 90 or 87;90, not {arch}")
    command = [
        str(nvcc),
        "-O3",
        "-std=c++17",
        "-shared",
        "-Xcompiler",
        "-fPIC",
        "-cudart",
        "static",
    ]
    return _compile_cached(
        [*command, *flags],
        "unpool_kernel.cu",
        f"libedgeseg_unpool_kernel_{arch.replace(';', '_')}.so",
    )


def load_library(path: str | Path) -> ctypes.CDLL:
    """Load a library built above (or the plugin) and declare the C entry points it has."""
    library = ctypes.CDLL(str(path))
    c_int, c_void_p = ctypes.c_int, ctypes.c_void_p
    if hasattr(library, "edgeseg_unpool_host_f32"):
        library.edgeseg_unpool_host_f32.restype = c_int
        library.edgeseg_unpool_host_f32.argtypes = [c_void_p, c_void_p, c_void_p] + [c_int] * 4
    if hasattr(library, "edgeseg_unpool_forward"):
        library.edgeseg_unpool_forward.restype = c_int
        library.edgeseg_unpool_forward.argtypes = [c_void_p] * 3 + [c_int] * 5 + [c_void_p]
    if hasattr(library, "edgeseg_unpool_status_string"):
        library.edgeseg_unpool_status_string.restype = ctypes.c_char_p
        library.edgeseg_unpool_status_string.argtypes = [c_int]
    return library


def _check_shapes(decoder_shape: tuple[int, ...], prepool_shape: tuple[int, ...]) -> None:
    if len(prepool_shape) != 4 or len(decoder_shape) != 4:
        raise ValueError(f"expected 4-D NCHW tensors, got {decoder_shape} and {prepool_shape}")
    n, c, h, w = prepool_shape
    if tuple(decoder_shape) != (n, c, h // 2, w // 2):
        raise ValueError(
            f"decoder {tuple(decoder_shape)} does not match prepool {tuple(prepool_shape)}: "
            f"expected {(n, c, h // 2, w // 2)}"
        )


def unpool_host(library: ctypes.CDLL, decoder: np.ndarray, prepool: np.ndarray) -> np.ndarray:
    """Unpool on the CPU with :func:`host_library`: float32 NCHW arrays in, float32 array out.

    decoder: (N, C, H // 2, W // 2); prepool: (N, C, H, W). The output starts as NaN, so an
    element the kernel forgot to write shows up in any comparison.
    """
    import numpy as np

    decoder = np.ascontiguousarray(decoder, dtype=np.float32)
    prepool = np.ascontiguousarray(prepool, dtype=np.float32)
    _check_shapes(decoder.shape, prepool.shape)
    out = np.full(prepool.shape, np.nan, dtype=np.float32)
    status = library.edgeseg_unpool_host_f32(
        decoder.ctypes.data, prepool.ctypes.data, out.ctypes.data, *prepool.shape
    )
    if status != 0:
        raise RuntimeError(f"edgeseg_unpool_host_f32 returned {status}")
    return out


def unpool_cuda(
    library: ctypes.CDLL,
    decoder: torch.Tensor,
    prepool: torch.Tensor,
    out: torch.Tensor | None = None,
    stream: Any = None,
) -> torch.Tensor:
    """Unpool CUDA tensors with :func:`cuda_library` (float32 or float16, same dtype, NCHW).

    ``stream``: a ``torch.cuda.Stream`` (default: the current stream). ``out`` defaults to a new
    NaN-filled tensor so unwritten elements show. Asynchronous, like any CUDA op on that stream.
    """
    import torch

    if (
        decoder.dtype != prepool.dtype
        or str(decoder.dtype).removeprefix("torch.") not in DTYPE_CODES
    ):
        raise ValueError(
            "expected float32 or float16 tensors of one dtype, "
            f"got {decoder.dtype} and {prepool.dtype}"
        )
    if not (decoder.is_cuda and prepool.is_cuda):
        raise ValueError("expected CUDA tensors")
    decoder = decoder.contiguous()
    prepool = prepool.contiguous()
    _check_shapes(tuple(decoder.shape), tuple(prepool.shape))
    if out is None:
        out = torch.full_like(prepool, float("nan"))
    elif out.shape != prepool.shape or out.dtype != prepool.dtype or not out.is_contiguous():
        raise ValueError("out must be a contiguous tensor of the prepool's shape and dtype")
    stream = stream if stream is not None else torch.cuda.current_stream(prepool.device)
    status = library.edgeseg_unpool_forward(
        decoder.data_ptr(),
        prepool.data_ptr(),
        out.data_ptr(),
        *prepool.shape,
        DTYPE_CODES[str(decoder.dtype).removeprefix("torch.")],
        stream.cuda_stream,
    )
    if status != 0:
        text = library.edgeseg_unpool_status_string(status).decode()
        raise RuntimeError(f"edgeseg_unpool_forward returned {status}: {text}")
    return out
