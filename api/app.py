"""The HTTP API and the dashboard: reads the Redis projection only (never Kafka, never the tables).

Errors are JSON `{"error": CODE, "detail": TEXT}` with a 4xx status; write endpoints need the bearer
token from configuration (`CHISO766_API_TOKEN`) and answer 401 without it.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import orjson
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from sse_starlette.sse import EventSourceResponse

from api.office import install_office
from api.store import NotFound, Page, ProjectionReader
from contracts import commands
from contracts.keys import late_list
from contracts.messages import Command
from scoring.periods import PeriodError, parse_period
from support.resources import load_ruleset

STATIC = Path(__file__).parent / "static"
MAX_QUERY_BYTES = 2048
CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
AlertKind = Literal["approaching", "apology_due", "overdue"]
ListQuery = Annotated[Literal["overdue", "approaching"], Query(alias="list", description="which list")]


@dataclass
class ApiConfig:
    redis_url: str = field(default_factory=lambda: os.environ.get("CHISO766_REDIS_URL", "redis://127.0.0.1:6379/0"))
    namespace: str = field(default_factory=lambda: os.environ.get("CHISO766_NAMESPACE", "chiso766"))
    token: str | None = field(default_factory=lambda: os.environ.get("CHISO766_API_TOKEN") or None)
    heartbeat_seconds: float = 15.0


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _period(text: str) -> str:
    try:
        return parse_period(text).key
    except PeriodError as error:
        raise ApiError(400, "malformed_period", str(error)) from error


PeriodQuery = Annotated[str, Query(max_length=32, description="month:YYYY-MM, quarter:YYYY-QN or year:YYYY",
                                   examples=["year:2026"])]
PageQuery = Annotated[int, Query(ge=1, le=100_000, description="1-based page number")]
SizeQuery = Annotated[int, Query(ge=1, le=500, description="items per page")]
Code = Annotated[str, PathParam(pattern=CODE_PATTERN, description="unit code", examples=["H15", "H15.01"])]
UnitFilter = Annotated[str | None, Query(pattern=CODE_PATTERN, description="a unit and everything below it "
                                                                          "(default: every unit with findings)")]
OfficerId = Annotated[str, PathParam(pattern=CODE_PATTERN, description="officer id", examples=["H15.01-CB01"])]


def create_app(config: ApiConfig | None = None) -> FastAPI:
    config = config or ApiConfig()
    registry = CollectorRegistry()
    requests_total = Counter("chiso766_api_requests_total", "API requests by route and status",
                             ["route", "status"], registry=registry)
    live_clients = Gauge("chiso766_api_live_clients", "Open server-sent-event connections", registry=registry)
    client = aioredis.from_url(config.redis_url)
    projection = ProjectionReader(client, config.namespace, load_ruleset())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="chiso766 API", version="1.0", lifespan=lifespan,
                  description="Decision 766 scores, deadlines and alerts, live from the Redis projection.")

    @app.middleware("http")
    async def guard_and_count(request: Request, call_next):
        if len(request.url.query.encode()) > MAX_QUERY_BYTES:
            response: Response = _error(414, "query_too_long", f"the query string is over {MAX_QUERY_BYTES} bytes")
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        requests_total.labels(route=getattr(route, "path", "other"), status=str(response.status_code)).inc()
        return response

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.error, error.detail)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return _error(404, error.error, error.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
        return _error(422, "invalid_request", details)

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        presented = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
        if not config.token or presented is None or not hmac.compare_digest(presented, config.token):
            raise ApiError(401, "unauthorized", "a valid bearer token is required for write endpoints")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_office(app, projection)  # names, roll-ups, why points were lost, freshness, the notice (api/office.py)

    @app.get("/api/health", summary="Liveness: Redis reachable, a worker heartbeat")
    async def health() -> dict:
        await client.ping()
        beat = await projection.worker_heartbeat()
        return {"status": "ok", "namespace": config.namespace, "worker": beat["mode"] if beat else None,
                "worker_state": beat.get("state") if beat else None}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/ruleset", summary="The ruleset in force: groups and indicators with their maxima")
    async def ruleset() -> dict:
        rules = projection.ruleset
        return {"id": rules.id,
                "groups": [{"code": code, "max": float(spec["max"]), "name_vi": spec.get("name_vi", code),
                            "name_en": spec.get("name_en", code)} for code, spec in rules.groups.items()],
                "indicators": [{"code": i.code, "ref": i.ref, "group": i.group, "max": float(i.max)}
                               for i in rules.indicators]}

    @app.get("/api/periods", summary="Periods that have scores")
    async def periods() -> dict:
        return {"periods": await projection.periods()}

    @app.get("/api/groups", summary="Peer groups of a period")
    async def groups(period: PeriodQuery) -> dict:
        period = _period(period)
        await projection.meta(period)
        sizes = await projection.peer_groups(period)
        return {"period": period, "groups": list(sizes), "units": sizes}

    @app.get("/api/leaderboard", summary="Leaderboard of a peer group: rank, total, six groups, change")
    async def leaderboard(period: PeriodQuery, group: Annotated[str, Query(max_length=64)] = "provinces",
                          page: PageQuery = 1, size: SizeQuery = 50) -> dict:
        return await projection.leaderboard(_period(period), group, Page(page, size))

    @app.get("/api/units/{code}", summary="A unit: total, groups, indicators, trend, children, stake")
    async def unit(code: Code, period: PeriodQuery) -> dict:
        return await projection.unit_page(_period(period), code)

    @app.get("/api/units/{code}/officers", summary="Officers of a unit with their tallies")
    async def officers(code: Code, period: PeriodQuery) -> dict:
        period = _period(period)
        return {"period": period, "unit": code, "officers": await projection.officers(period, code)}

    @app.get("/api/units/{code}/dossiers", summary="Overdue or approaching dossiers of a unit, by due")
    async def unit_dossiers(code: Code, which: ListQuery = "overdue", page: PageQuery = 1,
                            size: SizeQuery = 50) -> dict:
        await projection.require_unit(code)
        return await _dossiers(which, "unit", code, page, size)

    @app.get("/api/officers/{officer}/dossiers", summary="Overdue or approaching dossiers an officer holds")
    async def officer_dossiers(officer: OfficerId, which: ListQuery = "overdue", page: PageQuery = 1,
                               size: SizeQuery = 50) -> dict:
        return await _dossiers(which, "officer", officer, page, size)

    @app.get("/api/units/{code}/late", summary="Dossiers completed late in a month (the monthly list)")
    async def late(code: Code, month: Annotated[str, Query(pattern=MONTH_PATTERN, examples=["2026-09"])],
                   page: PageQuery = 1, size: SizeQuery = 50) -> dict:
        await projection.require_unit(code)
        return await projection.dossiers(late_list(month), "unit", code, Page(page, size),
                                         parse_period(_period(f"month:{month}")))

    async def _dossiers(which: str, owner_kind: str, owner: str, page: int, size: int) -> dict:
        months = [key for key in await projection.periods() if key.startswith("month:")]
        stake_period = parse_period(months[-1]) if months else None
        return await projection.dossiers(which, owner_kind, owner, Page(page, size), stake_period)

    @app.get("/api/quality", summary="Data-quality counts: findings per unit, refused events by reason")
    async def quality(period: PeriodQuery, unit: UnitFilter = None) -> dict:
        return await projection.quality(_period(period), unit)

    @app.get("/api/alerts", summary="Recent alerts, newest first")
    async def alerts(unit: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
                     kind: AlertKind | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        return {"alerts": await projection.recent_alerts(limit, unit, kind)}

    @app.get("/api/live", summary="Server-sent events: `scores` when a period is rewritten, `alert` per alert",
             response_class=Response, responses={200: {"content": {"text/event-stream": {}}}})
    async def live(request: Request, unit: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
                   kind: AlertKind | None = None) -> EventSourceResponse:
        async def events() -> AsyncIterator[dict]:
            pubsub = client.pubsub()
            await pubsub.subscribe(projection.keys.scores_live, projection.keys.alerts_live)
            live_clients.inc()
            try:
                while not await request.is_disconnected():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    body = orjson.loads(message["data"])
                    if message["channel"].decode() == projection.keys.scores_live:
                        yield {"event": "scores", "data": orjson.dumps(body).decode()}
                    elif (unit is None or body.get("unit") == unit) and (kind is None or body.get("kind") == kind):
                        yield {"event": "alert", "data": orjson.dumps(body).decode()}
            finally:
                live_clients.dec()
                await pubsub.aclose()

        return EventSourceResponse(events(), ping=int(config.heartbeat_seconds))

    @app.post("/api/admin/rebuild", status_code=202, dependencies=[Depends(require_token)],
              summary="Ask the workers to rewrite the projection from table state (bearer token)")
    async def rebuild() -> dict:
        request_id = await commands.queue(client, projection.keys, Command(command="rebuild"))
        return {"status": "accepted", "request": request_id}

    return app


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": _clean(detail)}, status_code=status)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text)[:500]


async def serve(config: ApiConfig, host: str, port: int) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port, log_level="warning"))
    await server.serve()


def run(config: ApiConfig, host: str, port: int) -> None:
    asyncio.run(serve(config, host, port))
