"""``edgeseg plugin build`` refuses, before compiling, TensorRT headers of another major.minor
than the TensorRT this Python imports (``load_plugin`` would refuse the library it made).

Real headers (``EDGESEG_TRT_HEADERS``: ``../shared/vendor/tensorrt-headers``) and real Python
bindings over stub libraries (``.ci/tensorrt-bindings``), in a subprocess that runs the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugin_compile import HEADERS_ENV, header_folders
from test_trt_api import BINDINGS, installed_versions

from edgeseg.export.plugin.build import tensorrt_header_version

#: Resolved at collection, before each test's own working directory (a relative
#: EDGESEG_TRT_HEADERS, as .ci/run sets it, names a folder beside the clone).
HEADER_FOLDERS = header_folders(os.environ.get(HEADERS_ENV))


def _headers(major_minor: tuple[int, int]) -> Path:
    for folder in HEADER_FOLDERS:
        if tensorrt_header_version(folder)[:2] == major_minor:
            return folder
    pytest.skip(f"{HEADERS_ENV} holds no TensorRT {major_minor[0]}.{major_minor[1]} headers")


def _bindings(prefix: str) -> Path:
    found = [v for v in installed_versions() if v.startswith(prefix)]
    if not found:
        pytest.skip(f"no TensorRT {prefix}x bindings in {BINDINGS}: run .ci/tensorrt-bindings")
    return BINDINGS / found[-1]


def _run(
    bindings: Path, *args: str, code: str | None = None, tmp: Path | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TMPDIR": str(tmp or Path(os.environ.get("TMPDIR", "/tmp"))),
        "PYTHONPATH": str(bindings / "site"),
        "LD_LIBRARY_PATH": str(bindings / "stubs"),
        # No compiler may be reached: a refusal must come before any of them is looked for.
        "PATH": str(Path(sys.executable).parent),
        "EDGESEG_PLUGIN_DIR": os.environ.get("EDGESEG_PLUGIN_DIR", "/nonexistent/edgeseg"),
    }
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "edgeseg", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_headers_of_another_tensorrt_are_refused_before_compiling(tmp_path: Path) -> None:
    headers = _headers((10, 3))
    bindings = _bindings("11.")
    result = _run(bindings, "plugin", "build", "--tensorrt-include", str(headers), tmp=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    line = lines[0]
    version = bindings.name
    assert f"are 10.3.0 but this Python imports TensorRT {version}" in line, line
    assert "--tensorrt-include with TensorRT 11.4 headers" in line
    assert "libnvinfer-dev" in line and "github.com/NVIDIA/TensorRT at tag v11.4.x" in line
    assert not list(tmp_path.iterdir())  # no build folder: nothing configured or compiled


def test_headers_of_the_importable_tensorrt_pass_the_check() -> None:
    headers = _headers((10, 3))
    bindings = _bindings("10.3")
    code = (
        "from pathlib import Path; from edgeseg.export.plugin import build as b; "
        f"folder = Path({str(headers)!r}); "
        "b.check_headers_match(folder, b.tensorrt_header_version(folder)); "
        "print(b.importable_tensorrt_version())"
    )
    result = _run(bindings, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == bindings.name
