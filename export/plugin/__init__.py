"""The edgeseg TensorRT unpooling plugin: CUDA kernel, IPluginV3 wrapper, and how to build them.

SegNet's ``max_unpool2d`` becomes one ``EdgesegUnpool`` node in the TensorRT graph (attributes
``plugin_namespace="edgeseg"``, ``plugin_version="1"``; inputs: decoder tensor (N, C, H/2, W/2),
encoder pre-pool tensor (N, C, H, W); output (N, C, H, W)). The kernel recomputes each 2x2
window's first maximum from the pre-pool tensor, so no index tensor reaches TensorRT.

The C++/CUDA sources ship inside this package; :func:`build_plugin` compiles them with CMake
against the installed TensorRT and CUDA into :func:`plugin_library_path`, from where TensorRT's
plugin registry loads the library (``registry.load_library``). Importing this package imports
neither torch nor TensorRT.
"""

from __future__ import annotations

from pathlib import Path

PLUGIN_OP_TYPE = "EdgesegUnpool"
PLUGIN_NAMESPACE = "edgeseg"
PLUGIN_VERSION = "1"
LIBRARY_NAME = "libedgeseg_unpool_plugin.so"

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


from edgeseg.export.plugin.build import build_plugin, plugin_library_path  # noqa: E402

__all__ = [
    "LIBRARY_NAME",
    "PLUGIN_NAMESPACE",
    "PLUGIN_OP_TYPE",
    "PLUGIN_VERSION",
    "SOURCE_FILES",
    "build_plugin",
    "plugin_library_path",
    "source_dir",
]
