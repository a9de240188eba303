"""Running edgeseg in the Jetson rehearsal venv (``.ci/jetson-rehearsal``) and in venvs made
from it with one thing changed: numpy 2 in front of the system OpenCV, or a pip OpenCV in front
of it. Each is a real ``--system-site-packages`` venv on the system Python whose ``sys.path`` is
built by ``.pth`` files from packages already on this machine, so no test needs the network."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "build" / "jetson-rehearsal" / "record.json"


def run_python(
    python: Path, code: str, *, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
        cwd=ROOT / "build",
    )


def run_edgeseg(
    python: Path,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "edgeseg", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(env),
        cwd=cwd,
    )


def clean_env(extra: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without what would point the other Python at our venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra or {})
    return env


def python_json(python: Path, code: str) -> dict | list:
    """Run ``code`` (which prints one JSON object last) in ``python``; its object."""
    result = run_python(python, code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def site_packages(python: Path) -> Path:
    out = python_json(python, "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))")
    return Path(out["purelib"])


def derived_venv(folder: Path, rehearsal: Path, first: list[Path]) -> Path:
    """A ``--system-site-packages`` venv on the rehearsal's base Python whose path is: its own
    site-packages, then ``first`` (folders), then the rehearsal venv's site-packages (edgeseg
    and the recipe's packages), then the system's (cv2, numpy 1.x)."""
    base = python_json(
        rehearsal, "import json, sys; print(json.dumps({'b': sys._base_executable}))"
    )
    subprocess.run(
        [base["b"], "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
        check=True,
        timeout=120,
    )
    python = folder / "bin" / "python"
    lines = [str(p) for p in first]
    lines.append(f"import site; site.addsitedir({str(site_packages(rehearsal))!r})")
    (site_packages(python) / "00-rehearsal.pth").write_text("\n".join(lines) + "\n")
    return python


def only(folder: Path, *paths: Path) -> Path:
    """A folder holding links to ``paths`` (packages and their ``.libs``), nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path.exists():
            (folder / path.name).symlink_to(path)
    return folder


def this_python_package(name: str) -> Path:
    """The folder of package ``name`` as the test's own Python (the dev venv) has it."""
    module = __import__(name)
    return Path(module.__file__).parent


def record() -> dict:
    return json.loads(RECORD.read_text())
