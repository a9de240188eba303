"""The TensorRT backend's refusals, testable without TensorRT, and a real engine run where a GPU,
TensorRT and the plugin are present (marker ``tensorrt``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import synthetic_frame, tiny_card, write_tiny_onnx

from edgeseg.card import write_sidecar
from edgeseg.errors import EdgesegError
from edgeseg.runtime import Segmenter
from edgeseg.runtime.backend_tensorrt import (
    PLUGIN_LIBRARY_NAME,
    installed_plugin_version,
    plugin_library_path,
    refuse_mismatch,
)

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
    with pytest.raises(EdgesegError, match=r"plugin library not found at .*edgeseg plugin build"):
        Segmenter(fake_engine)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_missing_tensorrt(fake_engine: Path, plugin_dir: Path) -> None:
    write_sidecar(tiny_card(build=BUILD), fake_engine)
    (plugin_dir / PLUGIN_LIBRARY_NAME).write_bytes(b"\x7fELF")
    with pytest.raises(EdgesegError, match="TensorRT is not installed"):
        Segmenter(fake_engine, backend="tensorrt")


def test_plugin_path_follows_the_documented_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", "/opt/p")
    assert plugin_library_path() == Path("/opt/p/libedgeseg_unpool_plugin.so")
    monkeypatch.delenv("EDGESEG_PLUGIN_DIR")
    expected = Path("~/.cache/edgeseg/plugin/libedgeseg_unpool_plugin.so").expanduser()
    assert plugin_library_path() == expected


def test_plugin_path_matches_the_export_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    build = pytest.importorskip("edgeseg.export.plugin.build")
    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", "/opt/p")
    assert plugin_library_path() == build.plugin_library_path()


def test_installed_plugin_version_is_read_beside_the_library(plugin_dir: Path) -> None:
    library = plugin_dir / PLUGIN_LIBRARY_NAME
    assert installed_plugin_version(library) is None
    (plugin_dir / "libedgeseg_unpool_plugin.json").write_text('{"plugin_version": "1"}')
    assert installed_plugin_version(library) == "1"


@pytest.mark.parametrize(
    ("machine", "fragment"),
    [
        ({"tensorrt_version": "10.8.0.43"}, "TensorRT 10.3.0.30, this machine has 10.8.0.43"),
        ({"gpu_name": "RTX 3090", "compute_capability": "8.6"}, "GPU Orin (compute 8.7)"),
        ({"plugin_version": "2"}, "plugin version 1, installed 2"),
    ],
)
def test_mismatched_build_is_refused_with_how_to_rebuild(
    machine: dict, fragment: str, plugin_dir: Path
) -> None:
    facts = {"tensorrt_version": "10.3.0.30", "gpu_name": "Orin", "compute_capability": "8.7"}
    facts.update(machine)
    plugin_version = facts.pop("plugin_version", "1")
    library = plugin_dir / PLUGIN_LIBRARY_NAME
    library.with_name("libedgeseg_unpool_plugin.json").write_text(
        f'{{"plugin_version": "{plugin_version}"}}'
    )
    engine = plugin_dir.parent / "model.engine"
    with pytest.raises(EdgesegError, match="rebuild it here: edgeseg export") as info:
        refuse_mismatch(tiny_card(build=BUILD), engine, library=library, **facts)
    assert fragment in str(info.value)


def test_matching_build_passes(plugin_dir: Path) -> None:
    library = plugin_dir / PLUGIN_LIBRARY_NAME
    refuse_mismatch(tiny_card(build=BUILD), Path("m.engine"), "10.3.0.30", "Orin", "8.7", library)


def test_engine_without_a_build_record_is_refused(plugin_dir: Path) -> None:
    library = plugin_dir / PLUGIN_LIBRARY_NAME
    with pytest.raises(EdgesegError, match="no record of what built it"):
        refuse_mismatch(tiny_card(), Path("m.engine"), "10.3.0", "Orin", "8.7", library)


# -- on a GPU with TensorRT and the plugin ------------------------------------------------------


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engine_matches_onnxruntime(tmp_path: Path) -> None:
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    if not plugin_library_path().is_file():
        pytest.skip(f"plugin library not built at {plugin_library_path()} (edgeseg plugin build)")
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
    from edgeseg.engine_card import engine_build_facts
    from edgeseg.runtime.cuda_buffers import load_cuda

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
