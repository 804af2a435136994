"""The HTTP API and the dashboard: reads the Redis projection only (never Kafka, never the tables).

Errors are JSON `{"error": CODE, "detail": TEXT}` (`api.errors`): 4xx for a bad request, 503
`projection_unavailable` while Redis does not answer; write endpoints need the bearer token from
configuration (`CHISO766_API_TOKEN`) and answer 401 without it. Every response carries the security
headers of `api.guard`; what one client and all clients may hold is `api.limits`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from api.errors import REDIS_UNAVAILABLE, ApiError, install_error_handlers, unavailable
from api.errors import json_error as _error
from api.guard import Guard
from api.limits import ApiLimits
from api.live import LiveHub
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
TARGET_PATTERN = r"^(next-band|rank:[1-9][0-9]{0,4}|band:[^:|]{1,32}|total:[0-9]{1,3}(\.[0-9]{1,2})?)$"
AlertKind = Literal["approaching", "apology_due", "overdue"]
ListQuery = Annotated[Literal["overdue", "approaching"], Query(alias="list", description="which list")]


@dataclass
class ApiConfig:
    redis_url: str = field(default_factory=lambda: os.environ.get("CHISO766_REDIS_URL", "redis://127.0.0.1:6379/0"))
    namespace: str = field(default_factory=lambda: os.environ.get("CHISO766_NAMESPACE", "chiso766"))
    token: str | None = field(default_factory=lambda: os.environ.get("CHISO766_API_TOKEN") or None)
    heartbeat_seconds: float = 15.0
    limits: ApiLimits = field(default_factory=ApiLimits.from_env)


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
    limits = config.limits
    client = redis_client(config.redis_url, limits)
    projection = ProjectionReader(client, config.namespace, load_ruleset())
    hub = LiveHub(config.redis_url, projection.keys.scores_live, projection.keys.alerts_live, limits,
                  live_clients.set)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start(wait=limits.redis_timeout)
        yield
        await hub.stop()
        await client.aclose()

    # No /docs or /redoc: they load Swagger UI / ReDoc from a CDN with inline script, which the
    # same-origin Content-Security-Policy forbids. The OpenAPI document stays at /openapi.json.
    app = FastAPI(title="chiso766 API", version="1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Decision 766 scores, deadlines and alerts, live from the Redis projection.")

    def count(scope: dict, status: int) -> None:
        requests_total.labels(route=getattr(scope.get("route"), "path", "other"), status=str(status)).inc()

    # Query length, security headers, counting and the last-resort 500, outside everything else.
    app.add_middleware(Guard, max_query_bytes=MAX_QUERY_BYTES, on_response=count)
    install_error_handlers(app)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return _error(404, error.error, error.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
        return _error(422, "invalid_request", details)

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        presented = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
        if not config.token or presented is None or not token_matches(presented, config.token):
            raise ApiError(401, "unauthorized", "a valid bearer token is required for write endpoints")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_office(app, projection)  # names, roll-ups, why points were lost, freshness, the notice (api/office.py)

    @app.get("/api/health", summary="Liveness: Redis reachable (else 503 naming it), a worker heartbeat",
             response_model=None,
             responses={503: {"description": "a dependency does not answer: `dependencies` names it"}})
    async def health() -> Response | dict:
        try:
            await client.ping()
            beat = await projection.worker_heartbeat()
        except REDIS_UNAVAILABLE as error:
            return unavailable(error, status="unavailable", dependencies={"redis": "unavailable"},
                               live=hub.state())
        return {"status": "ok", "namespace": config.namespace, "dependencies": {"redis": "ok"},
                "worker": beat["mode"] if beat else None, "worker_state": beat.get("state") if beat else None,
                "live": hub.state()}

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

    @app.get("/api/reconcile", summary="A unit's published (national portal) against its own scores, with "
                                       "the dossiers that explain the gap when a reconciliation was stored")
    async def reconcile(unit: Annotated[str, Query(pattern=CODE_PATTERN)], period: PeriodQuery) -> dict:
        from api.reconcile import reconciliation

        return await reconciliation(projection, _period(period), unit)

    @app.get("/api/units/{code}/plan", summary="The fewest actions that bring a unit to a target this period "
                                                "(plans stored with chiso766 plan … --store)")
    async def plan(code: Code, period: PeriodQuery,
                   target: Annotated[str, Query(pattern=TARGET_PATTERN, examples=["next-band", "rank:3"])]
                   = "next-band") -> dict:
        from api.reconcile import stored_plan

        return await stored_plan(projection, _period(period), code, target)

    @app.get("/api/alerts", summary="Recent alerts, newest first")
    async def alerts(unit: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
                     kind: AlertKind | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        return {"alerts": await projection.recent_alerts(limit, unit, kind)}

    @app.get("/api/live", summary="Server-sent events: `scores` when a period is rewritten, `alert` per alert, "
             "`status` when Redis goes or comes back", response_class=Response,
             responses={200: {"content": {"text/event-stream": {}}},
                        429: {"description": "too many streams from this address"},
                        503: {"description": "every stream taken, or Redis unreachable"}})
    async def live(request: Request, unit: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
                   kind: AlertKind | None = None) -> Response:
        listener = hub.admit(request.client.host if request.client else "unknown", unit, kind)
        return hub.response(listener, config.heartbeat_seconds)

    @app.post("/api/admin/rebuild", status_code=202, dependencies=[Depends(require_token)],
              summary="Ask the workers to rewrite the projection from table state (bearer token); a request "
                      "while one is pending joins it", responses={429: {"description": "one was queued just now"}})
    async def rebuild() -> dict:
        queued = await commands.queue_once(client, projection.keys, Command(command="rebuild"),
                                           limits.rebuild_interval)
        if queued.outcome == "rate_limited":
            wait = max(1, round(queued.retry_after))
            raise ApiError(429, "rate_limited", f"a rebuild was queued less than {limits.rebuild_interval:g} s ago; "
                           f"retry in {wait} s", {"Retry-After": str(wait)})
        return {"status": "accepted", "request": queued.request, "joined": queued.outcome == "pending"}

    return app


def redis_client(url: str, limits: ApiLimits) -> aioredis.Redis:
    """The requests' Redis client: a bounded pool that waits `redis_timeout` for a free connection, and
    one quick retry (a pooled connection to a restarted server fails once, then reconnects) — a Redis
    that is down costs a request about `redis_timeout`, then a 503."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=limits.redis_connections, timeout=limits.redis_timeout,
        socket_timeout=limits.redis_timeout, socket_connect_timeout=limits.redis_timeout,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), 1))
    return aioredis.Redis(connection_pool=pool)


def token_matches(presented: str, expected: str) -> bool:
    """In constant time, for any header: Starlette hands headers over decoded as Latin-1, so their
    bytes come back exactly (a non-ASCII token is a 401, never a TypeError's 500); the configured
    token is UTF-8. Comparing digests hides the expected token's length too."""
    return hmac.compare_digest(hashlib.sha256(presented.encode("latin-1", "replace")).digest(),
                               hashlib.sha256(expected.encode("utf-8")).digest())


async def serve(config: ApiConfig, host: str, port: int) -> None:
    from api.server import serve as serve_limited

    await serve_limited(create_app(config), host, port, config.limits)


def run(config: ApiConfig, host: str, port: int) -> None:
    asyncio.run(serve(config, host, port))
