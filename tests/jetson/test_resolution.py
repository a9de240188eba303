"""What pip resolves on the Jetsons we do not have: the built wheel with each JetPack recipe's
pip line and constraints, for the device's platform and Python (``pip install --dry-run
--report``). JetPack 6 (Ubuntu 22.04, glibc 2.35, Python 3.10) must get numpy 1.x and
cuda-python 12.x; JetPack 7 (Ubuntu 24.04, glibc 2.39, Python 3.12) numpy 1.x and cuda-python
13.x; neither torch nor any pip OpenCV. Reaches PyPI: skipped, naming why, only when it cannot.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
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
    if result.returncode != 0 and UNREACHABLE.search(result.stdout + result.stderr):
        pytest.skip(f"PyPI cannot be reached: {UNREACHABLE.search(result.stderr).group(0)}")
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = pip("wheel", "--no-deps", "--quiet", str(ROOT), "-w", str(out))
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("edgeseg-*.whl")
    return found


def recipe_pip_line(script: str) -> list[str]:
    """The recipe's one ``pip install`` line, as words."""
    (line,) = [x for x in (ROOT / script).read_text().splitlines() if x.startswith("pip install")]
    return shlex.split(line)


def resolve(words: list[str], wheel: Path, glibc: int, python: str, folder: Path) -> dict:
    """Dry-run ``words`` (``pip install -c FILE '.[extras]'``) with ``.`` replaced by the wheel,
    for aarch64 with glibc ``2.glibc`` and ``python``; {distribution: version}."""
    args = []
    for word in words[2:]:
        if word.startswith(".["):
            word = f"edgeseg{word[1:]} @ {wheel.as_uri()}"
        elif word.startswith("recipes/"):
            word = str(ROOT / word)
        args.append(word)
    platforms = [f"--platform=manylinux_2_{minor}_aarch64" for minor in range(17, glibc + 1)]
    report = folder / "report.json"
    result = pip(
        "install", "--dry-run", "--quiet", "--report", str(report), "--target",
        str(folder / "target"), *platforms, "--platform=manylinux2014_aarch64",
        f"--python-version={python}", "--only-binary=:all:", *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_jetpack_recipe_resolves_for_the_device(target: str, wheel: Path, tmp_path: Path) -> None:
    script, glibc, python, cuda_major = TARGETS[target]
    words = recipe_pip_line(script)
    resolved = resolve(words, wheel, glibc, python, tmp_path)
    print(f"{target} (aarch64, glibc 2.{glibc}, Python {python}): {resolved}")
    assert resolved["edgeseg"] and "onnx" in resolved and "onnxruntime" in resolved
    assert int(resolved["numpy"].split(".")[0]) == 1, resolved
    assert int(resolved["cuda-python"].split(".")[0]) == cuda_major, resolved
    assert "torch" not in resolved, resolved
    assert not [name for name in resolved if name.startswith("opencv")], resolved


def test_without_the_constraints_jetpack6_would_get_the_wrong_cuda_python_and_numpy(
    wheel: Path, tmp_path: Path
) -> None:
    """The recipe's constraints are what keeps JetPack 6 right: the same line without them
    resolves cuda-python 13.x (needs a CUDA 13 driver) and numpy 2 (breaks JetPack's OpenCV)."""
    words = [w for w in recipe_pip_line(TARGETS["jetpack6"][0]) if not w.endswith(".txt")]
    words.remove("-c")
    resolved = resolve(words, wheel, 35, "3.10", tmp_path)
    assert int(resolved["cuda-python"].split(".")[0]) >= 13, resolved
    assert int(resolved["numpy"].split(".")[0]) >= 2, resolved
