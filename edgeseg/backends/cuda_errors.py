"""Why a CUDA binding could not be used, and what fixes it: the decision, apart from the bindings.

:func:`edgeseg.backends.cuda.load_cuda` tries cuda-python, pycuda and torch in turn and records one
:class:`BindingAttempt` each; this module turns the attempts and the driver's CUDA version into the
one line a user reads. It imports no binding, so its rules are tested with recorded error codes.

The case it exists for: ``pip install cuda-python`` on JetPack 6 resolves to 13.x, whose
bindings need a CUDA 13 driver (580 or newer); L4T 36's driver is CUDA 12.6, so the first call
fails with ``cudaErrorInsufficientDriver``. The fix is ``pip install 'cuda-python<13'`` (what
``recipes/jetpack6-constraints.txt`` pins), not the command the user already ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeseg.installs import RECIPES

#: cudaError_t values a first call can return (CUDA runtime API, driver_types.h).
CUDA_ERROR_NAMES = {
    0: "cudaSuccess",
    3: "cudaErrorInitializationError",
    34: "cudaErrorStubLibrary",
    35: "cudaErrorInsufficientDriver",
    46: "cudaErrorDevicesUnavailable",
    100: "cudaErrorNoDevice",
    101: "cudaErrorInvalidDevice",
    222: "cudaErrorUnsupportedPtxVersion",
    803: "cudaErrorSystemDriverMismatch",
    804: "cudaErrorCompatNotSupportedOnDevice",
    999: "cudaErrorUnknown",
}
NO_BINDING = (
    "no CUDA binding for Python: install cuda-python (pip install cuda-python), pycuda, or "
    "torch with CUDA; TensorRT engines are built and run on the machine's GPU"
)
NO_GPU = "no CUDA GPU found: TensorRT engines are built and run on the GPU that will use them"
#: Outcomes of one attempt.
ABSENT, FAILED, NO_DEVICE, WORKS = "absent", "failed", "no device", "works"


@dataclass(frozen=True)
class BindingAttempt:
    """What trying one binding gave: ``error`` is a CUDA error name (``cudaErrorNoDevice``) or
    an exception's one line; ``built_for`` the CUDA version the binding was built for."""

    binding: str  # "cuda-python", "pycuda", "torch"
    outcome: str  # ABSENT, FAILED, NO_DEVICE or WORKS
    version: str = ""
    error: str = ""
    built_for: str = ""  # "13.0"


def error_name(code: int) -> str:
    return CUDA_ERROR_NAMES.get(int(code), f"cudaError {int(code)}")


def version_text(code: int) -> str:
    """CUDA's integer version -> text: 12060 -> "12.6"; 0 (no driver) -> ""."""
    return f"{code // 1000}.{(code % 1000) // 10}" if code > 0 else ""


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def describe(attempt: BindingAttempt, driver_cuda: str) -> str:
    """``cuda-python 13.0.1 (built for CUDA 13.0): cudaErrorInsufficientDriver``."""
    name = f"{attempt.binding} {attempt.version}".strip()
    if attempt.built_for:
        name += f" (built for CUDA {attempt.built_for})"
    if attempt.outcome == ABSENT:
        return f"{name}: {attempt.error or 'not installed'}"
    return f"{name}: {attempt.error or attempt.outcome}"


def fix_for(attempt: BindingAttempt, driver_cuda: str) -> str:
    """The fix for one failed attempt, given the driver's CUDA version ("" when no driver)."""
    driver_major, binding_major = _major(driver_cuda), _major(attempt.built_for or attempt.version)
    newer = driver_major is not None and binding_major is not None and binding_major > driver_major
    if attempt.binding == "cuda-python" and (
        attempt.error == "cudaErrorInsufficientDriver" or newer
    ):
        if driver_major is None:
            return (
                "no NVIDIA driver answers (no libcuda): install the driver, or on a Jetson "
                "flash JetPack; on a CUDA 12.x driver use pip install 'cuda-python<13'"
            )
        pin = f"cuda-python<{driver_major + 1}"
        recipe = RECIPES["jetpack6"] if driver_major == 12 else None
        where = f" (JetPack 6: {recipe.constraints} pins it)" if recipe else ""
        return f"the driver runs CUDA {driver_cuda}: pip install '{pin}'{where}"
    if attempt.error == "cudaErrorStubLibrary":
        return "a stub libcuda.so is found before the driver's: remove it from LD_LIBRARY_PATH"
    if attempt.error == "cudaErrorSystemDriverMismatch":
        return "the driver and its kernel module differ in version: reboot (or reinstall it)"
    if attempt.error == "cudaErrorCompatNotSupportedOnDevice":
        return "CUDA forward compatibility is not supported on this GPU: use the driver's CUDA"
    return f"reinstall {attempt.binding} for this machine's CUDA {driver_cuda or '(no driver)'}"


def unavailable_message(attempts: list[BindingAttempt], driver_cuda: str) -> str:
    """The one line when no binding works: NO_BINDING when none is installed, NO_GPU when each
    that is installed finds no device, else each failure with the driver's CUDA and the fix."""
    tried = [a for a in attempts if a.outcome != ABSENT]
    if not tried:
        return NO_BINDING
    if all(a.outcome == NO_DEVICE for a in tried):
        return NO_GPU
    failed = [a for a in tried if a.outcome == FAILED]
    driver = f"driver CUDA {driver_cuda}" if driver_cuda else "no CUDA driver answers"
    lines = "; ".join(describe(a, driver_cuda) for a in attempts)
    return f"no CUDA binding works ({driver}): {lines}; fix: {fix_for(failed[0], driver_cuda)}"


def first_fix(attempts: list[BindingAttempt], driver_cuda: str) -> str:
    """The fix doctor prints: the first failure's, else how to get a binding."""
    failed = [a for a in attempts if a.outcome == FAILED]
    if failed:
        return fix_for(failed[0], driver_cuda)
    if any(a.outcome == NO_DEVICE for a in attempts):
        return "no GPU answers: check nvidia-smi (desktop) or that JetPack is flashed (Jetson)"
    return "pip install 'edgeseg[engine]' with your recipe's constraints (recipes/)"
