"""The TensorRT backend's refusals, testable without TensorRT, and a real engine run where a GPU,
TensorRT and the plugin are present (marker ``tensorrt``, checked in ``tests/conftest.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gpu_helpers import missing
from runtime_helpers import synthetic_frame, tiny_card, write_tiny_onnx

from edgeseg.backends.tensorrt import (
    LIBRARY_NAME,
    check_engine_compat,
    installed_plugin_version,
    plugin_library_path,
)
from edgeseg.card import write_sidecar
from edgeseg.errors import EdgesegError
from edgeseg.runtime import Segmenter

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
BUILD = {
    "tensorrt": "10.3.0.30",
    "cuda": "12.6",
    "gpu": "Orin",
    "compute_capability": "8.7",
    "plugin_version": "1",
    "source_onnx": "model.trt.onnx",
}


@pytest.fixture()
def fake_engine(tmp_path: Path) -> Path:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not a real engine")
    return engine


@pytest.fixture()
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "plugin"
    folder.mkdir()
    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", str(folder))
    return folder


def test_engine_without_sidecar(fake_engine: Path, plugin_dir: Path) -> None:
    with pytest.raises(EdgesegError, match=r"model.engine.json is missing"):
        Segmenter(fake_engine)


def test_missing_plugin_library(fake_engine: Path, plugin_dir: Path) -> None:
    write_sidecar(tiny_card(build=BUILD), fake_engine)
    with pytest.raises(EdgesegError, match=r"plugin is not built .*: edgeseg plugin build"):
        Segmenter(fake_engine)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_missing_tensorrt(fake_engine: Path, plugin_dir: Path) -> None:
    write_sidecar(tiny_card(build=BUILD), fake_engine)
    (plugin_dir / LIBRARY_NAME).write_bytes(b"\x7fELF")
    with pytest.raises(EdgesegError, match="TensorRT is not installed"):
        Segmenter(fake_engine, backend="tensorrt")


def test_plugin_path_follows_the_documented_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", "/opt/p")
    assert plugin_library_path() == Path("/opt/p/libedgeseg_unpool_plugin.so")
    monkeypatch.delenv("EDGESEG_PLUGIN_DIR")
    expected = Path("~/.cache/edgeseg/plugin/libedgeseg_unpool_plugin.so").expanduser()
    assert plugin_library_path() == expected


def test_installed_plugin_version_is_read_beside_the_library(plugin_dir: Path) -> None:
    library = plugin_dir / LIBRARY_NAME
    assert installed_plugin_version(library) is None
    (plugin_dir / "libedgeseg_unpool_plugin.json").write_text('{"plugin_version": "1"}')
    assert installed_plugin_version(library) == "1"


def test_mismatched_plugin_is_refused_with_how_to_rebuild(plugin_dir: Path) -> None:
    # The runtime compares the engine's card with the plugin version recorded beside the library.
    library = plugin_dir / LIBRARY_NAME
    library.with_name("libedgeseg_unpool_plugin.json").write_text('{"plugin_version": "2"}')
    with pytest.raises(EdgesegError, match="rebuild it here: edgeseg export") as info:
        check_engine_compat(
            tiny_card(build=BUILD),
            tensorrt="10.3.0.30",
            gpu="Orin",
            compute_capability="8.7",
            plugin_version=installed_plugin_version(library),
            engine=plugin_dir.parent / "model.engine",
        )
    assert "plugin version 1, installed 2" in str(info.value)


# -- on a GPU with TensorRT and the plugin ------------------------------------------------------


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engine_matches_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorrt as trt  # the marker skips this test where it cannot be imported

    if not plugin_library_path().is_file():
        from edgeseg.export.plugin import build_plugin

        monkeypatch.setenv("EDGESEG_PLUGIN_DIR", str(tmp_path / "plugin"))
        try:
            build_plugin()
        except EdgesegError as exc:
            missing(f"cannot build the plugin here: {exc}")
    onnx_path = write_tiny_onnx(tmp_path / "tiny.onnx")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes())
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 24, 32), (1, 3, 24, 32), (4, 3, 24, 32))
    config.add_optimization_profile(profile)
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, config)))
    from edgeseg.backends.cuda import load_cuda
    from edgeseg.backends.tensorrt import engine_build_facts

    gpu, capability = load_cuda().device_identity()
    build = engine_build_facts(
        tensorrt=trt.__version__,
        cuda="?",
        gpu=gpu,
        compute_capability=capability,
        precision="fp32",
        plugin_version=installed_plugin_version(plugin_library_path()) or "1",
        edgeseg="test",
    )
    write_sidecar(tiny_card(build=build), engine)
    with Segmenter(engine) as on_gpu:
        assert on_gpu.backend_name == "tensorrt"
        reference = Segmenter(onnx_path)
        frames = [synthetic_frame(i, (40, 50)) for i in range(3)]
        for frame in frames:  # first call runs plain, later ones replay the CUDA graph
            np.testing.assert_array_equal(on_gpu.predict(frame), reference.predict(frame))
        for got, want in zip(
            on_gpu.predict_batch(frames), reference.predict_batch(frames), strict=True
        ):
            np.testing.assert_array_equal(got, want)
