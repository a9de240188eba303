"""``edgeseg doctor``: what this machine can run, each line with the exact fix.

The one command to run on a new Jetson or desktop before anything else, in the spirit of
``flutter doctor`` / ``brew doctor``: every check has a status (``ok``, ``warn``, ``fail``,
``skip``), one line of detail and, unless ok, the command or step that fixes it. Checks, in order:
Python and edgeseg; the extras installed (each of their packages imports, at the version
required); JetPack / L4T; GPU, driver and CUDA; torch; ONNX Runtime and its providers; TensorRT
and its API generation; the plugin library (built? for this TensorRT? loads? creator
registered?); the on-device self-test (:mod:`edgeseg.apps.doctor_selftest`); cameras; OpenCV's
video I/O; a display.

``fail`` is kept for what the installed extras need and for a plugin that is built but broken:
a missing optional piece (no GPU, no TensorRT, no camera) is ``warn`` or ``skip`` with its fix,
so a laptop without a GPU passes. :func:`run_doctor` returns a :class:`DoctorReport`; its
:meth:`~DoctorReport.exit_code` is 0 when nothing failed.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeseg import __version__
from edgeseg.installs import MODULE_FIXES, system_opencv

STATUSES = ("ok", "warn", "fail", "skip")
#: Import names of distributions whose names differ.
IMPORT_NAMES = {
    "opencv-python-headless": "cv2",
    "pyyaml": "yaml",
    "onnxruntime-gpu": "onnxruntime",
    "cuda-python": "cuda",
}
#: Extras doctor does not report on (the test and lint tools).
QUIET_EXTRAS = ("dev", "all")


@dataclass
class Check:
    """One line of the report: ``fix`` is empty when ``status`` is ok."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what later checks build on

    def add(self, name: str, status: str, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, "" if status == "ok" else fix)
        self.checks.append(check)
        return check

    def exit_code(self) -> int:
        return 1 if any(c.status == "fail" for c in self.checks) else 0

    def to_json(self) -> dict[str, Any]:
        counts = {s: sum(c.status == s for c in self.checks) for s in STATUSES}
        return {
            "checks": [asdict(c) for c in self.checks],
            "summary": counts,
            "edgeseg": __version__,
            "exit_code": self.exit_code(),
        }


