"""The outermost layer of the app: a query string over the limit is a 414 before anything runs; every
response gets the security headers (dashboard, static files, API, errors) and is counted; anything
that still raised becomes a JSON 500, so a client never sees a plain-text "Internal Server Error"
and the traceback is logged once.

A pure ASGI middleware, not `@app.middleware("http")` (Starlette's BaseHTTPMiddleware): that one
passes every chunk of a response through a memory stream and a task of its own, which made each
event sent to 1,000 open live streams cost several task switches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("chiso766.api")

# Only the page's own origin: the dashboard is one HTML page, one script and one stylesheet, all under
# /static, and talks to /api only. No inline script or style (app.js sizes its bars through the CSSOM,
# which CSP allows), no framing, no plugins, no <base>, forms post nowhere else.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = tuple((name.encode(), value.encode()) for name, value in (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP level 2
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
))
_NAMES = {name.lower() for name, _ in SECURITY_HEADERS}


class Guard:
    def __init__(self, app: ASGIApp, max_query_bytes: int,
                 on_response: Callable[[Scope, int], None] = lambda scope, status: None):
        self.app = app
        self.max_query_bytes = max_query_bytes
        self.on_response = on_response  # (scope, status): the route is in scope["route"] by then

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(name, value) for name, value in message.get("headers", ()) if name.lower() not in _NAMES]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
                self.on_response(scope, message["status"])
            await send(message)

        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            await self._answer(send_with_headers, send, 414, "query_too_long",
                               f"the query string is over {self.max_query_bytes} bytes")
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("%s %s raised", scope.get("method"), scope.get("path"))
            if started:  # the response is under way: all that is left is to drop the connection
                raise
            await self._answer(send_with_headers, send, 500, "internal_error",
                               "the server failed to answer; it is logged")

    @staticmethod
    async def _answer(send_start: Send, send: Send, status: int, error: str, detail: str) -> None:
        body = orjson.dumps({"error": error, "detail": detail})
        await send_start({"type": "http.response.start", "status": status,
                          "headers": [(b"content-type", b"application/json"),
                                      (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
