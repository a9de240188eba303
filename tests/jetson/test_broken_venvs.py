"""The two ways a pip install breaks a Jetson's system OpenCV, each made for real from the
rehearsal venv: numpy 2 in front of an OpenCV built against numpy 1.x (what `pip install onnx`
without the recipe's constraints did), and a pip OpenCV in front of the system one (what
`pip install 'edgeseg[export]'` did). doctor names the fix for each; `edgeseg run` is one line.

The packages put in front are the test's own (the development venv's numpy 2 and pip OpenCV),
linked through ``.pth`` files (``rehearsal_helpers.derived_venv``): no network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rehearsal import rehearsal_python
from rehearsal_helpers import derived_venv, only, run_edgeseg

pytestmark = pytest.mark.slow


def dev_package(name: str) -> list[Path]:
    """The development venv's copy of ``name`` with the folders of shared libraries beside it."""
    module = __import__(name)
    folder = Path(module.__file__).parent
    libs = sorted(folder.parent.glob(f"{name}.libs")) + sorted(
        folder.parent.glob("opencv_python*.libs") if name == "cv2" else []
    )
    return [folder, *libs]


@pytest.fixture(scope="module")
def numpy2_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rehearsal = rehearsal_python()
    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip(f"the test's own numpy is {np.__version__}, not 2.x: nothing to put in front")
    root = tmp_path_factory.mktemp("numpy2")
    front = only(root / "front", *dev_package("numpy"))
    return derived_venv(root / "venv", rehearsal, [front])


@pytest.fixture(scope="module")
def pip_opencv_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rehearsal = rehearsal_python()
    import cv2

    if "GStreamer:                   NO" not in cv2.getBuildInformation():
        pytest.skip("the test's own OpenCV has GStreamer: it cannot stand for a pip OpenCV")
    root = tmp_path_factory.mktemp("pipcv2")
    # As pip does it: the wheel's cv2 and its numpy (2.x) in the venv, its dist-info so that
    # importlib.metadata finds the distribution doctor names.
    front = only(root / "front", *dev_package("cv2"), *dev_package("numpy"))
    site = Path(cv2.__file__).parent.parent
    for info in site.glob("opencv_python*.dist-info"):
        (front / info.name).symlink_to(info)
    return derived_venv(root / "venv", rehearsal, [front])


def doctor_checks(python: Path, cwd: Path) -> tuple[int, dict[str, dict]]:
    result = run_edgeseg(python, "doctor", "--json", "--no-self-test", cwd=cwd)
    report = json.loads(result.stdout)
    return result.returncode, {c["name"]: c for c in report["checks"]}


def test_numpy2_breaking_the_system_opencv_is_named_with_its_fix(
    numpy2_venv: Path, tmp_path: Path
) -> None:
    """Before: `the check itself failed ... please report it`. Now a fail line whose fix is
    pip install 'numpy<2', and no check crashes."""
    code, checks = doctor_checks(numpy2_venv, tmp_path)
    assert not [c for c in checks.values() if "itself failed" in c["detail"]], checks
    opencv = checks["opencv"]
    assert opencv["status"] == "fail" and "numpy 2." in opencv["detail"], opencv
    assert "pip install 'numpy<2'" in opencv["fix"]
    assert code == 1


def test_numpy2_under_csi_is_one_line(numpy2_venv: Path, tmp_path: Path) -> None:
    """numpy 2 prints its own banner (with the import stack) when an extension built against
    1.x asks for its C API; after it, edgeseg's one line with the fix, exit 2, and no exception
    of edgeseg's escapes (the banner is numpy's, the ImportError is caught)."""
    run = run_edgeseg(numpy2_venv, "run", "--source", "csi://0", "--max-frames", "1", cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "compiled using NumPy 1.x cannot be run in" in run.stderr  # numpy's banner
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("edgeseg: error: numpy 2") and "pip install 'numpy<2'" in line


def test_a_pip_opencv_hiding_the_system_one_is_named(pip_opencv_venv: Path, tmp_path: Path) -> None:
    code, checks = doctor_checks(pip_opencv_venv, tmp_path)
    assert not [c for c in checks.values() if "itself failed" in c["detail"]], checks
    shadow = checks["opencv shadowing"]
    assert shadow["status"] == "warn" and code == 0  # "fail" on a Jetson (facts["jetson"])
    assert "opencv-python-headless" in shadow["detail"] and "GStreamer YES" in shadow["detail"]
    assert shadow["fix"].startswith("pip uninstall -y opencv-python-headless")


def test_csi_under_a_pip_opencv_is_one_line(pip_opencv_venv: Path, tmp_path: Path) -> None:
    run = run_edgeseg(
        pip_opencv_venv, "run", "--source", "csi://0", "--max-frames", "1", cwd=tmp_path
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    line = run.stderr.strip().splitlines()[-1]
    assert "needs an OpenCV built with GStreamer" in line and "nvarguscamerasrc" in line
