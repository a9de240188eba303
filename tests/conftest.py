"""Shared fixtures: small synthetic datasets written as real PNG/JPEG files into ``tmp_path``.

The generators are plain functions in ``tests/synthetic.py`` (importable as ``synthetic`` from any
test, since pytest puts ``tests/`` on ``sys.path`` for this conftest):

- ``camvid_like``: CamVid layout, 11 classes + void 11, 8 train / 4 val / 2 test images of
  60x80 (an odd aspect on purpose: a 64x64 input makes the training crop scale and pad). Read as
  :data:`edgeseg.data.CAMVID`. Learnable: a tiny SegNet's training loss falls within 2 epochs.
- ``generic_lists``: ``dataset.yaml`` + ``images/*.jpg`` + ``masks/*.png`` + ``train.txt`` /
  ``val.txt``, 3 classes, index masks (7 train / 3 val of 40x56).
- ``crack_like``: ``dataset.yaml`` with ``mask_format: binary``, 2 classes, white-on-black JPEG
  masks named ``<stem>_mask.jpg``, folders per split (7 train / 3 val of 40x56).

Each fixture returns the dataset root (a ``Path``) and writes a fresh copy per test.

``cli`` runs ``edgeseg ARGS`` in this process (``tests/cli_helpers.py``): the same entry point as
the console script, without paying for a Python start per case.

Markers ``gpu`` and ``tensorrt`` are checked here, once for the whole suite: a test marked
``gpu`` is skipped, with the reason, where torch sees no CUDA GPU; one marked ``tensorrt`` where
the ``tensorrt`` module cannot be imported or there is no GPU.

Every test runs in a working directory of its own, new and empty (``own_working_directory``):
what a user left in the clone (README command 1 writes ``runs/demo``) never changes a result,
and a command that writes to its default ``runs/...`` folder leaves nothing in the clone.

The whole session runs with ``EDGESEG_CACHE_DIR`` in a temporary folder (inherited by the CLI
subprocesses), so tests never read or fill the user's real cache (calibration inputs, the
exported bundled model); a test that needs its own empty cache sets the variable itself.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import CliRunner
from synthetic import make_camvid_like, make_generic


@functools.cache
def _no_gpu_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed, so no CUDA GPU can be used"
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    return None


@functools.cache
def _no_tensorrt_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        return "TensorRT is not installed (pip install tensorrt)"
    except (ImportError, OSError) as exc:  # e.g. bindings installed over stub libraries
        return f"TensorRT cannot be imported: {exc}"
    return _no_gpu_reason()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, naming why, the tests whose ``gpu`` or ``tensorrt`` marker this machine lacks.

    The checks run only when such a test was collected, and once per session.
    """
    for item in items:
        reason = None
        if item.get_closest_marker("tensorrt") is not None:
            reason = _no_tensorrt_reason()
        if reason is None and item.get_closest_marker("gpu") is not None:
            reason = _no_gpu_reason()
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def isolated_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("user-cache")
    before = os.environ.get("EDGESEG_CACHE_DIR")
    os.environ["EDGESEG_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        del os.environ["EDGESEG_CACHE_DIR"]
    else:
        os.environ["EDGESEG_CACHE_DIR"] = before


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def clone_left_clean() -> Iterator[None]:
    """The suite leaves no ``runs/`` in the clone: checked at the end of the session."""
    before = (ROOT / "runs").exists()
    yield
    if not before and (ROOT / "runs").exists():
        raise AssertionError(f"a test left {ROOT / 'runs'} behind: it ran outside its folder")


@pytest.fixture(autouse=True)
def own_working_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A new empty folder as the working directory, apart from ``tmp_path`` (which tests list)."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def camvid_like(tmp_path: Path) -> Path:
    return make_camvid_like(tmp_path / "camvid_like", n_train=8, n_val=4, n_test=2, seed=0)


@pytest.fixture
def generic_lists(tmp_path: Path) -> Path:
    return make_generic(tmp_path / "generic", layout="lists", mask_format="index", seed=1)


@pytest.fixture
def crack_like(tmp_path: Path) -> Path:
    return make_generic(
        tmp_path / "cracks", layout="dirs", mask_format="binary", mask_suffix="_mask", seed=2
    )


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]) -> CliRunner:
    """``cli("export", ...)`` runs ``edgeseg export ...`` in this process; see ``CliRunner``."""
    return CliRunner(capfd)
