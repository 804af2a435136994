"""Read-side commands: the HTTP API, the monthly export, the live leaderboard and alert subscribers.
All of them read the Redis projection only."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli.common import PERIOD_HELP, console, err, fail
from cli.current import CURRENT, Namespace
from cli.labels import LABELS, Language, peer_group_label
from scoring.ruleset import GROUP_CODES

if TYPE_CHECKING:
    from api.store import ProjectionReader

T = TypeVar("T")
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


def store_hash(key: str, mapping: dict[str, bytes]) -> None:
    """Write one hash of the projection from a command (a stored plan, a reconciliation): an unreachable
    Redis is one line."""
    import redis

    url, where = redis_endpoint()
    client = redis.Redis.from_url(url)
    try:
        if mapping:
            client.hset(key, mapping=mapping)
    except redis.exceptions.ConnectionError:
        fail(f"cannot reach Redis at {where} (is it running?)")
    finally:
        client.close()


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
    namespace: Namespace = CURRENT,
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
    period: Annotated[str, typer.Option(help="The month: month:YYYY-MM, Tháng 10/2026 or 2026-10.")],
    unit: Annotated[str, typer.Option("--unit", help="The province (or any unit): it and every unit below it.")],
    out_path: Annotated[Path, typer.Option("--out", help="File to write (its folder is created if missing).")],
    fmt: Annotated[Literal["pdf", "xlsx", "csv"] | None, typer.Option(
        "--format", help="pdf (print-ready, A4), xlsx (one sheet per table) or csv; default: from --out's suffix, "
                         "else xlsx.")] = None,
    namespace: Namespace = CURRENT,
    lang: LangOption = Language.vi,
) -> None:
    """Write the monthly notice: heading, ranking with bands and movement, and annexes (overdue and late
    dossiers as of the month's end, late-dossier list, online rates, officers)."""
    from rich.progress import Progress

    from api.export import monthly_notice, write_csv, write_xlsx
    from api.store import NotFound
    from cli.history import progress_columns
    from scoring.periods import PeriodError

    fmt = fmt or {".pdf": "pdf", ".csv": "csv"}.get(out_path.suffix.lower(), "xlsx")
    if out_path.exists() and out_path.is_dir():
        fail(f"--out {out_path} is a folder: name the file to write in it")

    async def build(progress: Progress):
        task = progress.add_task("notice", total=None, count=0, what="units")
        projection = _projection(namespace)
        try:
            return await monthly_notice(projection, period, unit, lang.value, lambda done, total: progress.update(
                task, completed=done, total=total, count=done))
        finally:
            await projection.client.aclose()

    try:
        with Progress(*progress_columns(True), console=err, transient=True) as progress:
            notice = asyncio.run(build(progress))
    except (PeriodError, ValueError, NotFound) as error:
        fail(str(getattr(error, "detail", error)))
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "pdf":
            from api.notice_pdf import FontsMissing, write_pdf

            try:
                write_pdf(notice, out_path)
            except FontsMissing as error:
                fail(str(error))
        else:
            (write_xlsx if fmt == "xlsx" else write_csv)(notice.sheets, out_path, notice.heading)
    except OSError as error:
        fail(f"cannot write {out_path}: {error.strerror or error}")
    err.print(f"wrote {out_path} ({notice.month_label}): "
              + ", ".join(f"{sheet.title} ({len(sheet.rows)})" for sheet in notice.sheets), soft_wrap=True)


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


FIRST_SCORES_WAIT = 300.0  # seconds a watch waits for a period's first scores (a worker starting on a new broker)


async def _first_board(projection: ProjectionReader, period: str, group: str, page) -> dict:
    """The leaderboard once the period has scores: a watch started before the worker has scored
    anything (a fresh demo) waits for them, saying so; its --duration counts from then."""
    from api.store import NotFound

    deadline = time.monotonic() + FIRST_SCORES_WAIT
    told = False
    while True:
        try:
            return await projection.leaderboard(period, group, page)
        except NotFound as error:
            if error.error != "unknown_period" or time.monotonic() > deadline:
                raise
            if not told:
                err.print(f"waiting for the first scores of {period} in namespace {projection.keys.prefix}…")
                told = True
            await asyncio.sleep(0.5)


def leaderboard(
    period: Annotated[str, typer.Option(help=PERIOD_HELP)],
    group: Annotated[str, typer.Option(help="Peer group: provinces, ministries, agencies:H15, communes:H15.")]
    = "provinces",
    watch: Annotated[bool, typer.Option("--watch", help="Keep the table on screen and refresh it live.")] = False,
    duration: Annotated[float | None, typer.Option(help="With --watch: stop after this many seconds.")] = None,
    size: Annotated[int, typer.Option(min=1, max=500, help="Rows.")] = 50,
    namespace: Namespace = CURRENT,
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
            board = await (_first_board(projection, period, group, Page(1, size)) if watch
                           else projection.leaderboard(period, group, Page(1, size)))
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
