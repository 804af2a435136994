"""Commands for the live system: stack, worker, replay, scores."""

from __future__ import annotations

import asyncio
import signal
from contextlib import nullcontext as _nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from cli.common import PERIOD_HELP, dump, err, fail, parse_instant
from cli.current import CURRENT, Namespace, or_current
from cli.history import file_position, history_size, missing, open_history, progress_columns
from support import stack as local_stack

stack_app = typer.Typer(help="The local Kafka + Redis stack (real broker, real server).", no_args_is_help=True)

Partitions = Annotated[int, typer.Option("--partitions", min=1, max=64, help="Partitions of the input topics.")]
StackName = Annotated[str, typer.Option("--name", help="Stack name (one directory per name).")]


@stack_app.command("up")
def stack_up(
    name: StackName = "default",
    brokers: Annotated[int, typer.Option("--brokers", help="Kafka nodes: 1, or 3 (a KRaft quorum; topics "
                                                           "with 3 copies, min.insync.replicas 2).")] = 1,
    persist_redis: Annotated[bool, typer.Option("--persist-redis", help="Redis keeps an append-only file "
                                                "(fsynced), so a restarted server has its data.")] = False,
) -> None:
    """Fetch Kafka if needed, start the broker(s) and redis-server, print where they listen."""
    try:
        info = local_stack.up(name, brokers, persist_redis)
    except local_stack.StackError as error:
        fail(str(error))
    print(f"bootstrap={info.bootstrap}")
    print(f"redis_url={info.redis_url}")


@stack_app.command("down")
def stack_down(name: StackName = "default") -> None:
    """Stop the stack's processes and remove its data."""
    err.print("stopped" if local_stack.down(name) else "nothing was running")


Node = Annotated[str, typer.Option("--node", help="redis, or kafka-N for broker N.")]


@stack_app.command("kill")
def stack_kill(node: Node, name: StackName = "default",
               sig: Annotated[str, typer.Option("--signal", help="KILL (a crash), TERM, STOP or CONT.")] = "KILL",
               ) -> None:
    """Send a signal to one node of the stack (fault testing): SIGKILL by default."""
    sig = sig.upper().removeprefix("SIG")
    if sig not in ("KILL", "TERM", "STOP", "CONT"):
        fail("--signal is KILL, TERM, STOP or CONT")
    try:
        pid = local_stack.kill_node(name, node, getattr(signal, f"SIG{sig}"))
    except local_stack.StackError as error:
        fail(str(error))
    err.print(f"{node} (pid {pid}): SIG{sig}")


@stack_app.command("start")
def stack_start(node: Node, name: StackName = "default",
                wipe: Annotated[bool, typer.Option("--wipe", help="Start it without its data.")] = False) -> None:
    """Start a killed node again on its ports (with its data unless --wipe); waits until the stack answers."""
    try:
        pid = local_stack.start_node(name, node, wipe)
    except local_stack.StackError as error:
        fail(str(error))
    err.print(f"{node} started (pid {pid})" + (" without its data" if wipe else ""))


@stack_app.command("status")
def stack_status(name: StackName = "default") -> None:
    status = local_stack.status(name)
    dump(status)
    if not status.get("running"):
        raise typer.Exit(1)


def _settings(namespace: str, partitions: int, **overrides):
    from streams.config import resolve

    try:
        return resolve(namespace, partitions=partitions, **overrides)
    except (RuntimeError, ValueError) as error:  # ValueError: a setting from the environment that is not one
        fail(str(error))


def worker(
    namespace: Namespace = CURRENT,
    mode: Annotated[str, typer.Option(help="live: as of = wall clock; replay: as of = event time.")] = "live",
    partitions: Partitions = 4,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    tick: Annotated[float, typer.Option(help="Seconds between live clock ticks.")] = 5.0,
    store: Annotated[str, typer.Option(help="Table store: memory:// or rocksdb:// (on local disk).")] = "memory://",
) -> None:
    """Run a worker: consume the namespace's topics, keep tables, project into Redis."""
    if mode not in ("live", "replay"):
        fail("--mode is live or replay")
    if store not in ("memory://", "rocksdb://"):
        fail("--store is memory:// or rocksdb://")
    from streams.worker import run_worker

    run_worker(_settings(namespace, partitions, mode=mode, metrics_port=metrics_port, tick_seconds=tick,
                         store=store))


def _worker_running(settings) -> bool:
    """Whether a worker's heartbeat is in Redis; an unreachable Redis is one line, not a traceback."""
    from redis.exceptions import RedisError

    from streams import replay as replaying

    try:
        return asyncio.run(replaying.worker_running(settings))
    except (RedisError, OSError) as error:
        from cli.outages import outage

        fail(outage(error) or f"Redis answered with an error: {error}")  # never the URL: it may hold a password


