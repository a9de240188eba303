"""What every benchmark script does with its record: print it and, with ``--json``, write it.

``benchmarks/performance.py`` reads the written file to fill ``docs/performance.md``, so the
file must appear whole (written to a temporary file and renamed) or not at all.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from edgeseg.files import atomic_write_bytes


def machine() -> str:
    """The short machine line of a record, e.g. ``x86_64, 2 CPUs``."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs"


def emit(record: dict[str, Any], json_path: str | Path | None) -> None:
    """Print ``record`` as indented JSON and write the same text to ``json_path`` when given."""
    text = json.dumps(record, indent=1)
    print(text)
    if json_path:
        atomic_write_bytes(json_path, text.encode())
