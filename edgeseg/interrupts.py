"""Stop signals handled like Ctrl-C, and finalisation that a second signal cannot abandon.

``systemd``, ``docker stop`` and ``timeout`` send SIGTERM; closing a terminal or an SSH session
sends SIGHUP. Their default action kills the process at once, which loses a video whose
container is written when it is closed. :class:`SignalGuard` turns each of them into
:class:`Interrupted` (a ``KeyboardInterrupt``, so code written for Ctrl-C handles it too),
raised once: a second Ctrl-C while the outputs are being finalised is recorded, not raised, so
it cannot leave a half-written file behind.

Exit codes follow the shell's convention, 128 + the signal number: 130 for SIGINT, 143 for
SIGTERM, 129 for SIGHUP (:func:`exit_code`).

Handlers can only be installed from the main thread; elsewhere the guard does nothing. A
handler the application installed itself, or a signal it ignores (``nohup`` ignores SIGHUP, a
shell's background job SIGINT), is left alone.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

#: The signals that stop a run cleanly.
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived: ``signum`` says which (SIGINT for Ctrl-C)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(exc: BaseException) -> int:
    """128 + the signal number: 130 for Ctrl-C (a plain KeyboardInterrupt), 143 for SIGTERM."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _replaceable(handler: Any) -> bool:
    # The defaults, or another guard's handler; never an application's own, never SIG_IGN.
    if handler in (signal.SIG_DFL, signal.default_int_handler):
        return True
    return isinstance(getattr(handler, "__self__", None), SignalGuard)


class SignalGuard:
    """While active, the first stop signal raises :class:`Interrupted`; later ones are only
    recorded in :attr:`received` (finalisation goes on). Use as a context manager.

    ``final``: the process ends when an interrupted guard exits (a command's outermost guard),
    so further stop signals are ignored from then on instead of killing it on its way out, and
    the exit code stays the first signal's.

    >>> with SignalGuard() as guard:
    ...     run()  # Ctrl-C / SIGTERM / SIGHUP -> Interrupted, once
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS, final: bool = False) -> None:
        self.signals = signals
        self.final = final
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        return bool(self.received)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            raise Interrupted(signum)

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.signals:
            previous = signal.getsignal(signum)
            if _replaceable(previous):
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if self.final and self.received else previous)
            # An enclosing guard learns what arrived here: its next signal is a later one
            # (recorded, not raised), so the first signal's exit code holds.
            outer = getattr(previous, "__self__", None)
            if isinstance(outer, SignalGuard) and self.received and not outer.received:
                outer.received.extend(self.received)
        self._previous.clear()
