"""Contract tests: every TensorRT call edgeseg makes, against the real Python bindings of
TensorRT 10.3 (JetPack 6.1/6.2), 10.16 (JetPack 7.2) and the newest 11.x.

``.ci/tensorrt-bindings`` installs each version's bindings into ``build/tensorrt-bindings/<v>/``
over stub libraries; one subprocess per version (a process imports one ``tensorrt``; all of them
start together) runs ``trt_api_probe.py``, which drives edgeseg's own functions (plugin loading,
the builder's precision/profile/timing-cache/parser steps, the engine runner's load and shape
binding) with the objects TensorRT would hand them stood in for by signature-checked proxies
(``trt_contract.py``). Each test id names the TensorRT version and the check.

Proves: each attribute exists in that version, takes the arguments edgeseg passes, and returns
the type edgeseg relies on; version-specific flags are the ones each version has. Cannot prove:
anything TensorRT does (parsing, building, running); ``edgeseg doctor`` and the GPU tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from trt_api_probe import CHECKS

pytestmark = pytest.mark.trt_api

ROOT = Path(__file__).resolve().parents[2]
BINDINGS = ROOT / "build" / "tensorrt-bindings"
PYTHON_TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def installed_versions() -> list[str]:
    """Versions .ci/tensorrt-bindings completed for this Python, oldest first."""
    found = []
    for stamp in BINDINGS.glob("*/complete"):
        fields = stamp.read_text().split()
        if len(fields) >= 3 and fields[2] == PYTHON_TAG:
            found.append(stamp.parent.name)
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


class Probes:
    """One probe subprocess per TensorRT version, all started together: each is a process of
    its own (one ``tensorrt`` per process) that mostly exports and calibrates tiny models, so
    on a machine with several cores they overlap instead of queueing. A version's report is
    read once, however many tests ask (a probe that fails or times out fails every check of
    its version once, not once each)."""

    def __init__(self, versions: list[str], folder: Path) -> None:
        self.started = {version: _start_probe(version, folder) for version in versions}
        self.outcomes: dict[str, dict[str, str] | str] = {}

    def results(self, version: str) -> dict[str, str]:
        """{check: "ok" | why not} for ``version``."""
        if version not in self.outcomes:
            try:
                self.outcomes[version] = _read_probe(version, *self.started[version])
            except (AssertionError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
                self.outcomes[version] = f"the TensorRT {version} probe failed: {exc}"
        outcome = self.outcomes[version]
        if isinstance(outcome, str):
            pytest.fail(outcome)
        return outcome

    def stop(self) -> None:
        """Ends the probes no test read (a run that deselected their checks)."""
        for process, _out in self.started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def probes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Probes]:
    params = [getattr(item, "callspec", None) for item in request.session.items]
    selected = {p.params["version"] for p in params if p and p.params.get("version")}
    started = Probes(sorted(selected), tmp_path_factory.mktemp("trt-probes"))
    yield started
    started.stop()


def _start_probe(version: str, folder: Path) -> tuple[subprocess.Popen, Path]:
    bindings = BINDINGS / version
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(bindings / "site"), str(Path(__file__).parent), str(Path(__file__).parents[1])]
        ),
        "LD_LIBRARY_PATH": str(bindings / "stubs"),
    }
    out = folder / f"{version}.json"
    with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("trt_api_probe.py"))],
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    return process, out


def _read_probe(version: str, process: subprocess.Popen, out: Path) -> dict[str, str]:
    try:
        # torch exports and an INT8 calibration, beside the other versions' probes, on a
        # busy CI machine
        returncode = process.wait(timeout=1800)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    assert returncode == 0, out.with_suffix(".err").read_text()[-3000:]
    report = json.loads(out.read_text())
    assert report["version"] == version
    return report["results"]


def _params() -> list:
    versions = installed_versions()
    if not versions:
        reason = f"no TensorRT bindings in {BINDINGS} for {PYTHON_TAG}: run .ci/tensorrt-bindings"
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=reason), id="no-bindings")]
    return [pytest.param(v, check, id=f"trt{v}-{check}") for v in versions for check in CHECKS]


@pytest.mark.slow
@pytest.mark.parametrize(("version", "check"), _params())
def test_tensorrt_call_contract(version: str, check: str, probes: Probes) -> None:
    outcome = probes.results(version)[check]
    assert outcome == "ok", f"TensorRT {version}, {check}:\n{outcome}"


def test_ci_installs_the_supported_generations() -> None:
    """.ci/tensorrt-bindings covers 10.3 (JetPack 6), a 10.x >= 10.16 and an 11.x."""
    script = (ROOT / ".ci" / "tensorrt-bindings").read_text()
    assert os.access(ROOT / ".ci" / "tensorrt-bindings", os.X_OK)
    assert '"10.3.0:cu12"' in script and "11." in script
    assert "tensorrt-bindings" in (ROOT / ".ci" / "run").read_text()
