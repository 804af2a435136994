"""Every error the API answers is JSON `{"error": CODE, "detail": TEXT}` (README, "The read side"):
the app's own refusals, unknown routes and methods, an unreachable Redis (503
`projection_unavailable`), and — last resort — anything that raised (500 `internal_error`, the
traceback logged once, never sent)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

log = logging.getLogger("chiso766.api")
PROJECTION_UNAVAILABLE = "projection_unavailable"
RETRY_AFTER_SECONDS = 5  # what a 503 for an unreachable Redis tells clients to wait
# Both mean "Redis does not answer now": refused, reset, timed out, still loading its data, or no free
# connection in the pool (MaxConnectionsError is a ConnectionError).
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 414: "query_too_long"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = dict(headers or {})


def json_error(status: int, error: str, detail: str, headers: Mapping[str, str] | None = None, /,
               **extra: object) -> JSONResponse:
    return JSONResponse({"error": error, "detail": clean(detail), **extra}, status_code=status, headers=headers)


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text)[:500]


def unavailable(error: BaseException, /, **extra: object) -> JSONResponse:
    """503 for a Redis that does not answer; the reason names no address or password."""
    return json_error(503, PROJECTION_UNAVAILABLE, f"the Redis projection does not answer ({type(error).__name__}); "
                      "retry shortly", {"Retry-After": str(RETRY_AFTER_SECONDS)}, **extra)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return json_error(error.status, error.error, error.detail, error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = HTTP_ERRORS.get(error.status_code, f"http_{error.status_code}")
        detail = f"no route {request.url.path}" if error.status_code == 404 else str(error.detail)
        return json_error(error.status_code, code, detail, error.headers)

    for kind in REDIS_UNAVAILABLE:
        @app.exception_handler(kind)
        async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
            log.warning("%s %s: Redis unavailable: %s", request.method, request.url.path, type(error).__name__)
            return unavailable(error)
