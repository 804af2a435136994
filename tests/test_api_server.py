"""api/server.py: uvicorn as the API runs it, driven through real sockets — a request head that never
ends gets a 408 and the connection is closed (on a new connection and on a kept-alive one), a whole
request is served as usual; the version guard on uvicorn's internals; the open-file limit."""

from __future__ import annotations

import asyncio
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from api import server
from api.limits import ApiLimits
from support.stack import free_port

LIMITS = ApiLimits(header_timeout=0.5, keep_alive=1, max_connections=64)


async def hello(scope, receive, send) -> None:
    """`ok`; on /slow, a response that takes longer than keep-alive plus the header timeout (a live
    stream takes hours)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    if scope["path"] == "/slow":
        await send({"type": "http.response.body", "body": b"o", "more_body": True})
        await asyncio.sleep(2.5)
        await send({"type": "http.response.body", "body": b"k"})
        return
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    port = free_port()
    running = uvicorn.Server(server.uvicorn_config(hello, "127.0.0.1", port, LIMITS))
    running.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=lambda: asyncio.run(running.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield "127.0.0.1", port
    running.should_exit = True
    thread.join(10)


def read_all(connection: socket.socket, wait: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it."""
    connection.settimeout(wait)
    started, received = time.monotonic(), b""
    while chunk := connection.recv(4096):
        received += chunk
    return received, time.monotonic() - started


def read_response(connection: socket.socket) -> bytes:
    """One `ok` response, head and body (they may come in two segments)."""
    answer = b""
    while not answer.endswith(b"\r\n\r\nok"):
        chunk = connection.recv(4096)
        assert chunk, f"the server closed the connection after {answer!r}"
        answer += chunk
    return answer


def test_a_request_head_that_never_ends_is_answered_408_and_closed(address):
    with socket.create_connection(address) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
        received, _ = read_all(connection)
    assert received.startswith(b"HTTP/1.1 408 ") and b'"error":"request_timeout"' in received


def test_a_connection_that_sends_nothing_is_closed(address):
    with socket.create_connection(address) as connection:
        received, _ = read_all(connection)
    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_kept_alive_connection_dripping_its_next_head_is_closed(address):
    with socket.create_connection(address) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.settimeout(5)
        assert read_response(connection).startswith(b"HTTP/1.1 200 ")
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):  # a header line every 0.1 s: each one stops uvicorn's own keep-alive timer
            if select.select([connection], [], [], 0.1)[0]:
                break  # the server answered or closed
            connection.sendall(b"X-Slow: 1\r\n")
        else:
            pytest.fail("the server still held the connection after 4 s (keep-alive 1 s + header timeout 0.5 s)")
        received, _ = read_all(connection)
    assert received.startswith(b"HTTP/1.1 408 ")


def test_whole_requests_are_served_one_after_another_on_one_connection(address):
    with socket.create_connection(address) as connection:
        connection.settimeout(5)
        for _ in range(3):
            connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(connection).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.7)  # longer than the header timeout, shorter than keep-alive + header timeout


def test_a_long_response_to_a_pipelined_request_is_never_cut(address):
    """The second request is already there when the first response ends: no deadline may then run
    against the connection while its (long) response is written."""
    with socket.create_connection(address) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.settimeout(10)
        received = b""
        while received.count(b"ok") < 2:
            chunk = connection.recv(4096)
            assert chunk, f"the connection was closed after {received!r}"
            received += chunk
    assert received.count(b"HTTP/1.1 200 ") == 2


def test_another_uvicorn_is_refused_unless_allowed(monkeypatch):
    monkeypatch.delenv(server.ALLOW_UNTESTED, raising=False)
    server.check_uvicorn()  # the installed one is the tested one
    with pytest.raises(server.UntestedUvicornError, match=r"uvicorn 0\.99\.0.*checked against uvicorn"):
        server.check_uvicorn("0.99.0")
    monkeypatch.setenv(server.ALLOW_UNTESTED, "1")
    server.check_uvicorn("0.99.0")


def test_the_open_file_limit_is_raised_to_what_the_connections_need_within_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert server.raise_descriptor_limit(soft - 1) == soft  # enough already: left alone
    wanted = soft + 10 if hard == resource.RLIM_INFINITY else min(soft + 10, hard)
    try:
        assert server.raise_descriptor_limit(wanted) == wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
