"""Reading and writing event histories (JSON lines, optionally gzip), and the batch scorer around them."""

from __future__ import annotations

import errno
import gzip
import os
import secrets
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import orjson
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.common import err, fail
from schemas import Rejection, decode_message
from schemas.decode import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES
from schemas.events import EventBase
from scoring.engine import Engine
from scoring.lifecycle import epoch_seconds
from scoring.quality import RefusedEvent
from scoring.ruleset import Ruleset
from support.resources import load_calendar


@contextmanager
def open_history(path: str, mode: str = "rb") -> Iterator[IO[bytes]]:
    """A history file by path, `-` for stdin/stdout; `.gz` names are gzip (written with mtime 0 so
    the same content gives the same bytes)."""
    if path == "-":
        yield sys.stdin.buffer if "r" in mode else sys.stdout.buffer
        return
    if path.endswith(".gz"):
        raw = open(path, mode)  # noqa: SIM115 - closed below, wrapped by gzip
        try:
            with gzip.GzipFile(filename="", fileobj=raw, mode=mode, mtime=0) as stream:
                yield stream  # type: ignore[misc]
        finally:
            raw.close()
        return
    with open(path, mode) as stream:
        yield stream  # type: ignore[misc]


@contextmanager
def replacing(path: str) -> Iterator[IO[bytes]]:
    """An output file (gzip when named `.gz`, `-` for stdout) written beside its place under a hidden
    temporary name and renamed over it only when the writing ends well: a failed run leaves the file
    that was there, never a half-written or empty one. OSError (no such folder, a folder, a full
    disk) is the caller's to report."""
    if path == "-":
        yield sys.stdout.buffer
        return
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder", path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    raw = open(temporary, "xb")  # noqa: SIM115 - closed below; "x" honours the umask, unlike mkstemp
    try:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as stream:
                yield stream  # type: ignore[misc]
        else:
            yield raw
        raw.close()
        os.replace(temporary, target)
    finally:
        raw.close()
        temporary.unlink(missing_ok=True)


@dataclass
class ReadStats:
    lines: int = 0
    events: int = 0
    bytes: int = 0  # of the history read so far (uncompressed), for progress bars
    rejected: Counter = field(default_factory=Counter)
    after_cutoff: int = 0  # valid events left out because they come after --as-of
    examples: list[tuple[int, str]] = field(default_factory=list)
    # With `keep_rejections`, every refused event as (reason, unit, dossier, occurred_at), read from
    # its raw JSON where it is readable: the data-quality report attributes them to units and periods.
    keep_rejections: bool = False
    rejections: list[RefusedEvent] = field(default_factory=list)

    def record(self, number: int, rejection: Rejection) -> None:
        self.rejected[rejection.reason] += 1
        if len(self.examples) < 20:
            self.examples.append((number, rejection.describe()))
        if self.keep_rejections:
            self.rejections.append(_refused(rejection))


def _refused(rejection: Rejection) -> RefusedEvent:
    try:
        data = orjson.loads(rejection.raw) if len(rejection.raw) <= MAX_EVENT_BYTES else None
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return rejection.reason, None, None, None
    unit, dossier, occurred = data.get("unit_code"), data.get("dossier_code"), data.get("occurred_at")
    try:
        at = int(datetime.fromisoformat(occurred).timestamp()) if isinstance(occurred, str) else None
    except (ValueError, OverflowError, OSError):
        at = None
    return (rejection.reason, unit if isinstance(unit, str) else None, dossier if isinstance(dossier, str) else None,
            at)


def history_size(path: str) -> int | None:
    """Bytes a progress bar can count to: the file's size on disk, compressed or not (None for stdin)."""
    if path == "-":
        return None
    return Path(path).stat().st_size


def file_position(stream: IO[bytes]) -> Callable[[], int]:
    """How far into the file on disk a history stream has read: for gzip the compressed position of
    the file under it (`GzipFile.fileobj`), so a bar over `history_size` reaches 100 % at the end."""
    raw = getattr(stream, "fileobj", None) or stream
    return raw.tell


def progress_columns(total_known: bool) -> list:
    """A bar with the count so far (task fields `count` and `what`), and, when the total is known, the
    share done and the time left."""
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[count]:,} {task.fields[what]}")]
    if total_known:
        return [*columns, TaskProgressColumn(), TimeElapsedColumn(), TextColumn("·"), TimeRemainingColumn()]
    return [*columns, TimeElapsedColumn()]


