"""Read-side commands: the HTTP API, the monthly export, the live leaderboard and alert subscribers.
All of them read the Redis projection only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import orjson
import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.common import console, err, fail
from cli.labels import LABELS, Language, peer_group_label
from scoring.ruleset import GROUP_CODES

if TYPE_CHECKING:
    from api.store import ProjectionReader

T = TypeVar("T")
Namespace = Annotated[str, typer.Option("--namespace", help="Topic and Redis key prefix.")]
LangOption = Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")]
out = console(width=None if sys.stdout.isatty() else 160)


def _redis_url() -> str:
    from support.endpoints import redis_url

    try:
        return redis_url()
    except RuntimeError as error:
        fail(str(error))


def redis_endpoint() -> tuple[str, str]:
    """The Redis URL, and where it points for messages (never the URL itself: it may hold a password)."""
    from urllib.parse import urlsplit

    url = _redis_url()
    parts = urlsplit(url)
    return url, parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"


def _projection(namespace: str):
    import redis.asyncio as aioredis

    from api.store import ProjectionReader
    from support.resources import load_ruleset

    return ProjectionReader(aioredis.from_url(_redis_url()), namespace, load_ruleset())


def read_projection(namespace: str, read: Callable[[ProjectionReader], Awaitable[T]]) -> T:
    """What `read` finds in the namespace's projection. An unreachable Redis, an unknown unit or
    period and a malformed period are each one line on stderr (exit 2), never a traceback."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from api.store import NotFound
    from scoring.periods import PeriodError

    projection = _projection(namespace)
    server = projection.client.connection_pool.connection_kwargs
    where = server.get("path") or f"{server.get('host')}:{server.get('port')}"  # never the URL: it may hold a password

    async def run() -> T:
        try:
            return await read(projection)
        finally:
            await projection.client.aclose()

    try:
        return asyncio.run(run())
    except (RedisConnectionError, RedisTimeoutError):
        fail(f"cannot reach Redis at {where} (is it running?)")
    except NotFound as error:
        fail(error.detail)
    except PeriodError as error:
        fail(str(error))


