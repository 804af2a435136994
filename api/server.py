"""Serving the API with uvicorn under the limits of `ApiLimits`.

uvicorn (0.54) has a keep-alive timeout and a concurrency limit but no header-read timeout: a
connection that sends half a request line, or one byte every few seconds, is held for as long as the
client likes (300 such connections were never closed in 40 s). `HeaderTimeoutProtocol` adds one: a
connection must have sent a whole request `header_timeout` seconds after it opened, or after its
previous response ended, or it gets a 408 and is closed.

PRIVATE INTERNALS: the protocol subclasses uvicorn's `H11Protocol` and relies on its attributes
`conn` (the h11 connection), `transport`, `loop` and its methods `connection_made`,
`data_received`, `on_response_complete`, `connection_lost` — none of them a documented API. Checked
against uvicorn `TESTED_UVICORN`; `check_uvicorn` refuses another version (the same override as the
workers', CHISO766_ALLOW_UNTESTED_VERSIONS=1) and tests/test_api_limits.py drives the protocol
through a real socket.
"""

from __future__ import annotations

import asyncio
import logging
import resource

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.limits import ApiLimits
from support.versions import ALLOW_UNTESTED, allowed_anyway, installed_version

log = logging.getLogger("chiso766.api")
TESTED_UVICORN = "0.54.0"
FD_HEADROOM = 256  # descriptors beyond the connection limit: Redis, logs, files, the listening socket
TIMEOUT_BODY = b'{"error":"request_timeout","detail":"the request did not arrive in time"}'


class UntestedUvicornError(SystemExit):
    pass


def check_uvicorn(version: str | None = None) -> None:
    found = version or installed_version("uvicorn")
    if found == TESTED_UVICORN or allowed_anyway(f"uvicorn {found}", f"uvicorn {TESTED_UVICORN}", "serving", log):
        return
    raise UntestedUvicornError(
        f"chiso766 refuses to serve the API: this environment has uvicorn {found}, but api/server.py's "
        f"header timeout was checked against uvicorn {TESTED_UVICORN} (requirements.lock). Install the lock "
        f"(bash deploy/setup-python.sh), or set {ALLOW_UNTESTED}=1 to try this version.")


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head (see the module's docstring)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request line and its headers have arrived
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may already serve a pipelined request that was waiting
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm(self.timeout_keep_alive + self.header_timeout)  # idle up to keep-alive, then its head

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(seconds, self._header_timed_out)

    def _disarm(self) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # a request arrived meanwhile: it is being served (a live stream may take hours)
        if self.conn.our_state is h11.IDLE:  # nothing answered on this cycle yet: say why it is closed
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: " + str(len(TIMEOUT_BODY)).encode()
                                 + b"\r\n\r\n" + TIMEOUT_BODY)
        self.transport.close()


def protocol_with(limits: ApiLimits) -> type[HeaderTimeoutProtocol]:
    return type("ApiProtocol", (HeaderTimeoutProtocol,), {"header_timeout": limits.header_timeout})


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files to `wanted` (at most the hard limit); returns
    the soft limit in force. Every open connection is a descriptor: 1,000 live streams do not fit in
    the 1,024 many systems start with."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.warning("open-file limit raised from %d to %d for %d connections", soft, target,
                        wanted - FD_HEADROOM)
            soft = target
    return soft


def uvicorn_config(app, host: str, port: int, limits: ApiLimits) -> uvicorn.Config:
    check_uvicorn()
    descriptors = raise_descriptor_limit(limits.max_connections + FD_HEADROOM)
    max_connections = limits.max_connections
    if descriptors < max_connections + FD_HEADROOM:
        max_connections = max(64, descriptors - FD_HEADROOM)
        log.warning("open-file limit %d (hard): serving at most %d connections, not %d", descriptors,
                    max_connections, limits.max_connections)
    trusted = limits.trusted_proxies
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", http=protocol_with(limits),
        timeout_keep_alive=limits.keep_alive, limit_concurrency=max_connections,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
        h11_max_incomplete_event_size=16 * 1024,  # a request head over 16 KiB is a 400
        timeout_graceful_shutdown=5, server_header=False)


async def serve(app, host: str, port: int, limits: ApiLimits) -> None:
    await uvicorn.Server(uvicorn_config(app, host, port, limits)).serve()