def read_events(stream: IO[bytes], stats: ReadStats, rejects: IO[bytes] | None = None,
                not_after: int | None = None) -> Iterator[EventBase]:
    """Decode a JSON-lines history; bad lines are counted (and written to `rejects`), never fatal.
    Events dated after `not_after` are rejected as `future_time`."""
    for number, line in enumerate(_bounded_lines(stream), start=1):
        stats.bytes += len(line)
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")  # the byte-order mark Windows editors write
        line = line.strip()
        if not line:
            continue
        stats.lines += 1
        for item in decode_message(line, not_after):
            if isinstance(item, Rejection):
                stats.record(number, item)
                if rejects is not None:
                    rejects.write(f"line {number}: {item.describe()}\t".encode() + item.raw + b"\n")
            else:
                stats.events += 1
                yield item


def _bounded_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines, none read whole past the largest message: a 300 MB line with no newline costs
    MAX_MESSAGE_BYTES of memory, and comes out just over the limit so it is refused as oversized."""
    limit = MAX_MESSAGE_BYTES + 1
    while line := stream.readline(limit):
        if len(line) == limit and not line.endswith(b"\n"):
            while (rest := stream.readline(limit)) and not rest.endswith(b"\n"):
                pass  # the rest of an oversized line, dropped
        yield line


bounded_lines = _bounded_lines  # for the other commands that read line files (`import`)


def write_lines(path: str, lines: Iterator[bytes]) -> int:
    """Lines written to `path` in place of what was there, only once all are written."""
    count = 0
    try:
        with replacing(path) as out:
            for line in lines:
                out.write(line)
                out.write(b"\n")
                count += 1
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
    return count


def missing(path: str) -> bool:
    return path != "-" and not Path(path).exists()


def load_history(history: str, engine: Engine, cutoff: int | None, not_after: int,
                 rejects: Path | None = None, keep_rejections: bool = False) -> ReadStats:
    """Fold a history file into the engine with a progress bar (by bytes, where the size is
    known), refusing events from the future; `cutoff` leaves out events after it."""
    stats = ReadStats(keep_rejections=keep_rejections)
    try:
        total = history_size(history)
        with open_history(history) as stream, Progress(*progress_columns(total is not None), console=err,
                                                       transient=True) as progress:
            task = progress.add_task("score", total=total, count=0, what="events")
            position = file_position(stream) if total is not None else (lambda: stats.bytes)
            reject_file = rejects.open("wb") if rejects else None
            try:
                events = read_events(stream, stats, reject_file, not_after)
                if cutoff is not None:
                    events = _until(events, cutoff, stats)
                engine.load(_ticking(events, stats, progress, task, position))
            finally:
                if reject_file:
                    reject_file.close()
    except (OSError, EOFError, zlib.error) as error:  # a directory, not gzip, a truncated .gz, a full disk
        fail(f"cannot read {history}: {error or type(error).__name__}")
    return stats


def _until(events: Iterator[EventBase], cutoff: int, stats: ReadStats) -> Iterator[EventBase]:
    for event in events:
        if epoch_seconds(event.occurred_at) <= cutoff:
            yield event
        else:
            stats.after_cutoff += 1


def _ticking(events: Iterator[EventBase], stats: ReadStats, progress: Progress, task: TaskID,
             position: Callable[[], int]) -> Iterator[EventBase]:
    for count, event in enumerate(events, start=1):
        if count % 20000 == 0:
            progress.update(task, completed=position(), count=count)
        yield event


def history_at(history: str, ruleset: Ruleset, cutoff: int | None, not_after: int) -> tuple[Engine, int]:
    """A history folded into a fresh engine (its refusals reported), and the moment to read it at:
    the cutoff, else its latest event. Fails when no event of it is valid."""
    engine = Engine(ruleset, load_calendar())
    report_rejects(load_history(history, engine, cutoff, not_after))
    moment = cutoff if cutoff is not None else engine.latest_event_at
    if moment is None:
        fail(f"{history} holds no valid event")
    return engine, moment


def report_rejects(stats: ReadStats) -> None:
    total = sum(stats.rejected.values())
    err.print(f"{stats.events:,} events read, {total:,} rejected"
              + (f", {stats.after_cutoff:,} after --as-of left out" if stats.after_cutoff else ""))
    if total:
        err.print("  by reason: " + ", ".join(f"{reason} {n:,}" for reason, n in stats.rejected.most_common()))
        for line, reason in stats.examples[:5]:
            err.print(f"  line {line}: {reason}")
