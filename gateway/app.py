"""`chiso766 gateway`: the national portal's sync protocol, as a province's one-stop system speaks it.

POST /auth                 {"username", "password"} (header `dstcode`) → {"session", "error_code": 0}
POST /integration          the envelope {"session", "madonvi", "service", "isUpdating", "data": [...]}
                           or a bare array of records with ?session=&MaDinhDanhDV=&service=&isUpdating=
GET  /health               {"status": "ok"} once Kafka took the topics and the registry, else 503
                           {"status": "waiting_for_kafka"}

Answers are the portal's: {"error_code": "0", "message": ...} when every record was taken, else a
non-zero code with a reason per refused record. A record is acknowledged only once Kafka has its events
(acks=all); Kafka unreachable → HTTP 503, error_code "5", so the source system's queue sends it again —
deterministic event ids make the resend harmless. The gateway starts whether or not Kafka is up, and
answers 503 until it reaches it (retrying every 1 s, doubling to 30 s), rather than refusing to start:
a source system queues and retries on 503, while a gateway that is not there is an outage. Nothing of
a record's personal data is logged or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway import logs
from gateway.publisher import KafkaUnavailable, Publisher
from ingest.calls import CallError, envelope, translate_call
from ingest.dvcqg import DossierTranslator
from ingest.privacy import Pseudonymiser
from schemas import Rejection, decode
from schemas import events as ev

log = logging.getLogger("chiso766.gateway")
OK, REFUSED, BAD_CALL, LIMIT, UNAVAILABLE, SESSION = "0", "1", "2", "4", "5", "-1"
RETRY_FIRST_SECONDS, RETRY_LAST_SECONDS = 1.0, 30.0


@dataclass
class GatewayConfig:
    bootstrap: str
    namespace: str
    secret: str
    credentials: dict[str, str]  # username → password, per source system
    partitions: int = 4
    session_seconds: int = 1800
    max_body_bytes: int = 8 * 1024 * 1024
    max_records: int = 1000
    publish_timeout: float = 10.0
    registry: list[bytes] = field(default_factory=list)  # unit.upserted lines published at start


def load_credentials(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """Source systems' credentials: CHISO766_GATEWAY_CREDENTIALS (JSON {"username": "password"}) or the
    file CHISO766_GATEWAY_CREDENTIALS_FILE names. Never in the repository."""
    raw = environ.get("CHISO766_GATEWAY_CREDENTIALS", "")
    path = environ.get("CHISO766_GATEWAY_CREDENTIALS_FILE", "")
    if not raw and path:
        raw = Path(path).read_text()
    if not raw:
        raise ValueError("no credentials: set CHISO766_GATEWAY_CREDENTIALS (JSON {\"username\": \"password\"})"
                         " or CHISO766_GATEWAY_CREDENTIALS_FILE")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"the credentials are not JSON ({error.msg} at {error.pos})") from None
    if not isinstance(data, dict) or not data or \
            not all(name.strip() and isinstance(password, str) and password for name, password in data.items()):
        raise ValueError("credentials must be a JSON object {\"username\": \"password\", ...} with no empty"
                         " username or password")
    return data


def answer(code: str, message: str, status: int = 200, **extra) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message, **extra}, status_code=status)


class Sessions:
    def __init__(self, lifetime: int):
        self.lifetime = lifetime
        self.live: dict[str, tuple[str, float]] = {}  # token → (username, expiry)

    def open(self, username: str) -> str:
        now = time.monotonic()
        if len(self.live) > 10_000:
            self.live = {token: entry for token, entry in self.live.items() if entry[1] > now}
        token = secrets.token_urlsafe(24)
        self.live[token] = (username, now + self.lifetime)
        return token

    def user(self, token: str) -> str | None:
        entry = self.live.get(token)
        if entry is None or entry[1] <= time.monotonic():
            self.live.pop(token, None)
            return None
        return entry[0]


def create_app(config: GatewayConfig) -> FastAPI:
    publisher = Publisher(config.bootstrap, config.namespace, config.partitions, config.publish_timeout)
    translator = DossierTranslator(Pseudonymiser(config.secret))
    sessions = Sessions(config.session_seconds)
    state = {"started": False}

    async def connect() -> None:
        """Kafka, the topics and the registry, tried until they are there: the gateway answers from
        its first second, with 503 (so the source system's queue keeps the records) until then."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await publisher.start()
                if config.registry:
                    events = [(event, ev.encode(event)) for line in config.registry
                              if not isinstance(event := decode(line), Rejection)]
                    await publisher.publish(events, [], "registry")
                    log.info("published %d registry events", len(events))
                state["started"] = True
                log.info("connected to Kafka at %s: taking calls", config.bootstrap)
                return
            except (KafkaError, KafkaUnavailable, OSError, TimeoutError) as error:
                await publisher.stop()
                publisher.producer = None
                log.warning("Kafka at %s is not reachable (%s): calls are answered 503 until it is; next try in"
                            " %.0f s", config.bootstrap, type(error).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_LAST_SECONDS)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        connecting = asyncio.create_task(connect())
        try:
            yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await publisher.stop()

    app = FastAPI(title="chiso766 gateway", lifespan=lifespan,
                  description="Takes DVCQG dossier-sync calls (DongBoHoSoMC, CapNhatTienDoHoSoMC, LayThuTuc).")

    @app.get("/health")
    async def health() -> JSONResponse:
        if state["started"]:
            return JSONResponse({"status": "ok", "namespace": config.namespace})
        return JSONResponse({"status": "waiting_for_kafka", "namespace": config.namespace}, status_code=503)

    @app.post("/auth")
    async def auth(request: Request) -> JSONResponse:
        body = await _body(request, 64 * 1024)
        if isinstance(body, JSONResponse):
            return body
        username = body.get("username") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        expected = config.credentials.get(username) if isinstance(username, str) else None
        if expected is None or not isinstance(password, str) or \
                not secrets.compare_digest(expected.encode(), password.encode()):
            log.warning("refused a session for %r", username[:64] if isinstance(username, str) else None)
            return answer(SESSION, "Sai tên đăng nhập hoặc mật khẩu / wrong username or password", 401)
        return JSONResponse({"session": sessions.open(username), "error_code": 0,
                             "expires_in": config.session_seconds})

    @app.post("/integration")
    async def integration(request: Request) -> JSONResponse:
        received = int(time.time())
        body = await _body(request, config.max_body_bytes)
        if isinstance(body, JSONResponse):
            return body
        query = request.query_params
        token = (body.get("session") if isinstance(body, dict) else None) or query.get("session") \
            or request.headers.get("session") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not isinstance(token, str) or sessions.user(token) is None:
            return answer(SESSION, "Phiên không hợp lệ hoặc đã hết hạn / session missing, unknown or expired;"
                          " call /auth again", 401)
        try:
            service, unit, records = envelope(body, query.get("service", ""), query.get("MaDinhDanhDV", "")
                                              or query.get("madonvi", ""))
        except CallError as error:
            return answer(BAD_CALL, f"{error.reason}: {error.detail}", 400)
        if len(records) > config.max_records:
            return answer(LIMIT, f"{len(records):,} records in one call; at most {config.max_records:,}:"
                          " send them in several calls", 413)
        result = translate_call(translator, service, unit, records, received)
        try:
            await publisher.publish(result.events, result.rejections, service)
        except KafkaUnavailable as error:
            log.error("call of %d %s records not acknowledged: %s", len(records), service, error)
            return answer(UNAVAILABLE, "Tạm thời không nhận được hồ sơ, vui lòng gửi lại / not taken, Kafka"
                          " is unavailable: send the call again", 503)
        taken = result.records - len(result.rejections)
        log.info("%s unit=%s records=%d taken=%d refused=%d events=%d approximate=%d", service, unit or "-",
                 result.records, taken, len(result.rejections), len(result.events), result.approximate)
        if result.rejections:
            return answer(REFUSED, f"{taken} hồ sơ đã nhận, {len(result.rejections)} bị từ chối / {taken} taken,"
                          f" {len(result.rejections)} refused", accepted=taken,
                          rejected=[rejection.as_json() for rejection in result.rejections])
        return answer(OK, f"Thành công / {taken} taken", accepted=taken)

    return app


async def _body(request: Request, limit: int) -> object:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return answer(LIMIT, f"the body is {int(declared):,} bytes; at most {limit:,}", 413)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return answer(LIMIT, f"the body is over {limit:,} bytes", 413)
    try:
        return orjson.loads(bytes(data))
    except orjson.JSONDecodeError as error:
        return answer(BAD_CALL, f"not_json: the body is not JSON ({error.msg} at {error.pos})", 400)


def run(config: GatewayConfig, host: str, port: int) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logs.install()
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)
