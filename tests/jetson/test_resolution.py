"""What pip resolves on the Jetsons we do not have: the built wheel with each JetPack recipe's
pip line and constraints, for the device's platform and Python (``pip install --dry-run
--report``). JetPack 6 (Ubuntu 22.04, glibc 2.35, Python 3.10) must get numpy 1.x and
cuda-python 12.x; JetPack 7 (Ubuntu 24.04, glibc 2.39, Python 3.12) numpy 1.x and cuda-python
13.x; neither torch nor any pip OpenCV. Reaches PyPI: skipped, naming why, only when it cannot.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.network]
#: (recipe, highest manylinux glibc of the device, Python, cuda-python major).
TARGETS = {
    "jetpack6": ("recipes/jetpack6.sh", 35, "3.10", 12),
    "jetpack7": ("recipes/jetpack7.sh", 39, "3.12", 13),
}
UNREACHABLE = re.compile(
    r"NewConnectionError|Temporary failure in name resolution|Network is unreachable|"
    r"Max retries exceeded|ProxyError|Could not fetch URL https://pypi"
)


def pip(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout
    )
    skip_if_unreachable(result)
    return result


def skip_if_unreachable(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0 and UNREACHABLE.search(result.stdout + result.stderr):
        pytest.skip(f"PyPI cannot be reached: {UNREACHABLE.search(result.stderr).group(0)}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # The test venv's setuptools (a dev dependency) builds it: the same files and metadata as
    # an isolated build, without first installing setuptools into a fresh build environment.
    built = pip("wheel", "--no-deps", "--no-build-isolation", "--quiet", str(ROOT), "-w", str(out))
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("edgeseg-*.whl")
    return found


def recipe_pip_line(script: str) -> list[str]:
    """The recipe's one ``pip install`` line, as words."""
    (line,) = [x for x in (ROOT / script).read_text().splitlines() if x.startswith("pip install")]
    return shlex.split(line)


def without_constraints(words: list[str]) -> list[str]:
    words = [w for w in words if not w.endswith(".txt")]
    words.remove("-c")
    return words


#: Each resolution: (recipe pip line's words, device glibc minor, device Python).
RESOLUTIONS = {
    **{
        target: (recipe_pip_line(s), glibc, python)
        for target, (s, glibc, python, _) in TARGETS.items()
    },
    "jetpack6 without constraints": (
        without_constraints(recipe_pip_line(TARGETS["jetpack6"][0])),
        35,
        "3.10",
    ),
}


@pytest.fixture(scope="module")
def resolved(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Callable[[], dict]]]:
    """name -> its {distribution: version}, read when a test asks. The dry runs are separate pip
    processes that spend their time reading the index: all start at once, so they overlap."""
    started = {}
    for name, (words, glibc, python) in RESOLUTIONS.items():
        folder = tmp_path_factory.mktemp("resolve")
        started[name] = (start_resolve(words, wheel, glibc, python, folder), folder)
    yield {name: functools.partial(read_resolve, *run) for name, run in started.items()}
    for process, _folder in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def start_resolve(
    words: list[str], wheel: Path, glibc: int, python: str, folder: Path
) -> subprocess.Popen[str]:
    """Dry-run ``words`` (``pip install -c FILE '.[extras]'``) with ``.`` replaced by the wheel,
    for aarch64 with glibc ``2.glibc`` and ``python``; its report goes to ``folder``."""
    args = []
    for word in words[2:]:
        if word.startswith(".["):
            word = f"edgeseg{word[1:]} @ {wheel.as_uri()}"
        elif word.startswith("recipes/"):
            word = str(ROOT / word)
        args.append(word)
    platforms = [f"--platform=manylinux_2_{minor}_aarch64" for minor in range(17, glibc + 1)]
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report",
        str(folder / "report.json"), "--target", str(folder / "target"), *platforms,
        "--platform=manylinux2014_aarch64", f"--python-version={python}", "--only-binary=:all:",
        *args,
    ]  # fmt: skip
    with open(folder / "stdout", "w") as stdout, open(folder / "stderr", "w") as stderr:
        return subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)


def read_resolve(process: subprocess.Popen[str], folder: Path, timeout: float = 900) -> dict:
    """{distribution: version} of a dry run started by :func:`start_resolve`."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    out, err = (folder / "stdout").read_text(), (folder / "stderr").read_text()
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    skip_if_unreachable(result)
    assert result.returncode == 0, result.stderr[-3000:]
    installs = json.loads((folder / "report.json").read_text())["install"]
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_jetpack_recipe_resolves_for_the_device(target: str, resolved: dict) -> None:
    _script, glibc, python, cuda_major = TARGETS[target]
    resolved = resolved[target]()
    print(f"{target} (aarch64, glibc 2.{glibc}, Python {python}): {resolved}")
    assert resolved["edgeseg"] and "onnx" in resolved and "onnxruntime" in resolved
    assert int(resolved["numpy"].split(".")[0]) == 1, resolved
    assert int(resolved["cuda-python"].split(".")[0]) == cuda_major, resolved
    assert "torch" not in resolved, resolved
    assert not [name for name in resolved if name.startswith("opencv")], resolved


def test_without_the_constraints_jetpack6_would_get_the_wrong_cuda_python_and_numpy(
    resolved: dict,
) -> None:
    """The recipe's constraints are what keeps JetPack 6 right: the same line without them
    resolves cuda-python 13.x (needs a CUDA 13 driver) and numpy 2 (breaks JetPack's OpenCV)."""
    resolved = resolved["jetpack6 without constraints"]()
    assert int(resolved["cuda-python"].split(".")[0]) >= 13, resolved
    assert int(resolved["numpy"].split(".")[0]) >= 2, resolved
