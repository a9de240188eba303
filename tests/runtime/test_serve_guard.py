"""Issue 26, ``--serve`` hardened: the Host header without a token, the connection cap and the
header deadline, against a real server on 127.0.0.1 (a bounded flood that ends by itself)."""

from __future__ import annotations

import http.client
import socket
import threading
import time

from edgeseg.runtime.serve import ServeSink
from edgeseg.runtime.serve_guard import host_allowed, host_names


def get(port: int, path: str, host: str | None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_without_a_token_the_host_must_name_this_server() -> None:
    sink = ServeSink("127.0.0.1:0", allowed_hosts=("jetson.lan",))
    try:
        port = sink.port
        for host in (f"127.0.0.1:{port}", "localhost", f"[::1]:{port}", "JETSON.LAN:80", None):
            assert get(port, "/stats", host) == 200, host
        for host in ("attacker.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
            assert get(port, "/stats", host) == 403, host
            assert get(port, "/stream.mjpg", host) == 403, host
    finally:
        sink.close()


def test_with_a_token_the_token_decides() -> None:
    sink = ServeSink("127.0.0.1:0", token="s3cret")
    try:
        assert get(sink.port, "/stats?token=s3cret", "anything.example") == 200
        assert get(sink.port, "/stats", "127.0.0.1") == 401
    finally:
        sink.close()


def test_host_rules() -> None:
    names = host_names("0.0.0.0", ("cam.local",))
    assert host_allowed("192.168.1.5:8080", names) and host_allowed("[fe80::1]:8080", names)
    assert host_allowed("cam.local.", names) and host_allowed(socket.gethostname(), names)
    assert not host_allowed("rebind.attacker.example", names)


def slow_flood(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send half a request line and nothing more (slowloris)."""
    held = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"GET /st")
        held.append(client)
    return held


def test_a_flood_of_slow_connections_is_capped_and_timed_out() -> None:
    sink = ServeSink("127.0.0.1:0")
    server = sink.server
    server.header_timeout_s = 2.0
    baseline = threading.active_count()
    held: list[socket.socket] = []
    try:
        held = slow_flood(sink.port, 200)
        deadline = time.monotonic() + 20
        most_threads = 0
        while (server.accepted < 200 or server.active) and time.monotonic() < deadline:
            most_threads = max(most_threads, threading.active_count())
            time.sleep(0.02)  # the reaper ends the slow ones past the header deadline
        assert server.accepted == 200 and server.active == 0
        assert server.peak <= server.max_connections and server.refused > 0
        assert most_threads <= baseline + server.max_connections
        assert get(sink.port, "/stats", "127.0.0.1") == 200  # served again after the flood
    finally:
        for client in held:
            client.close()
        sink.close()
