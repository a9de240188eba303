"""The bundled default model: a small CamVid SegNet that ships inside the package.

It exists so that ``edgeseg demo`` and ``edgeseg run --source VIDEO`` work right after
``pip install``, with no data and no GPU. It is a demo of the toolkit, not a production model
(SegNet width 0.25 trained on CamVid on a CPU; figures in ``docs/training.md``).

The package carries the PyTorch checkpoint only, not ONNX files: the checkpoint holds the
model card and its weights hash, and one file cannot drift from another. The runtime needs ONNX,
so :func:`default_onnx` exports it once per user into a cache folder named after the
checkpoint file's hash (a new bundled model gets a new folder) and reuses it after. Finding the
cached ONNX needs only hashlib, so a run that reuses it never imports torch (160 MiB resident
against 620 MiB). The export needs torch; a runtime-only install (numpy + OpenCV + ONNX Runtime,
e.g. a Jetson) gets a one-line error saying what to install, or passes ``--model`` with its own
ONNX file or engine.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgeseg import __version__
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.user_cache import user_cache_dir

CHECKPOINT_NAME = "segnet_w025_camvid.pt"
ONNX_NAME = "model.onnx"
CACHE_PREFIX = "default-"
HASH_CHARS = 12  # of the checkpoint file's sha256: enough to tell bundled models apart


def default_checkpoint() -> Path:
    """The bundled checkpoint's path inside the installed package.

    Raises EdgesegError when it is missing (an install that dropped package data, or a source
    checkout without the asset).
    """
    resource = importlib.resources.files("edgeseg") / "assets" / "default" / CHECKPOINT_NAME
    path = Path(str(resource))  # edgeseg is never imported from a zip: the resource is a file
    if not path.is_file():
        raise EdgesegError(
            f"the bundled default model is missing ({path}); reinstall edgeseg, or pass "
            "--model with your own checkpoint, ONNX file or engine"
        )
    return path


def require_export_tools() -> None:
    """Raise the one-line EdgesegError when torch or onnx (the export extra) is missing.

    Called before any slow step, so a runtime-only install learns at once why the bundled
    model cannot run there and what to do instead.
    """
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise EdgesegError(
            f"the bundled default model ships as a PyTorch checkpoint and exporting it to ONNX "
            f"needs {exc.name or 'torch'}; install it with: pip install 'edgeseg[export]' "
            "(or pass --model with an ONNX file or engine)"
        ) from None


def default_card() -> tuple[ModelCard, dict]:
    """The bundled checkpoint's model card and its stored metrics (``{}`` when it has none).

    The metrics are those of the best validation epoch (``miou``, ``pixel_accuracy``, ...).
    Needs torch (the checkpoint is a ``torch.save`` file).
    """
    require_export_tools()
    from edgeseg.checkpoint import read_checkpoint

    payload = read_checkpoint(default_checkpoint())
    metrics = payload.get("metrics")
    return ModelCard.from_dict(payload["card"]), metrics if isinstance(metrics, dict) else {}


def default_cache_dir() -> Path:
    """Where the bundled model's ONNX files are cached: named after the edgeseg version and
    the checkpoint file's sha256 (hashlib reads 7 MB in ~20 ms; no torch needed)."""
    digest = hashlib.sha256()
    with open(default_checkpoint(), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return user_cache_dir(f"{CACHE_PREFIX}{__version__}-{digest.hexdigest()[:HASH_CHARS]}")


def default_onnx(log: Callable[[str], None] | None = None) -> Path:
    """The bundled model as ONNX (``model.onnx``, plus ``model.trt.onnx`` beside it).

    Exported on first use, parity-checked against PyTorch, into
    ``<user cache>/default-<edgeseg version>-<checkpoint file hash>/``
    (:func:`default_cache_dir`; a new release may export differently) and reused after,
    without importing torch. The export goes into a temporary folder beside the target that is
    then renamed, so another process never sees a half-written folder; when two processes
    race, the first rename wins and the other uses its folder.
    ``log`` receives one line before and one after a fresh export. Raises EdgesegError when
    torch or onnx is missing.
    """
    target = default_cache_dir()
    if (target / ONNX_NAME).is_file():
        return target / ONNX_NAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgesegError(
            f"cannot use the cache folder {target.parent} ({exc.strerror}: {exc.filename}); "
            "set EDGESEG_CACHE_DIR to a writable folder"
        ) from None
    require_export_tools()
    card, _ = default_card()
    if not card.weights_sha256:
        raise EdgesegError(f"{default_checkpoint()} has no weights hash in its model card")
    from edgeseg.export.pipeline import export_checkpoint

    if log is not None:
        log(f"exporting the bundled model to ONNX (first use only) into {target}")
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        export_checkpoint(default_checkpoint(), work, check=True, log=lambda _line: None)
        try:
            work.rename(target)
        except OSError:  # another process finished first: use its folder
            if not (target / ONNX_NAME).is_file():
                raise EdgesegError(
                    f"cache folder {target} exists without {ONNX_NAME}; delete it and retry"
                ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already after a successful rename
    if log is not None:
        log(f"wrote {target / ONNX_NAME}; later runs reuse it")
    return target / ONNX_NAME
