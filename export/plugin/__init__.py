"""The edgeseg TensorRT unpooling plugin: CUDA kernel, IPluginV3 wrapper, and how to build them.

SegNet's ``max_unpool2d`` becomes one ``EdgesegUnpool`` node in the TensorRT graph (attributes
``plugin_namespace="edgeseg"``, ``plugin_version="1"``; inputs: decoder tensor (N, C, H/2, W/2),
encoder pre-pool tensor (N, C, H, W); output (N, C, H, W)). The kernel recomputes each 2x2
window's first maximum from the pre-pool tensor, so no index tensor reaches TensorRT.

The C++/CUDA sources ship inside this package; :func:`build_plugin` compiles them with CMake
against the installed TensorRT and CUDA into :func:`plugin_library_path`, from where TensorRT's
plugin registry loads the library (:func:`edgeseg.backends.tensorrt.load_plugin`). The plugin's
identity (op type, namespace, version) and the library's path are stated once, in
:mod:`edgeseg.backends.tensorrt`. Importing this package imports neither torch nor TensorRT.
"""

from __future__ import annotations

from pathlib import Path

# Files the CMake build needs; all of them ship as package data.
SOURCE_FILES = (
    "CMakeLists.txt",
    "unpool_kernel.cuh",
    "unpool_kernel.h",
    "unpool_kernel.cu",
    "unpool_host.cpp",
    "unpool_plugin.h",
    "unpool_plugin.cpp",
)


def source_dir() -> Path:
    """The folder holding the plugin's C++/CUDA sources and ``CMakeLists.txt``."""
    return Path(__file__).resolve().parent


from edgeseg.export.plugin.build import build_plugin  # noqa: E402

__all__ = ["SOURCE_FILES", "build_plugin", "source_dir"]