def replay(
    history: Annotated[str | None, typer.Argument(help="History (.jsonl or .jsonl.gz) or - for stdin.")] = None,
    namespace: Namespace = "replay",
    from_timestamp: Annotated[str | None, typer.Option(
        "--from-timestamp", help="Instead of a file: replay SOURCE-NAMESPACE's topics from this ISO instant.")] = None,
    source_namespace: Annotated[str, typer.Option(callback=or_current, show_default="the current namespace",
                                                  help="The live namespace --from-timestamp reads.")] = CURRENT,
    partitions: Partitions = 4,
    wait: Annotated[bool, typer.Option("--wait", help="Return once the namespace has scored all of it.")] = False,
    rate: Annotated[float | None, typer.Option(help="Publish at about this many events per second (a live feed; "
                                                    "no watermark).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds --wait may take.")] = 1800.0,
) -> None:
    """Publish a history into a namespace whose workers run in replay mode (as of = event time)."""
    from streams import replay as replaying

    if (history is None) == (from_timestamp is None):
        fail("give a HISTORY file or --from-timestamp, not both")
    if history is not None and missing(history):
        fail(f"history file {history} does not exist")
    settings = _settings(namespace, partitions, mode="replay")
    lines_from_topics = None
    if from_timestamp is not None:
        if source_namespace == namespace:
            fail("--from-timestamp replays into a fresh namespace: choose a --namespace other than the source")
        since = parse_instant(from_timestamp, "--from-timestamp")
        lines_from_topics = asyncio.run(replaying.read_namespace(_settings(source_namespace, partitions), since * 1000))
        err.print(f"read {len(lines_from_topics):,} events of {source_namespace} since {from_timestamp}")
    started = None
    log_path = None
    if wait and not _worker_running(settings):
        log_path = Path(settings.data_dir) / f"{namespace}-worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = replaying.start_worker(settings, "replay", str(log_path))
        err.print(f"started a replay worker for {namespace} (log: {log_path})")
    # The bar counts bytes of the file on disk (compressed or not), or the events read from the topics.
    total = history_size(history) if history else len(lines_from_topics or ())
    try:
        with (open_history(history) if history else _nullcontext(lines_from_topics)) as stream, Progress(
                *progress_columns(total is not None), console=err, transient=True) as progress:
            task = progress.add_task("publish", total=total, count=0, what="events")
            position = file_position(stream) if history and total is not None else None

            def published_so_far(lines: int) -> None:
                progress.update(task, completed=position() if position else lines, count=lines)

            published = asyncio.run(replaying.publish(settings, stream, published_so_far,
                                                      watermark=rate is None, rate=rate))
            err.print(f"published {published.events:,} events ({published.malformed:,} malformed) to {namespace}")
            if wait:
                task = progress.add_task("scored", total=len(published.sources), count=0, what="sources")
                try:
                    asyncio.run(replaying.wait_for(settings, published, timeout,
                                                   lambda done, _: progress.update(task, completed=done, count=done),
                                                   started))
                except (RuntimeError, TimeoutError) as error:
                    fail(f"{error}" + (f"; see {log_path}" if started is not None else ""))
                err.print("all sources scored")
    finally:
        if started is not None:
            replaying.stop_worker(started)


def scores(
    period: Annotated[str, typer.Option(help=PERIOD_HELP)],
    namespace: Namespace = CURRENT,
    as_json: Annotated[bool, typer.Option("--json/--table", help="JSON report (default) or a ranked table.")] = True,
    watch: Annotated[float | None, typer.Option(help="With --table: refresh every this many seconds.")] = None,
    duration: Annotated[float | None, typer.Option(help="With --watch: stop after this many seconds.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="vi or en.")] = "vi",
) -> None:
    """Read live scores from the Redis projection (the `chiso766 score --json` shape, or a table)."""
    import redis.asyncio as aioredis

    from api.store import read_report
    from scoring.periods import PeriodError, parse_period

    try:
        period = parse_period(period).key  # "Tháng 9/2026" and month:2026-09 alike
    except PeriodError as error:
        fail(str(error))
    settings = _settings(namespace, 4)

    async def read() -> dict | None:
        client = aioredis.from_url(settings.redis_url)
        try:
            return await read_report(client, settings.keys, period)
        finally:
            await client.aclose()

    if not as_json:
        from cli.tables import watch_report

        watch_report(read, period, lang, watch, duration)
        return
    report = asyncio.run(read())
    if report is None:
        fail(f"no scores for {period} in namespace {namespace}")
    dump(report)


def project(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rewrite the namespace's Redis projection.")] = False,
    namespace: Namespace = CURRENT,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the workers.")] = 300.0,
) -> None:
    """Ask the namespace's workers to rewrite the Redis projection from their table state."""
    from streams import replay as replaying

    if not rebuild:
        fail("nothing to do: pass --rebuild")
    settings = _settings(namespace, 4)
    if not _worker_running(settings):
        fail(f"no worker serves namespace {namespace}: start `chiso766 worker --namespace {namespace}`")

    async def run() -> None:
        requested = await replaying.send_watermarks(settings, 0, kind="rebuild")
        await replaying.wait_for(settings, requested, timeout)

    try:
        asyncio.run(run())
    except TimeoutError as error:
        fail(str(error))
    err.print(f"projection of {namespace} rebuilt")
