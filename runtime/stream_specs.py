"""What a user types for several streams: the sources, their names, each stream's output paths.

- Sources: ``--source`` given more than once, and/or a ``.streams`` file (Ultralytics' name for
  it): one source per line; lines starting with ``#`` and blank lines are skipped.
- Names: ``name=SOURCE`` (a line of a ``.streams`` file or a ``--source``) names a stream,
  e.g. ``front=rtsp://10.0.0.2/cam``; the part before ``=`` must be a plain word (letters,
  digits, ``_``, ``-``), so a GStreamer pipeline's ``width=640`` or a URL's query is never read
  as a name (from Python, a ``(name, source)`` pair). Unnamed streams are named after their
  file or last path part (``front.mp4`` -> ``front``) when no other stream has it, else
  ``stream<i>`` (``i`` its position; a pipeline or a FrameSource too).
- Outputs: ``{stream}`` in a path is replaced by the stream's name (``out_{stream}.mp4``); a
  folder without it gets one subfolder per stream (``masks/`` -> ``masks/front/``). A single
  file without ``{stream}`` would mix the streams, so it is refused with an example.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeseg.errors import EdgesegError
from edgeseg.runtime.frames import FrameSource

STREAMS_SUFFIX = ".streams"
PLACEHOLDER = "{stream}"
_NAMED = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_-]*)=(\S.*)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def is_streams_file(spec: object) -> bool:
    """Whether ``spec`` names a ``.streams`` list (the file need not exist yet)."""
    return isinstance(spec, str | os.PathLike) and str(spec).lower().endswith(STREAMS_SUFFIX)


def read_streams_file(path: str | os.PathLike[str]) -> list[str]:
    """The sources listed in a ``.streams`` file, in order (module docstring)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgesegError(f"streams file {file} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgesegError(f"cannot read streams file {file}: {exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    sources = [line for line in lines if line and not line.startswith("#")]
    if not sources:
        raise EdgesegError(f"streams file {file} lists no source (one per line)")
    return sources


def expand_sources(specs: Sequence[str | int | FrameSource]) -> list[str | int | FrameSource]:
    """``specs`` with every ``.streams`` file replaced by the sources it lists."""
    expanded: list[str | int | FrameSource] = []
    for spec in specs:
        if is_streams_file(spec):
            expanded.extend(read_streams_file(str(spec)))
        else:
            expanded.append(spec)
    return expanded


def split_name(spec: Any) -> tuple[str | None, str | int | FrameSource]:
    """``"front=clip.mp4"`` or ``("front", source)`` -> ("front", the source); anything else
    -> (None, spec)."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return spec[0], spec[1]
    if isinstance(spec, str):
        match = _NAMED.match(spec.strip())
        if match:
            return match.group(1), match.group(2).strip()
    return None, spec


def _stem(spec: str | int | FrameSource) -> str:
    """A file's or URL's last part without its suffix; "" for a pipeline or a FrameSource."""
    if isinstance(spec, FrameSource) or "!" in str(spec):
        return ""
    part = str(spec).rstrip("/").split("?", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
    stem = part.rsplit(".", 1)[0] if "." in part and not part.startswith(".") else part
    return _UNSAFE.sub("_", stem).strip("_")


def stream_names(specs: Sequence[Any]) -> tuple[list[str], list[str | int | FrameSource]]:
    """(names, sources without their names): given names kept; the others named after their
    file when that is unique among the streams, else ``stream<i>``."""
    given = [split_name(spec) for spec in specs]
    sources = [source for _, source in given]
    stems = [_stem(source) for source in sources]
    names = [
        name or (stems[i] if stems[i] and stems.count(stems[i]) == 1 else f"stream{i}")
        for i, (name, _) in enumerate(given)
    ]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise EdgesegError(f"two streams are named {twice[0]}; give each its own name=SOURCE")
    return names, sources


def stream_path(template: str | os.PathLike[str], name: str, option: str, folder: bool) -> str:
    """``template`` for stream ``name``: ``{stream}`` replaced, or a subfolder of a folder.

    ``folder``: the option names a folder (masks, frames); a file path without ``{stream}``
    raises EdgesegError naming ``option``.
    """
    text = str(template)
    if PLACEHOLDER in text:
        return text.replace(PLACEHOLDER, name)
    if folder:
        return os.path.join(text, name) + (os.sep if text.endswith(("/", os.sep)) else "")
    raise EdgesegError(
        f"{option} {text}: with several streams each needs its own file; put {PLACEHOLDER} in "
        f"the path (e.g. {_example(text)}) or give a folder"
    )


def _example(text: str) -> str:
    path = Path(text)
    return str(path.with_name(f"{path.stem}_{PLACEHOLDER}{path.suffix}"))
