"""Where the Jetson rehearsal environment is: a ``--system-site-packages`` venv over Debian's
python3-opencv (GStreamer YES, numpy 1.x), made by ``.ci/jetson-rehearsal`` from the JetPack 6
recipe. Tests that need GStreamer in OpenCV run edgeseg in a subprocess with that Python, because
the development venv's pip OpenCV has no GStreamer (exactly the trap a Jetson user meets).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REHEARSAL_ENV = "EDGESEG_REHEARSAL_PYTHON"


def rehearsal_python() -> Path:
    """The rehearsal venv's Python executable, or skip the test naming how to get one."""
    value = os.environ.get(REHEARSAL_ENV, "")
    if not value:
        pytest.skip(f"{REHEARSAL_ENV} is unset: .ci/run sets it after .ci/jetson-rehearsal")
    path = Path(value)
    if not path.is_file():
        pytest.skip(f"{REHEARSAL_ENV}={value} does not exist: run .ci/jetson-rehearsal")
    return path
