"""The bundled default model: a small CamVid SegNet that ships inside the package.

It exists so that ``edgeseg demo`` and ``edgeseg run --source VIDEO`` work right after
``pip install``, with no data and no GPU. It is a demo of the toolkit, not a production model
(figures and how it was trained: ``docs/training.md``).

Two files ship, made from each other and checked against each other by the tests:

- ``<name>.onnx``: what the runtime runs, read by ONNX Runtime with no torch (the runtime-only
  install a Jetson or an embedding application uses: numpy, OpenCV, onnxruntime). Its card
  carries the checkpoint's weights hash. TensorRT engines build from it too (``edgeseg export
  <it> --format engine``), also without torch.
- ``<name>.pt``: the checkpoint, where ``edgeseg export`` and the torch backend start; it holds
  the card and the validation metrics.

The ONNX is written by ``edgeseg export <name>.pt`` (its ``model.onnx``, renamed) whenever the
weights change; ``tests/core/test_packaging.py`` fails when the two disagree.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

NAME = "segnet_w025_camvid"
CHECKPOINT_NAME = f"{NAME}.pt"
ONNX_NAME = f"{NAME}.onnx"


def _asset(name: str) -> Path:
    """A file of the bundled model inside the installed package; EdgesegError when missing (an
    install that dropped package data, or a source checkout without the asset)."""
    resource = importlib.resources.files("edgeseg") / "assets" / "default" / name
    path = Path(str(resource))  # edgeseg is never imported from a zip: the resource is a file
    if not path.is_file():
        raise EdgesegError(
            f"the bundled default model is missing ({path}); reinstall edgeseg, or pass "
            "--model with your own checkpoint, ONNX file or engine"
        )
    return path


def default_checkpoint() -> Path:
    """The bundled checkpoint's path (what ``edgeseg export`` and the torch backend start from)."""
    return _asset(CHECKPOINT_NAME)


def newest_run_checkpoint(runs: str | Path = "runs") -> Path | None:
    """The ``best.pt`` of the newest training run under ``runs`` (by modification time), or
    None: what ``edgeseg export`` takes when no SOURCE is given, before the bundled model."""
    found = [p for p in Path(runs).glob("*/best.pt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def default_onnx() -> Path:
    """The bundled ONNX's path: what the runtime runs, no torch needed."""
    return _asset(ONNX_NAME)


def require_export_tools() -> None:
    """Raise the one-line EdgesegError when torch or onnx (the export extra) is missing.

    Called before any slow step of a workflow that exports (the demo), so a runtime-only install
    learns at once what to install.
    """
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise EdgesegError(
            f"this needs {exc.name or 'torch'} to export the bundled checkpoint; install it with: "
            "pip install 'edgeseg[export]' (edgeseg run needs neither: it runs the bundled ONNX)"
        ) from None


def default_card() -> tuple[ModelCard, dict, str]:
    """The bundled model's card, its held-out validation metrics and the splits it was fit on.

    Read from the checkpoint. The metrics are ``{}`` when the model was fit on train + val (v3:
    the protocol for a test figure), whose val figures measure nothing. Needs torch (the
    checkpoint is a ``torch.save`` file).
    """
    require_export_tools()
    from edgeseg.checkpoint import held_out_metrics, read_checkpoint, trained_splits

    payload = read_checkpoint(default_checkpoint())
    card = ModelCard.from_dict(payload["card"])
    return card, held_out_metrics(payload), trained_splits(payload)
