"""CUDA bindings: a binding that imports but fails is named by its CUDA error beside the driver's
CUDA version, with the fix, and the next binding is tried.

The decision (:mod:`edgeseg.backends.cuda_errors`) is checked with recorded error codes: the
JetPack 6 case is cuda-python 13.x (built for CUDA 13.0) on r36's CUDA 12.6 driver, whose first
call returns cudaErrorInsufficientDriver (35). The probing itself runs for real on the bindings
installed here, without a driver: cuda-python 13.x in the development venv and 12.x in the
rehearsal venv both fail their first call, pycuda is absent, torch is a CPU build."""

from __future__ import annotations

import json

import pytest
from rehearsal import rehearsal_python
from rehearsal_helpers import python_json

from edgeseg.backends import cuda
from edgeseg.backends.cuda_errors import (
    ABSENT,
    FAILED,
    NO_BINDING,
    NO_DEVICE,
    NO_GPU,
    BindingAttempt,
    error_name,
    first_fix,
    fix_for,
    unavailable_message,
)

JETPACK6_CUDA_PYTHON_13 = BindingAttempt(
    "cuda-python", FAILED, "13.0.1", error_name(35), built_for="13.0"
)


def test_cuda_python_13_on_a_jetpack6_driver_names_the_error_the_driver_and_the_pin() -> None:
    """Before: "no CUDA GPU found" and the fix `pip install cuda-python` (what was run)."""
    attempts = [
        JETPACK6_CUDA_PYTHON_13,
        BindingAttempt("pycuda", ABSENT),
        BindingAttempt("torch", ABSENT),
    ]
    line = unavailable_message(attempts, "12.6")
    assert "cudaErrorInsufficientDriver" in line
    assert "driver CUDA 12.6" in line and "built for CUDA 13.0" in line
    assert "pip install 'cuda-python<13'" in line and "recipes/jetpack6-constraints.txt" in line
    assert "pycuda: not installed" in line and "torch: not installed" in line
    assert first_fix(attempts, "12.6") == fix_for(JETPACK6_CUDA_PYTHON_13, "12.6")


@pytest.mark.parametrize(
    ("code", "driver", "fragment"),
    [
        (35, "12.6", "pip install 'cuda-python<13'"),
        (35, "13.0", "pip install 'cuda-python<14'"),
        (35, "", "no NVIDIA driver answers"),
        (34, "12.6", "stub libcuda.so"),
        (803, "12.6", "reboot"),
        (804, "12.2", "forward compatibility"),
        (999, "12.6", "reinstall cuda-python"),
    ],
)
def test_each_recorded_error_has_its_fix(code: int, driver: str, fragment: str) -> None:
    """A binding newer than the driver is the cause whatever the code (the pin); the others
    are checked with a binding that matches the driver."""
    version = {35: "13.0.1"}.get(code, "12.6.2")
    if code == 35 and driver == "13.0":
        version = "14.0.0"
    built_for = ".".join(version.split(".")[:2])
    attempt = BindingAttempt("cuda-python", FAILED, version, error_name(code), built_for)
    assert fragment in fix_for(attempt, driver)


def test_a_binding_newer_than_the_driver_gets_the_pin_whatever_its_error() -> None:
    attempt = BindingAttempt("cuda-python", FAILED, "13.0.1", "RuntimeError: x", "13.0")
    assert "cuda-python<13" in fix_for(attempt, "12.6")


def test_the_one_lines_kept_for_nothing_installed_and_no_device() -> None:
    assert unavailable_message([BindingAttempt("cuda-python", ABSENT)], "") == NO_BINDING
    no_device = [BindingAttempt("cuda-python", NO_DEVICE, "12.6.0", "cudaErrorNoDevice")]
    assert unavailable_message(no_device, "12.6") == NO_GPU


def test_the_installed_bindings_are_each_tried_and_named_here() -> None:
    """This process (the development venv): every binding is tried in order and the outcome of
    each is recorded, cuda-python's by its real CUDA error; none works without a driver."""
    attempts, api = cuda.probe_cuda()
    assert api is None
    assert [a.binding for a in attempts] == ["cuda-python", "pycuda", "torch"]
    python = attempts[0]
    if python.outcome == ABSENT:
        pytest.skip("cuda-python is not installed in this venv (the engine extra brings it)")
    assert python.outcome == FAILED and python.error.startswith("cudaError"), python
    assert python.built_for and python.version
    with pytest.raises(cuda.CudaUnavailable) as caught:
        cuda.load_cuda()
    assert python.error in str(caught.value) and caught.value.attempts == attempts


@pytest.mark.slow
def test_the_rehearsal_venvs_cuda_python_12_is_tried_and_named() -> None:
    """The JetPack 6 recipe's cuda-python (12.x by its constraints) in the rehearsal venv."""
    found = python_json(
        rehearsal_python(),
        "import json, dataclasses; from edgeseg.backends.cuda import probe_cuda, "
        "driver_cuda_version; a, api = probe_cuda(); print(json.dumps({'a': "
        "[dataclasses.asdict(x) for x in a], 'api': api is None, "
        "'driver': driver_cuda_version()}))",
    )
    first = found["a"][0]
    assert first["binding"] == "cuda-python" and first["version"].startswith("12."), found
    assert first["built_for"].startswith("12.") and first["error"].startswith("cudaError")
    assert [a["binding"] for a in found["a"]] == ["cuda-python", "pycuda", "torch"]
    assert found["api"] and json.dumps(found)
