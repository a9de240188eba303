"""Where edgeseg keeps files worth reusing between runs (calibration inputs, the exported
bundled model): ``$EDGESEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgeseg``, else
``~/.cache/edgeseg``. Everything in it can be deleted at any time; it is rebuilt on demand."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it); not created here."""
    root = os.environ.get("EDGESEG_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "edgeseg"
    return base.joinpath(*parts)