def format_report(report: DoctorReport) -> str:
    """One line per check (``[ok]``, ``[!!]`` warn, ``[XX]`` fail, ``[--]`` skip), fixes below."""
    marks = {"ok": "[ok]", "warn": "[!!]", "fail": "[XX]", "skip": "[--]"}
    width = max((len(c.name) for c in report.checks), default=0)
    lines = []
    for check in report.checks:
        lines.append(f"{marks[check.status]} {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"     {'':<{width}}  fix: {check.fix}")
    counts = report.to_json()["summary"]
    lines.append(
        f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed, "
        f"{counts['skip']} skipped"
    )
    return "\n".join(lines)


# --- small helpers ---------------------------------------------------------------------------


def _run(command: list[str], timeout: float = 10) -> str | None:
    """stdout of a command, or None when it is absent, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def extras_requirements() -> dict[str, list[tuple[str, str]]]:
    """{extra: [(distribution, minimum version or "")]} from edgeseg's installed metadata."""
    found: dict[str, list[tuple[str, str]]] = {}
    try:
        requires = metadata.requires("edgeseg") or []
    except metadata.PackageNotFoundError:
        return found
    for line in requires:
        match = re.match(r'^\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([\d.]+))?.*extra\s*==\s*"(\w+)"', line)
        if match and not match.group(1).startswith("edgeseg"):
            found.setdefault(match.group(3), []).append((match.group(1), match.group(2) or ""))
    return found


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# --- the checks --------------------------------------------------------------------------------


def check_python(report: DoctorReport) -> None:
    version = platform.python_version()
    ok = sys.version_info >= (3, 10)
    report.add(
        "python",
        "ok" if ok else "fail",
        f"Python {version} ({sys.executable}), edgeseg {__version__}",
        "edgeseg needs Python 3.10 or later: python3 -m venv with a newer Python",
    )


def check_extras(report: DoctorReport) -> None:
    """An extra whose packages are all installed must import at the versions it asks for."""
    for extra, requirements in sorted(extras_requirements().items()):
        if extra in QUIET_EXTRAS:
            continue
        installed = {name: _installed(name) for name, _ in requirements}
        if not all(installed.values()):
            missing = ", ".join(n for n, v in installed.items() if v is None)
            report.add(
                f"extra [{extra}]", "skip", f"not installed (missing {missing})", _extra_fix(extra)
            )
            continue
        problems = []
        for name, minimum in requirements:
            if minimum and _version_tuple(installed[name]) < _version_tuple(minimum):
                problems.append(f"{name} {installed[name]} < {minimum}")
                continue
            try:
                importlib.import_module(IMPORT_NAMES.get(name, name.replace("-", "_")))
            except Exception as exc:  # any import failure of an installed package is the news
                problems.append(f"{name} does not import ({type(exc).__name__}: {exc})")
        report.add(
            f"extra [{extra}]",
            "fail" if problems else "ok",
            "; ".join(problems) or ", ".join(f"{n} {v}" for n, v in installed.items()),
            f"pip install --upgrade --force-reinstall 'edgeseg[{extra}]'",
        )


def _extra_fix(extra: str) -> str:
    """What to do about an extra that is not installed; where a system OpenCV is (a Jetson), not
    what would hide it."""
    system = system_opencv()
    if extra == "opencv" and system is not None:
        return f"none needed: the system OpenCV ({system}) is used; a pip one would hide it"
    if extra in ("export", "train") and system is not None:
        return MODULE_FIXES["torch"]
    return f"pip install 'edgeseg[{extra}]' if you need it"


def check_jetson(report: DoctorReport, release_file: Path = Path("/etc/nv_tegra_release")) -> None:
    if not release_file.is_file():
        report.add(
            "jetson",
            "skip",
            "not a Jetson (no /etc/nv_tegra_release)",
            "nothing to do on a desktop; a Jetson needs JetPack 6.1 or later",
        )
        report.facts["jetson"] = False
        return
    report.facts["jetson"] = True
    text = release_file.read_text(errors="replace").splitlines()[0]
    match = re.search(r"R(\d+).*REVISION:\s*([\d.]+)", text)
    l4t = f"L4T {match.group(1)}.{match.group(2)}" if match else text.strip("# ")
    jetpack = _run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
    detail = f"{l4t}, JetPack {jetpack}" if jetpack else f"{l4t} (JetPack version unknown)"
    old = bool(match) and int(match.group(1)) < 36
    report.add(
        "jetson",
        "warn" if old else "ok",
        detail,
        "edgeseg's plugin needs TensorRT 10 (JetPack 6.1 or later): flash a newer JetPack",
    )


def check_gpu(report: DoctorReport) -> None:
    """The GPU through the first CUDA binding that works; each one that failed is named with its
    CUDA error, the driver's CUDA version beside it, and the fix (``cuda-python<13`` on a 12.x
    driver)."""
    from edgeseg.backends.cuda import driver_cuda_version, probe_cuda
    from edgeseg.backends.cuda_errors import first_fix, unavailable_message

    driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    driver_text = f", driver {driver.strip().splitlines()[0]}" if driver else ""
    attempts, cuda = probe_cuda()
    if cuda is not None:
        try:
            info = cuda.info()
        except Exception as exc:  # a binding that finds the GPU but cannot describe it
            report.facts["gpu"] = None
            report.add(
                "gpu",
                "warn",
                f"{cuda.binding} finds a GPU but cannot describe it: {type(exc).__name__}: {exc}",
                "please report it with this output (edgeseg doctor --json)",
            )
            return
    if cuda is None:
        report.facts["gpu"] = None
        driver_cuda = driver_cuda_version()
        on_gpu_machine = bool(driver) or bool(driver_cuda) or bool(report.facts.get("jetson"))
        if not on_gpu_machine:
            report.add(
                "gpu",
                "skip",
                "no NVIDIA GPU (no driver, not a Jetson)",
                "no NVIDIA GPU here: ONNX Runtime runs on the CPU; TensorRT needs an NVIDIA GPU",
            )
            return
        report.add(
            "gpu",
            "warn",
            f"{unavailable_message(attempts, driver_cuda)}{driver_text}",
            first_fix(attempts, driver_cuda),
        )
        return
    report.facts["gpu"] = info
    report.add(
        "gpu",
        "ok",
        f"{info.name} (compute {info.compute_capability}), CUDA runtime {info.cuda_runtime}"
        f"{driver_text}, through {cuda.binding}",
    )


# --- the whole run ---------------------------------------------------------------------------


def run_doctor(self_test: bool = True) -> DoctorReport:
    """Every check, in order (see the module doc); ``self_test=False`` skips the engine builds."""
    from edgeseg.apps import doctor_engines, doctor_jetson, doctor_media, doctor_selftest

    report = DoctorReport()
    steps: list[Callable[[DoctorReport], None]] = [
        check_python,
        check_extras,
        check_jetson,
        doctor_jetson.check_power,
        check_gpu,
        doctor_engines.check_torch,
        doctor_engines.check_onnxruntime,
        doctor_engines.check_tensorrt,
        doctor_engines.check_plugin,
    ]
    if self_test:
        steps.append(doctor_selftest.run_selftest)
    steps += [
        doctor_media.check_opencv,
        doctor_jetson.check_gstreamer,
        doctor_jetson.check_argus,
        doctor_media.check_cameras,
        doctor_media.check_display,
        doctor_media.check_media_paths,
    ]
    for step in steps:
        try:
            step(report)
        except Exception as exc:  # a check that crashes is itself a finding, not the end
            name = step.__name__.removeprefix("check_").replace("_", " ")
            report.add(
                name,
                "fail",
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "please report it with this output (edgeseg doctor --json)",
            )
    return report
