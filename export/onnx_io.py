"""Reading and writing edgeseg ONNX files: the model card in ``metadata_props``, atomic saves."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from edgeseg.card import ONNX_METADATA_KEY, ModelCard, card_from_onnx_metadata
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes

#: The opset written by default: torch's exporter targets it natively, TensorRT 10.3's parser
#: reads opsets 9-20, ONNX Runtime 1.17+ runs it.
DEFAULT_OPSET = 18
MIN_OPSET = 17


def check_opset(opset: int) -> int:
    """``opset`` if this toolchain can write it, else a one-line error."""
    if opset < MIN_OPSET:
        raise EdgesegError(
            f"--opset {opset} is too old; use {MIN_OPSET} or later (default {DEFAULT_OPSET})"
        )
    if opset > onnx.defs.onnx_opset_version():
        raise EdgesegError(
            f"--opset {opset} is newer than this onnx package knows "
            f"({onnx.defs.onnx_opset_version()}); use {DEFAULT_OPSET}"
        )
    return opset


def attach_card(model: onnx.ModelProto, card: ModelCard) -> None:
    """Store ``card`` as JSON under :data:`ONNX_METADATA_KEY`, replacing an older card."""
    kept = [p for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = card.to_json()


def card_of(model: onnx.ModelProto, source: str | Path = "the ONNX model") -> ModelCard:
    """The card an edgeseg ONNX carries; a one-line error for a foreign file."""
    return card_from_onnx_metadata({p.key: p.value for p in model.metadata_props}, source)


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load an ONNX file with one-line errors for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"ONNX file {path} not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, onnx its own types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EdgesegError(f"cannot read {path} as ONNX: {reason}") from None


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` atomically (temporary file + rename); weights stay inside the file.

    SegNet at full width is about 118 MB, far below protobuf's 2 GB limit, so no external data.
    """
    path = Path(path)
    atomic_write_bytes(path, model.SerializeToString())
    make_readable(path)
    return path


def make_readable(path: str | Path) -> None:
    """Give a file written through ``tempfile.mkstemp`` (mode 0600) the usual permissions:
    artifacts get copied to other machines and read by other users (a Jetson's service)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
