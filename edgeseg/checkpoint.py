"""Checkpoints: weights plus model card (plus resume state), loaded without executing code.

A checkpoint is a ``torch.save`` of plain containers and tensors, read back with
``torch.load(weights_only=True)`` so a file from elsewhere cannot run code. RNG states are stored
as tensors and lists of ints for the same reason. Writes go to a temporary file that is renamed
into place, so a run killed mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeseg import __version__
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes

CHECKPOINT_FORMAT = "edgeseg-checkpoint"


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A hash of the weights alone (names, shapes, dtypes, values), independent of file layout."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    card: ModelCard,
    extra: dict[str, Any] | None = None,
) -> ModelCard:
    """Write ``model``'s weights, its card (with version and weights hash filled in) and ``extra``.

    ``extra`` carries what ``--resume`` needs (optimizer, scheduler, epoch, RNG states); it must
    hold only tensors, numbers, strings and containers of them. Returns the card as written.
    """
    module = model.module if hasattr(model, "module") else model  # unwrap DDP
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    card = card.replace(edgeseg_version=__version__, weights_sha256=weights_sha256(state))
    payload = {"format": CHECKPOINT_FORMAT, "card": card.to_dict(), "model": state}
    if extra:
        payload.update(extra)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return card


def trained_splits(payload: dict[str, Any]) -> str:
    """The split(s) a checkpoint was trained on, '+'-joined as given (``train``, ``train+val``);
    ``""`` when it does not say (a checkpoint written outside ``edgeseg train``)."""
    config = payload.get("config")
    return str(config.get("train_split", "")) if isinstance(config, dict) else ""


def held_out_metrics(payload: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's validation metrics when its validation split was held out, else ``{}``.

    A final fit on ``train+val`` (the protocol for a test figure) still scores val each epoch,
    but on images it trained on: such figures measure nothing and must not be shown as the
    model's accuracy.
    """
    metrics, config = payload.get("metrics"), payload.get("config")
    if not isinstance(metrics, dict) or not isinstance(config, dict):
        return {}
    trained = [split.strip() for split in trained_splits(payload).split("+")]
    return {} if config.get("val_split") in trained else metrics


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint's raw dict safely; one-line errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"checkpoint {path} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
            reason = "it holds objects other than tensors and plain values (refused: unsafe)"
        else:
            reason = f"it is not a file written by torch.save ({type(exc).__name__})"
        raise EdgesegError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise EdgesegError(f"{path} is not an edgeseg checkpoint (no model card inside)")
    weights = payload.get("model")
    if not isinstance(payload.get("card"), dict) or not isinstance(weights, dict):
        raise EdgesegError(
            f"checkpoint {path} is damaged: its 'card' and 'model' entries must be mappings "
            "(model card, weight name -> tensor); use another checkpoint of the run"
        )
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise EdgesegError(f"checkpoint {path} is damaged: its 'model' entry holds non-tensors")
    return payload


def check_finite(path: str | Path, state_dict: dict[str, torch.Tensor]) -> None:
    """One-line EdgesegError when weights hold NaN or Inf (a training run that diverged):
    exporting or evaluating them would only report mismatches or silently score garbage."""
    bad = [
        name
        for name, tensor in state_dict.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise EdgesegError(
            f"checkpoint {path} holds NaN or Inf weights ({bad[0]}"
            f"{f' and {len(bad) - 1} more tensors' if len(bad) > 1 else ''}): its training "
            "diverged; use an earlier checkpoint, or retrain with a lower --lr"
        )


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model a checkpoint describes, load its weights, and return it in eval mode."""
    from edgeseg.models import create_model

    payload = read_checkpoint(path)
    check_finite(path, payload["model"])
    card = ModelCard.from_dict(payload["card"])
    model = create_model(card.architecture, card.num_classes, **card.arch_args)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise EdgesegError(f"checkpoint {path} does not match its model card: {first}") from None
    return model.to(device).eval(), card
