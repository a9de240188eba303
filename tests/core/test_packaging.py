"""One distribution, one namespace: the stage folders install as edgeseg.<stage>.

Both a regular wheel and an editable install are built with setuptools' own PEP 517/660 hooks
(no network, no new virtual environment) and resolved in an interpreter started without
site-packages, so the checkout's own editable install cannot answer for them.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from edgeseg.apps.default_model import CHECKPOINT_NAME, ONNX_NAME

ROOT = Path(__file__).resolve().parents[2]
STAGES = {
    "edgeseg.export": "export",
    "edgeseg.calibration": "calibration",
    "edgeseg.runtime": "runtime",
    "edgeseg.train": "train",
}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed() -> None:
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    dirs = setuptools_cfg["package-dir"]
    found = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            sub = ".".join(rel.parts)
            if not any(part.startswith((".", "_")) for part in rel.parts):
                found.add(f"{name}.{sub}" if sub else name)
    assert found == listed


def _build(hook: str, out: Path) -> Path:
    code = f"import sys, setuptools.build_meta as b; print(b.{hook}(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out / result.stdout.strip().splitlines()[-1]


def _resolve(site: Path, tmp: Path) -> dict[str, str]:
    code = (
        "import site, sys, importlib.util as u; site.addsitedir(sys.argv[1]); "
        "names = ['edgeseg', 'edgeseg.export', 'edgeseg.export.plugin', 'edgeseg.calibration', "
        "'edgeseg.runtime', 'edgeseg.train']; "
        "print('\\n'.join(f'{n}={u.find_spec(n).origin}' for n in names))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(site)],
        cwd=tmp,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


@pytest.mark.slow
def test_regular_wheel_installs_stages_under_edgeseg(tmp_path: Path) -> None:
    wheel = _build("build_wheel", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for stage in STAGES:
        assert f"{stage.replace('.', '/')}/__init__.py" in names
    assert "edgeseg/export/plugin/CMakeLists.txt" in names
    # The bundled default model ships in the wheel (package data): checkpoint and ONNX, within
    # the 16 MiB budget together.
    bundled = [f"edgeseg/assets/default/{name}" for name in (CHECKPOINT_NAME, ONNX_NAME)]
    assert set(bundled) <= names
    sizes = [zipfile.ZipFile(wheel).getinfo(name).file_size for name in bundled]
    assert sum(sizes) <= 16 * 2**20, sizes
    assert not any(n.startswith(("export/", "runtime/", "calibration/", "train/")) for n in names)
    origins = _resolve(tmp_path / "site", tmp_path)
    for name, origin in origins.items():
        assert origin.startswith(str(tmp_path / "site" / "edgeseg")), (name, origin)


@pytest.mark.slow
def test_editable_install_maps_stages_to_source_folders(tmp_path: Path) -> None:
    wheel = _build("build_editable", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    origins = _resolve(tmp_path / "site", tmp_path)
    assert origins["edgeseg"] == str(ROOT / "edgeseg" / "__init__.py")
    for stage, folder in STAGES.items():
        assert origins[stage] == str(ROOT / folder / "__init__.py")
