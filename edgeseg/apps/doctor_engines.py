"""``edgeseg doctor``'s inference-engine checks: torch, ONNX Runtime, TensorRT, the plugin.

Each function adds its lines to a :class:`edgeseg.apps.doctor.DoctorReport` and records what a
later check builds on in ``report.facts`` (``tensorrt``: the module or None; ``plugin``: the
library path when it loads).
"""

from __future__ import annotations

from typing import Any

from edgeseg.errors import EdgesegError


def check_torch(report: Any) -> None:
    try:
        import torch
    except ImportError:
        report.add(
            "torch",
            "skip",
            "not installed (training, export and the torch backend need it)",
            "pip install 'edgeseg[export]' (on Jetson: NVIDIA's torch wheel for your JetPack)",
        )
        return
    cuda = torch.version.cuda
    available = bool(cuda) and torch.cuda.is_available()
    detail = f"torch {torch.__version__}, " + (
        f"CUDA {cuda} build, GPU {'usable' if available else 'NOT usable'}"
        if cuda
        else "CPU-only build"
    )
    gpu = report.facts.get("gpu")
    if gpu is not None and not available:
        report.add(
            "torch",
            "warn",
            detail,
            "install the torch build for this CUDA (pytorch.org's selector; on Jetson NVIDIA's "
            "wheel for your JetPack) to train and export on the GPU",
        )
        return
    report.add("torch", "ok", detail)


def check_onnxruntime(report: Any) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        report.add(
            "onnxruntime",
            "warn",
            "not installed: no CPU backend for ONNX files (and no INT8 calibration)",
            "pip install 'edgeseg[onnx]'",
        )
        return
    providers = ort.get_available_providers()
    detail = f"onnxruntime {ort.__version__}, providers: {', '.join(providers)}"
    if "CPUExecutionProvider" not in providers:
        report.add("onnxruntime", "fail", detail, "pip install --force-reinstall onnxruntime")
        return
    if report.facts.get("gpu") is not None and "CUDAExecutionProvider" not in providers:
        report.add(
            "onnxruntime",
            "warn",
            detail + " (CPU only on a GPU machine)",
            "pip install onnxruntime-gpu for the CUDA provider, or use TensorRT engines",
        )
        return
    report.add("onnxruntime", "ok", detail)


def check_tensorrt(report: Any) -> None:
    from edgeseg.backends.tensorrt import import_tensorrt, tensorrt_major

    report.facts["tensorrt"] = None
    try:
        trt = import_tensorrt()
    except EdgesegError as exc:
        gpu = report.facts.get("gpu") is not None
        report.add(
            "tensorrt",
            "warn" if gpu else "skip",
            str(exc).split(":")[0],
            "desktop: pip install tensorrt; Jetson: it comes with JetPack 6.1+ "
            "(sudo apt install nvidia-jetpack)"
            if gpu
            else "TensorRT needs an NVIDIA GPU; on this machine use ONNX Runtime",
        )
        return
    report.facts["tensorrt"] = trt
    generation = (
        "10.x: weakly typed networks, FP16/INT8 builder flags"
        if tensorrt_major(trt.__version__) == 10
        else "11.x: strongly typed networks, precision from the ONNX types"
    )
    report.add("tensorrt", "ok", f"TensorRT {trt.__version__} ({generation})")


def check_plugin(report: Any) -> None:
    """Built? For this TensorRT (major.minor, plugin version)? Current sources? Loads? Creator?"""
    from edgeseg.backends import tensorrt as backend

    library = backend.plugin_library_path()
    report.facts["plugin"] = None
    trt = report.facts.get("tensorrt")
    if not library.is_file():
        report.add(
            "plugin",
            "warn" if trt is not None else "skip",
            f"not built ({library})",
            "edgeseg plugin build (needs CUDA and TensorRT headers); meanwhile engines can be "
            "built with --unpool native",
        )
        return
    info = backend.plugin_build_info(library)
    built = (
        f"built for TensorRT {info.get('tensorrt_headers', '?')}, CUDA {info.get('cuda', '?')}, "
        f"arch {info.get('cuda_architectures', '?')}"
    )
    if trt is None:
        report.add(
            "plugin",
            "skip",
            f"{library}: {built}; TensorRT absent, not loaded",
            "install TensorRT (see the tensorrt line), then edgeseg doctor again",
        )
        return
    problem = backend.plugin_build_problem(library, trt.__version__)
    if problem is not None:
        report.add("plugin", "fail", problem, "edgeseg plugin build (or --unpool native)")
        return
    try:
        backend.load_plugin(trt, library)
    except EdgesegError as exc:
        report.add("plugin", "fail", str(exc), "edgeseg plugin build")
        return
    report.facts["plugin"] = library
    stale = _stale_sources(info)
    report.add(
        "plugin",
        "warn" if stale or not info else "ok",
        f"{library}: {built}; loaded, {backend.PLUGIN_NAMESPACE}::{backend.PLUGIN_OP_TYPE} "
        f"v{backend.PLUGIN_VERSION} registered"
        + ("; built from older sources" if stale else "")
        + ("; no build record beside it" if not info else ""),
        "edgeseg plugin build (rebuilds from this edgeseg's sources and writes the record)",
    )


def _stale_sources(info: dict) -> bool:
    try:
        from edgeseg.export.plugin.build import sources_digest
    except ImportError:
        return False
    recorded = info.get("sources_sha256")
    return bool(recorded) and recorded != sources_digest()
