"""One install recipe per target, as files: the docs show them verbatim, doctor's fix lines name
them, their constraints are the ones the code quotes (no network, no rehearsal needed)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from edgeseg.installs import RECIPES, missing_module_line, recipe_for_l4t

ROOT = Path(__file__).resolve().parents[2]


def bash_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown.read_text(), flags=re.S)


def recipe_lines() -> set[str]:
    return {
        line
        for path in (ROOT / "recipes").glob("*.sh")
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


def test_the_first_bash_block_of_docs_jetson_is_the_jetpack6_recipe() -> None:
    """What a person pastes from docs/jetson.md is exactly what CI runs (.ci/jetson-rehearsal)."""
    first = bash_blocks(ROOT / "docs" / "jetson.md")[0]
    assert first == (ROOT / "recipes" / "jetpack6.sh").read_text()


@pytest.mark.parametrize("page", ["jetson.md", "export.md"])
def test_every_install_line_in_the_jetson_and_export_docs_is_a_recipe_line(page: str) -> None:
    """The old prose recipes drifted (--no-deps in one, `pip install 'edgeseg[export]'`, which
    pulls a pip OpenCV and a CPU torch onto a Jetson, in the other): now a doc's pip and apt
    lines are lines of a recipe file."""
    lines = recipe_lines()
    installs = [
        line.strip()
        for block in bash_blocks(ROOT / "docs" / page)
        for line in block.splitlines()
        if re.search(r"\b(pip install|apt-get install|apt install)\b", line)
    ]
    assert installs, f"docs/{page} shows no install line"
    for line in installs:
        assert line in lines, f"docs/{page}: {line!r} is not a line of recipes/*.sh"


def constraint_lines(path: str) -> list[str]:
    text = (ROOT / path).read_text().splitlines()
    return [line.strip() for line in text if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("key", sorted(RECIPES))
def test_the_constraints_the_code_quotes_are_the_files(key: str) -> None:
    recipe = RECIPES[key]
    assert (ROOT / recipe.script).is_file()
    constraints = constraint_lines(recipe.constraints)
    assert recipe.cuda_python in constraints
    assert (
        (recipe.numpy in constraints)
        if recipe.numpy
        else not any(c.startswith("numpy") for c in constraints)
    )
    script = (ROOT / recipe.script).read_text()
    assert f"-c {recipe.constraints}" in script


@pytest.mark.parametrize("key", ["jetpack6", "jetpack7"])
def test_jetson_recipes_keep_a_system_opencv_and_no_torch(key: str) -> None:
    """A --system-site-packages venv over the system OpenCV; every pip OpenCV refused by the
    constraints; no torch and no pip OpenCV in any pip line."""
    recipe = RECIPES[key]
    script = (ROOT / recipe.script).read_text()
    assert "--system-site-packages" in script
    constraints = constraint_lines(recipe.constraints)
    for name in ("opencv-python", "opencv-python-headless", "opencv-contrib-python"):
        assert f"{name}<0" in constraints
    for line in script.splitlines():
        if line.startswith("pip install"):
            words = shlex.split(line)
            assert not any(w.startswith(("torch", "opencv")) for w in words), line
            extras = re.search(r"\[([^\]]*)\]", line)
            assert extras and set(extras.group(1).split(",")) <= {"engine", "onnx"}, line


def test_every_recipe_path_the_code_names_exists() -> None:
    """doctor's fix lines and the one-line errors name recipes/...: those files exist."""
    named = set()
    for path in (ROOT / "edgeseg").rglob("*.py"):
        named |= set(re.findall(r"recipes/[\w.-]+", path.read_text()))
    named.discard("recipes/")
    assert {"recipes/jetpack6.sh", "recipes/jetpack6-constraints.txt"} <= named
    for name in named:
        assert (ROOT / name).is_file(), name


def test_recipe_for_each_l4t_release() -> None:
    assert recipe_for_l4t(36).script == "recipes/jetpack6.sh"
    assert recipe_for_l4t(38).script == "recipes/jetpack7.sh"
    assert recipe_for_l4t(None).script == "recipes/desktop-gpu.sh"


def test_a_missing_engine_module_names_the_extra_and_a_bug_keeps_its_traceback() -> None:
    line = missing_module_line(ModuleNotFoundError("No module named 'onnx'", name="onnx"))
    assert line and "edgeseg[engine]" in line and "recipes/jetpack6.sh" in line
    assert missing_module_line(ModuleNotFoundError("x", name="edgeseg.nothing")) is None
    abi = missing_module_line(ImportError("numpy.core.multiarray failed to import"))
    assert abi and "pip install 'numpy<2'" in abi


def test_a_missing_opencv_names_the_extra_or_the_system_one() -> None:
    """OpenCV is the `opencv` extra now; where a system one is on the path (a Jetson venv), the
    line says to use that one, never to pip install a second."""
    line = missing_module_line(ModuleNotFoundError("No module named 'cv2'", name="cv2"))
    assert line and line.startswith("OpenCV (cv2) is not installed: ")
    assert "edgeseg[opencv]" in line or "--system-site-packages" in line
