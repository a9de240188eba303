"""How edgeseg is installed on each target, as the code names it in its one-line errors and in
``edgeseg doctor``'s fix lines.

The recipes themselves are files in the clone, ``recipes/<target>.sh`` with
``recipes/<target>-constraints.txt``: ``docs/jetson.md`` shows the JetPack 6 one verbatim and
CI runs it (``.ci/jetson-rehearsal``). The constraints quoted here are the ones those files
hold; ``tests/jetson/test_recipes.py`` fails when they drift apart.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """One install target: ``script`` and ``constraints`` are paths inside the clone."""

    target: str
    script: str
    constraints: str
    numpy: str  # the numpy constraint ("numpy<2"), "" when none
    cuda_python: str  # the cuda-python constraint ("cuda-python<13")


RECIPES = {
    "jetpack6": Recipe(
        "JetPack 6",
        "recipes/jetpack6.sh",
        "recipes/jetpack6-constraints.txt",
        "numpy<2",
        "cuda-python<13",
    ),
    "jetpack7": Recipe(
        "JetPack 7",
        "recipes/jetpack7.sh",
        "recipes/jetpack7-constraints.txt",
        "numpy<2",
        "cuda-python>=13,<14",
    ),
    "desktop-gpu": Recipe(
        "a desktop GPU",
        "recipes/desktop-gpu.sh",
        "recipes/desktop-gpu-constraints.txt",
        "",
        "cuda-python<13",
    ),
}
#: Where a system OpenCV lives (Debian/Ubuntu/JetPack's python3-opencv, NVIDIA's libopencv).
SYSTEM_SITE_PREFIXES = ("/usr/lib/python3", "/usr/local/lib/python3")


def recipe_for_l4t(major: int | None) -> Recipe:
    """The recipe for an L4T release (36: JetPack 6, 38 and later: JetPack 7); the desktop one
    when not a Jetson (None)."""
    if major is None:
        return RECIPES["desktop-gpu"]
    return RECIPES["jetpack7"] if major >= 38 else RECIPES["jetpack6"]


def system_opencv() -> Path | None:
    """The system cv2 this Python sees (a venv made with ``--system-site-packages`` sees it,
    even when a pip OpenCV comes first), found without importing it; None if there is none."""
    for entry in sys.path:
        if not entry.startswith(SYSTEM_SITE_PREFIXES) or not Path(entry).is_dir():
            continue
        folder = Path(entry)
        found = sorted(folder.glob("cv2*.so")) + sorted(folder.glob("cv2/__init__.py"))
        if found:
            return found[0]
    return None


def opencv_fix() -> str:
    """How to get an OpenCV: the system one where the system has it (a pip one would hide its
    GStreamer), else the ``opencv`` extra."""
    found = system_opencv()
    if found is not None:
        return (
            f"use the system OpenCV ({found}) from a venv made with --system-site-packages, as "
            f"{RECIPES['jetpack6'].script} does; do not pip install OpenCV there"
        )
    return "pip install 'edgeseg[opencv]' (on a Jetson, JetPack's OpenCV: recipes/jetpack6.sh)"


#: Optional module -> what brings it, for the one line a missing one gives.
MODULE_FIXES = {
    "onnx": "pip install 'edgeseg[engine]' (engines from ONNX files, no torch; on a Jetson "
    "recipes/jetpack6.sh installs it)",
    "onnxruntime": "pip install 'edgeseg[onnx]'",
    "onnxscript": "pip install 'edgeseg[export]' (exports from a checkpoint need torch)",
    "torch": "pip install 'edgeseg[export]' or 'edgeseg[train]' (on a Jetson, NVIDIA's torch "
    "wheel for your JetPack; engines from ONNX files need no torch)",
    "safetensors": "pip install 'edgeseg[train]'",
    "matplotlib": "pip install 'edgeseg[train]'",
}


def missing_module_line(exc: ImportError) -> str | None:
    """The one line for an optional module that is missing or does not import, or None when
    ``exc`` is not about one (then it is a bug and keeps its traceback).

    >>> missing_module_line(ModuleNotFoundError("No module named 'onnx'", name="onnx"))[:25]
    'onnx is not installed: pi'
    """
    name = (exc.name or "").split(".")[0]
    if name == "cv2" and isinstance(exc, ModuleNotFoundError):
        return f"OpenCV (cv2) is not installed: {opencv_fix()}"
    if name in MODULE_FIXES and isinstance(exc, ModuleNotFoundError):
        return f"{name} is not installed: {MODULE_FIXES[name]}"
    if "numpy.core.multiarray failed to import" in str(exc) or "_ARRAY_API" in str(exc):
        return numpy_abi_line()
    return None


def numpy_abi_line() -> str:
    """A module built against numpy 1.x (JetPack's or Debian's OpenCV) met numpy 2."""
    spec = importlib.util.find_spec("numpy")
    where = f" ({Path(spec.origin).parent})" if spec and spec.origin else ""
    return (
        f"numpy 2 in this venv{where} breaks the system OpenCV, which is built against numpy 1.x:"
        f" pip install 'numpy<2' (the recipes pin it: {RECIPES['jetpack6'].constraints})"
    )
