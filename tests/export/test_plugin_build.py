"""Building the TensorRT plugin: where it goes, how TensorRT and CUDA are found, and the errors.

Errors a user can fix are one line (EdgesegError); CMake's own fatal errors name what is missing.
The real builds against TensorRT headers are in test_plugin_compile.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from gpu_helpers import missing

from edgeseg.backends import tensorrt as identity
from edgeseg.errors import EdgesegError
from edgeseg.export import plugin
from edgeseg.export.plugin import build


def _require_cmake_and_nvcc() -> None:
    if build.find_nvcc() is None:
        missing("nvcc not found on PATH, CUDA_HOME or /usr/local/cuda/bin")
    if shutil.which("cmake") is None:
        missing("cmake not found")


# --- cheap checks, no compiler needed -------------------------------------------------------


def test_plugin_library_path_is_one_documented_place(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(identity.PLUGIN_DIR_ENV, raising=False)
    expected = Path.home() / ".cache" / "edgeseg" / "plugin" / "libedgeseg_unpool_plugin.so"
    assert identity.plugin_library_path() == expected
    monkeypatch.setenv(identity.PLUGIN_DIR_ENV, str(tmp_path))
    assert identity.plugin_library_path() == tmp_path / identity.LIBRARY_NAME


def test_python_constants_match_the_cpp_plugin() -> None:
    header = (plugin.source_dir() / "unpool_plugin.h").read_text()
    found = dict(re.findall(r'kUNPOOL_PLUGIN_(NAME|VERSION|NAMESPACE) = "([^"]*)"', header))
    assert found == {
        "NAME": identity.PLUGIN_OP_TYPE,
        "VERSION": identity.PLUGIN_VERSION,
        "NAMESPACE": identity.PLUGIN_NAMESPACE,
    }
    assert (
        "add_library(edgeseg_unpool_plugin SHARED"
        in (plugin.source_dir() / "CMakeLists.txt").read_text()
    )
    assert identity.LIBRARY_NAME == "libedgeseg_unpool_plugin.so"


def test_every_source_file_is_listed_for_the_build() -> None:
    on_disk = {
        p.name
        for p in plugin.source_dir().iterdir()
        if p.suffix in {".cu", ".cuh", ".cpp", ".h"} or p.name == "CMakeLists.txt"
    }
    assert on_disk == set(plugin.SOURCE_FILES)


def _no_tensorrt_anywhere(monkeypatch, tmp_path) -> None:
    for name in ("TENSORRT_DIR", "TRT_INCLUDE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(build, "SYSTEM_TENSORRT_INCLUDE_DIRS", (tmp_path / "nothing",))
    monkeypatch.setattr(build, "_python_tensorrt_include_dirs", lambda: [])
    monkeypatch.setenv(identity.PLUGIN_DIR_ENV, str(tmp_path / "install"))


def test_build_without_tensorrt_headers_raises_one_line(monkeypatch, tmp_path) -> None:
    _no_tensorrt_anywhere(monkeypatch, tmp_path)
    with pytest.raises(EdgesegError) as info:
        plugin.build_plugin(build_dir=tmp_path / "build")
    message = str(info.value)
    assert "\n" not in message
    assert "NvInfer.h" in message and "--tensorrt-include" in message
    assert not (tmp_path / "install").exists()


def test_build_with_a_wrong_include_folder_names_it(monkeypatch, tmp_path) -> None:
    _no_tensorrt_anywhere(monkeypatch, tmp_path)
    with pytest.raises(EdgesegError, match=r"no NvInfer\.h in") as info:
        plugin.build_plugin(tensorrt_include=tmp_path)
    assert "\n" not in str(info.value)


def _fake_headers(folder: Path, version_lines: str) -> Path:
    # Not TensorRT's headers: two empty files and the version defines, enough for discovery.
    folder.mkdir(parents=True)
    (folder / "NvInfer.h").write_text("// stand-in\n")
    (folder / "NvInferVersion.h").write_text(version_lines)
    return folder


def test_header_version_is_read_in_both_styles(tmp_path) -> None:
    old = _fake_headers(
        tmp_path / "old",
        "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n",
    )
    new = _fake_headers(
        tmp_path / "new",
        "#define TRT_MAJOR_ENTERPRISE 11\n#define TRT_MINOR_ENTERPRISE 1\n"
        "#define TRT_PATCH_ENTERPRISE 0\n"
        "#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE\n",
    )
    assert build.tensorrt_header_version(old) == (10, 3, 0)
    assert build.tensorrt_header_version(new) == (11, 1, 0)
    assert build.find_tensorrt_include(new) == new


def test_tensorrt_8_headers_are_refused(monkeypatch, tmp_path) -> None:
    headers = _fake_headers(
        tmp_path / "trt8",
        "#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 6\n#define NV_TENSORRT_PATCH 2\n",
    )
    monkeypatch.setenv("TENSORRT_DIR", str(headers.parent / "missing"))
    with pytest.raises(EdgesegError, match=r"TensorRT 8\.6\.2 headers .* needs TensorRT 10\.0"):
        plugin.build_plugin(tensorrt_include=headers)


def test_environment_variable_locates_the_headers(monkeypatch, tmp_path) -> None:
    _no_tensorrt_anywhere(monkeypatch, tmp_path)
    headers = _fake_headers(
        tmp_path / "trt" / "include",
        "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n",
    )
    monkeypatch.setenv("TENSORRT_DIR", str(headers.parent))
    assert build.find_tensorrt_include() == headers


@pytest.mark.parametrize(
    ("given", "expected"), [("87", "87"), ("86,89", "86;89"), ("sm_90", "90"), ("native", "native")]
)
def test_cuda_arch_lists_are_normalized(given: str, expected: str) -> None:
    assert build.normalize_cuda_arch(given) == expected


@pytest.mark.parametrize("given", ["8.7", "ampere", "", "87;xx"])
def test_bad_cuda_arch_is_rejected(given: str) -> None:
    with pytest.raises(EdgesegError, match="invalid CUDA architecture"):
        build.normalize_cuda_arch(given)


def test_cmake_failure_reason_is_one_line() -> None:
    log = (
        "-- The CXX compiler identification is GNU 12.2.0\n"
        "CMake Error at CMakeLists.txt:80 (message):\n"
        "  edgeseg plugin: NvInfer.h (TensorRT headers) not found.  Pass\n"
        "  -DTENSORRT_INCLUDE_DIR=<folder>\n"
        "\n"
        "-- Configuring incomplete, errors occurred!\n"
    )
    assert build._cmake_failure_reason(log) == (
        "edgeseg plugin: NvInfer.h (TensorRT headers) not found.  Pass "
        "-DTENSORRT_INCLUDE_DIR=<folder>"
    )


# --- CMake's own errors (cmake and nvcc, no TensorRT) ---------------------------------------


@pytest.mark.slow
def test_cmake_stops_naming_the_missing_tensorrt_headers(tmp_path) -> None:
    _require_cmake_and_nvcc()
    source = build.copy_sources(tmp_path / "src")
    result = subprocess.run(
        ["cmake", "-S", str(source), "-B", str(tmp_path / "build"), "-DTENSORRT_INCLUDE_DIR=/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    reason = build._cmake_failure_reason(result.stdout + result.stderr)
    assert reason.startswith("edgeseg plugin: NvInfer.h not found in TENSORRT_INCLUDE_DIR=/")


@pytest.mark.slow
def test_cmake_stops_naming_a_missing_cuda_compiler(tmp_path) -> None:
    if shutil.which("cmake") is None:
        missing("cmake not found")
    source = build.copy_sources(tmp_path / "src")
    result = subprocess.run(
        ["cmake", "-S", str(source), "-B", str(tmp_path / "build")],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDACXX": str(tmp_path / "no-nvcc")},
        check=False,
    )
    assert result.returncode != 0
    assert "no CUDA compiler (nvcc) found" in build._cmake_failure_reason(
        result.stdout + result.stderr
    )


@pytest.mark.slow
def test_mismatched_tensorrt_library_fails_the_build_in_one_line(monkeypatch, tmp_path) -> None:
    _require_cmake_and_nvcc()
    monkeypatch.setenv(identity.PLUGIN_DIR_ENV, str(tmp_path / "install"))
    headers = _fake_headers(
        tmp_path / "trt10",
        "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n",
    )
    libs = tmp_path / "lib"
    libs.mkdir()
    (libs / "libnvinfer.so.11").write_text("")
    with pytest.raises(EdgesegError) as info:
        plugin.build_plugin(
            tensorrt_include=headers, tensorrt_lib=libs, cuda_arch="87", build_dir=tmp_path / "b"
        )
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("plugin configuration failed: edgeseg plugin: TensorRT headers")
    assert "major version(s) 11" in message and "full log:" in message
    assert not (tmp_path / "install").exists()
