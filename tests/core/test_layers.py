"""The layering DESIGN.md promises, as a checked fact: every import of every package module
(function-level ones included) against the allowed arrows.

core (``edgeseg/`` minus ``apps/`` and ``cli/``) imports no stage; export may import calibration;
calibration, runtime and train import no other stage; ``edgeseg/apps/`` imports anything but the
CLI; only ``edgeseg/cli/`` imports the apps. Plus the two single points the backends layer exists
for: one module imports a CUDA binding, one place calls the plugin registry's ``load_library``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Source folder -> the package name it installs as (pyproject's package-dir).
PACKAGE_DIRS = {
    "edgeseg": "edgeseg",
    "export": "edgeseg.export",
    "calibration": "edgeseg.calibration",
    "runtime": "edgeseg.runtime",
    "train": "edgeseg.train",
}
ALLOWED = {
    "core": {"core"},
    "export": {"core", "export", "calibration"},
    "calibration": {"core", "calibration"},
    "runtime": {"core", "runtime"},
    "train": {"core", "train"},
    "apps": {"core", "export", "calibration", "runtime", "train", "apps"},
    "cli": {"core", "export", "calibration", "runtime", "train", "apps", "cli"},
}
CUDA_BINDINGS = ("cuda", "pycuda")


@dataclass(frozen=True)
class Import:
    source: str  # file, relative to the repository
    line: int
    module: str  # the imported module's installed name


def module_name(path: Path, root: Path = ROOT) -> str:
    relative = path.relative_to(root)
    package = PACKAGE_DIRS[relative.parts[0]]
    parts = list(relative.with_suffix("").parts[1:])
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def package_files(root: Path = ROOT) -> list[Path]:
    files = []
    for folder in PACKAGE_DIRS:
        files.extend(sorted((root / folder).rglob("*.py")))
    return [f for f in files if "__pycache__" not in f.parts]


def layer_of(module: str) -> str | None:
    """The layer of an edgeseg module name; None for anything outside edgeseg."""
    if module != "edgeseg" and not module.startswith("edgeseg."):
        return None
    if module == "edgeseg.__main__":  # ``python -m edgeseg``: the CLI's entry point
        return "cli"
    for stage in ("cli", "apps", "export", "calibration", "runtime", "train"):
        if module == f"edgeseg.{stage}" or module.startswith(f"edgeseg.{stage}."):
            return stage
    return "core"


def imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    """Every import statement of a file, at any depth, resolved to absolute module names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path, root)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # "from edgeseg import export" imports the subpackage, not edgeseg itself.
            modules = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        relative = str(path.relative_to(root))
        found.extend(Import(relative, node.lineno, m) for m in modules)
    return found


def crossings(root: Path = ROOT) -> list[str]:
    """One line per import crossing the layers: ``file:line: core imports export (module)``."""
    files = package_files(root)
    known = {module_name(f, root) for f in files}
    problems: dict[str, None] = {}
    for path in files:
        own = layer_of(module_name(path, root))
        for item in imports_of(path, root):
            target = item.module
            if target not in known and target.rsplit(".", 1)[0] in known:
                target = target.rsplit(".", 1)[0]  # "from pkg import name": name is no module
            layer = layer_of(target)
            if layer is not None and layer not in ALLOWED[own]:
                problems[f"{item.source}:{item.line}: {own} imports {layer} ({target})"] = None
    return list(problems)


def test_every_import_follows_the_layers() -> None:
    problems = crossings()
    assert not problems, "imports crossing the layers:\n" + "\n".join(problems)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in PACKAGE_DIRS:
        (root / folder).mkdir(exist_ok=True)
    return root


def test_the_check_catches_what_the_old_core_did(tmp_path: Path) -> None:
    # Function-level and relative imports, a stage importing another, a stage importing apps.
    root = write_tree(
        tmp_path,
        {
            "edgeseg/__init__.py": "",
            "edgeseg/bench.py": "def f():\n    from edgeseg.export.engine import build\n",
            "edgeseg/apps/__init__.py": "",
            "export/__init__.py": "",
            "export/engine.py": "import edgeseg.card\n",
            "calibration/__init__.py": "",
            "calibration/readers.py": "from edgeseg.runtime import sources\n",
            "runtime/__init__.py": "",
            "runtime/sources.py": "class A:\n    def m(self):\n        from ..apps import x\n",
        },
    )
    assert sorted(crossings(root)) == [
        "calibration/readers.py:1: calibration imports runtime (edgeseg.runtime)",
        "calibration/readers.py:1: calibration imports runtime (edgeseg.runtime.sources)",
        "edgeseg/bench.py:2: core imports export (edgeseg.export.engine)",
        "runtime/sources.py:3: runtime imports apps (edgeseg.apps)",
    ]


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("edgeseg.card", "core"),
        ("edgeseg.backends.tensorrt", "core"),
        ("edgeseg.export.plugin.build", "export"),
        ("edgeseg.calibration", "calibration"),
        ("edgeseg.apps.demo", "apps"),
        ("edgeseg.cli.main", "cli"),
        ("numpy", None),
    ],
)
def test_layer_names(module: str, layer: str | None) -> None:
    assert layer_of(module) == layer


def test_files_map_to_their_installed_names() -> None:
    assert module_name(ROOT / "runtime" / "segmenter.py") == "edgeseg.runtime.segmenter"
    assert module_name(ROOT / "export" / "plugin" / "__init__.py") == "edgeseg.export.plugin"


def test_one_module_imports_cuda_bindings() -> None:
    importers = {
        item.source
        for path in package_files()
        for item in imports_of(path)
        if item.module.split(".")[0] in CUDA_BINDINGS
    }
    assert importers == {"edgeseg/backends/cuda.py"}


def test_one_place_loads_the_plugin_library() -> None:
    calls = []
    for path in package_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load_library"
            ):
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert len(calls) == 1 and calls[0].startswith("edgeseg/backends/tensorrt.py:"), calls


def test_no_package_function_is_over_100_lines() -> None:
    long = []
    for path in package_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 100:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert not long, "split these functions:\n" + "\n".join(long)
