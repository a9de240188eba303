"""What keeps ``--serve`` safe to leave running: the Host check and the connection cap.

:func:`host_allowed` refuses a ``Host`` header that is neither an IP address nor one of this
server's names (a DNS-rebinding page sends its own name); :class:`CappedServer` serves at most
:data:`MAX_CONNECTIONS` connections at once and gives each request :data:`HEADER_TIMEOUT_S` for
its line and headers. :mod:`edgeseg.runtime.serve` uses both; its docstring says what a user sees.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import socket
import threading
import time
from typing import Any

HEADER_TIMEOUT_S = 5.0  # a request's line and headers must arrive within this, all together
MAX_CONNECTIONS = 32  # connections served at once (threads); more are closed when accepted


def host_names(bound: str, given: tuple[str, ...] = ()) -> frozenset[str]:
    """The names a ``Host`` header may carry besides IP addresses: localhost, this machine's
    names, the bound host, and ``given`` (lower case, no port)."""
    names = {"localhost", socket.gethostname(), socket.getfqdn(), bound}
    names |= {f"{socket.gethostname()}.local"} | set(given)
    return frozenset(n.strip().lower().rstrip(".") for n in names if n and n.strip())


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    """``Host: 192.168.1.5:8080``, ``[::1]:8080``, ``localhost`` or a name in ``names``: yes;
    ``attacker.example`` (a DNS-rebinding page): no. No header (HTTP/1.0): yes."""
    if header is None:
        return True
    text = header.strip().lower()
    host = text[1:].split("]")[0] if text.startswith("[") else text.rsplit(":", 1)[0]
    if ":" in text and not text.startswith("[") and text.count(":") > 1:
        host = text  # a bare IPv6 address without brackets
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.rstrip(".") in names


class CappedServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer with a cap on connections served at once (more are closed when
    accepted, costing no thread) and a deadline on each request's headers, enforced by one
    reaper thread that shuts down the sockets past it (a per-read timeout alone lets a client
    send one byte every few seconds forever)."""

    daemon_threads = True
    request_queue_size = 128  # a burst is accepted (and capped) rather than left in SYN retries
    max_connections = MAX_CONNECTIONS
    header_timeout_s = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.active = self.peak = self.accepted = 0  # served now, at most at once, in all
        self.refused = 0  # connections closed at once because of the cap (for tests, docs)
        self._lock = threading.Lock()
        self._deadlines: dict[socket.socket, float] = {}
        self._stopped = threading.Event()
        super().__init__(*args, **kwargs)

    def server_activate(self) -> None:
        super().server_activate()
        threading.Thread(target=self._reap, name="edgeseg-serve-reaper", daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self.active >= self.max_connections
            self.active += 0 if full else 1
            self.refused += 1 if full else 0
            self.accepted += 1
            self.peak = max(self.peak, self.active)
        if full:
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.active -= 1

    def watch(self, connection: socket.socket) -> None:
        with self._lock:
            self._deadlines[connection] = time.monotonic() + self.header_timeout_s

    def unwatch(self, connection: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(connection, None)

    def _reap(self) -> None:
        while not self._stopped.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [c for c, until in self._deadlines.items() if until <= now]
                for connection in late:
                    del self._deadlines[connection]
            for connection in late:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._stopped.set()
        super().server_close()