def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8766,
    namespace: Namespace = "chiso766",
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the live dashboard at /."""
    from api.app import ApiConfig, run

    try:
        config = ApiConfig(redis_url=_redis_url(), namespace=namespace)
    except ValueError as error:  # a limit set to something that is not a positive number (CHISO766_API_*)
        fail(str(error))
    if not config.token:
        err.print("CHISO766_API_TOKEN is not set: write endpoints (rebuild) will answer 401")
    err.print(f"dashboard: http://{host}:{port}/   API: http://{host}:{port}/openapi.json")
    run(config, host, port)


def export(
    period: Annotated[str, typer.Option(help="The month: month:YYYY-MM.")],
    unit: Annotated[str, typer.Option("--unit", help="The province (or any unit): it and every unit below it.")],
    out_path: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[Literal["xlsx", "csv"], typer.Option("--format", help="xlsx (one sheet per table) or csv.")]
    = "xlsx",
    namespace: Namespace = "chiso766",
    lang: LangOption = Language.vi,
) -> None:
    """Write the monthly notice: ranking with movement, overdue and late dossiers, officers, online rates."""
    from api.export import monthly_notice, write_csv, write_xlsx
    from api.store import NotFound
    from scoring.periods import PeriodError

    async def build():
        projection = _projection(namespace)
        try:
            return await monthly_notice(projection, period, unit, lang.value)
        finally:
            await projection.client.aclose()

    try:
        sheets = asyncio.run(build())
    except (PeriodError, ValueError, NotFound) as error:
        fail(str(getattr(error, "detail", error)))
    (write_xlsx if fmt == "xlsx" else write_csv)(sheets, out_path)
    err.print(f"wrote {out_path}: " + ", ".join(f"{sheet.title} ({len(sheet.rows)})" for sheet in sheets))


def _board_table(board: dict, labels: dict[str, str], previous: dict[str, float]) -> Table:
    table = Table(title=f"{labels['title']} — {peer_group_label(board['group'], labels)} — {board['period']}",
                  caption=f"{labels['as_of']} {board['as_of'][:16]}")
    for column in (labels["rank"], "", labels["code"], labels["unit"], *GROUP_CODES, labels["total"]):
        table.add_column(column, justify="right" if column not in (labels["code"], labels["unit"]) else "left")
    for row in board["units"]:
        moved = row["movement"]
        arrow = Text("" if moved is None else (f"▲{moved}" if moved > 0 else f"▼{-moved}" if moved < 0 else "="),
                     style="green" if moved and moved > 0 else "red" if moved and moved < 0 else "")
        before = previous.get(row["code"])
        total = Text(f"{row['total']:.2f}",
                     style="bold yellow" if before is not None and before != row["total"] else "")
        table.add_row(str(row["rank"]), arrow, row["code"], row["name"],
                      *(f"{row['groups'].get(code, 0):.2f}" for code in GROUP_CODES), total)
    return table


def leaderboard(
    period: Annotated[str, typer.Option(help="month:YYYY-MM, quarter:YYYY-QN or year:YYYY.")],
    group: Annotated[str, typer.Option(help="Peer group: provinces, ministries, agencies:H15, communes:H15.")]
    = "provinces",
    watch: Annotated[bool, typer.Option("--watch", help="Keep the table on screen and refresh it live.")] = False,
    duration: Annotated[float | None, typer.Option(help="With --watch: stop after this many seconds.")] = None,
    size: Annotated[int, typer.Option(min=1, max=500, help="Rows.")] = 50,
    namespace: Namespace = "chiso766",
    lang: LangOption = Language.vi,
) -> None:
    """The leaderboard of a peer group, with rank movement since the previous period."""
    from api.store import NotFound, Page
    from scoring.periods import PeriodError, parse_period

    try:
        period = parse_period(period).key
    except PeriodError as error:
        fail(str(error))
    labels = LABELS[lang]

    async def run() -> None:
        projection = _projection(namespace)
        previous: dict[str, float] = {}
        try:
            board = await projection.leaderboard(period, group, Page(1, size))
            if not watch:
                out.print(_board_table(board, labels, previous))
                return
            pubsub = projection.client.pubsub()
            await pubsub.subscribe(projection.keys.scores_live)
            deadline = time.monotonic() + duration if duration else None
            with Live(_board_table(board, labels, previous), console=out, refresh_per_second=4) as live:
                while deadline is None or time.monotonic() < deadline:
                    # Scores are rewritten at most once a second; wake on that, or every 5 s regardless.
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    previous = {row["code"]: row["total"] for row in board["units"]}
                    board = await projection.leaderboard(period, group, Page(1, size))
                    live.update(_board_table(board, labels, previous))
            await pubsub.aclose()
        finally:
            await projection.client.aclose()

    try:
        asyncio.run(run())
    except NotFound as error:
        fail(error.detail)
    except KeyboardInterrupt:
        pass


def alerts(
    consumer_group: Annotated[str, typer.Option("--consumer-group", help="Subscriber name: where it left off is "
                                                                         "kept per group.")],
    follow: Annotated[bool, typer.Option("--follow", help="Keep waiting for new alerts.")] = False,
    unit: Annotated[str | None, typer.Option("--unit", help="Only alerts of this unit.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="approaching, apology_due, overdue (repeat).")]
    = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="A new group starts at the oldest alert kept "
                                                                  "(default: only new alerts).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    duration: Annotated[float | None, typer.Option(help="With --follow: stop after this many seconds.")] = None,
    namespace: Namespace = "chiso766",
) -> None:
    """Deadline alerts through a Redis consumer group: acks what it printed, resumes after a restart."""
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    from api.store import alert_entry_wanted
    from contracts.keys import RedisKeys

    kinds = set(kind or ())
    unknown = kinds - {"approaching", "apology_due", "overdue"}
    if unknown:
        fail(f"unknown alert kind(s): {', '.join(sorted(unknown))}")
    key = RedisKeys(namespace).alerts
    consumer = f"{socket.gethostname()}-{consumer_group}"

    def show(alert: dict) -> None:
        if as_json:
            sys.stdout.write(orjson.dumps(alert).decode() + "\n")
            sys.stdout.flush()
        else:
            out.print(Text.assemble((alert["kind"], "bold"), f" {alert['dossier']} · {alert['unit']} · "
                                    f"{alert.get('officer') or '—'} · due {alert['due']} · stake "
                                    f"{alert.get('points_at_stake')}"))

    async def run() -> None:
        client = aioredis.from_url(_redis_url())
        try:
            try:
                await client.xgroup_create(key, consumer_group, id="0" if from_start else "$", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            deadline = time.monotonic() + duration if duration else None
            cursor = "0"  # first what this consumer was given but never acked (a crash), then new entries
            while True:
                block = 1000 if follow and cursor == ">" else None
                answer = await client.xreadgroup(consumer_group, consumer, {key: cursor}, count=200, block=block)
                entries = answer[0][1] if answer else []
                for entry_id, fields in entries:
                    if alert_entry_wanted(fields, unit, kinds):
                        show(orjson.loads(fields[b"alert"]))
                    await client.xack(key, consumer_group, entry_id)
                if cursor == "0" and not entries:
                    cursor = ">"
                elif cursor == ">" and not entries and not follow:
                    return
                if deadline is not None and time.monotonic() > deadline:
                    return
        finally:
            await client.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
