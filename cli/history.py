"""Reading and writing event histories (JSON lines, optionally gzip), and the batch scorer around them."""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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

from cli.common import err
from schemas import Rejection, decode_message
from schemas.events import EventBase
from scoring.engine import Engine


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


@dataclass
class ReadStats:
    lines: int = 0
    events: int = 0
    bytes: int = 0  # of the history read so far (uncompressed), for progress bars
    rejected: Counter = field(default_factory=Counter)
    examples: list[tuple[int, str]] = field(default_factory=list)
    # With `keep_rejections`, every refused event as (reason, unit, dossier), read from its raw
    # JSON where it is readable: the data-quality report attributes them to units.
    keep_rejections: bool = False
    rejections: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    def record(self, number: int, rejection: Rejection) -> None:
        self.rejected[rejection.reason] += 1
        if len(self.examples) < 20:
            self.examples.append((number, rejection.describe()))
        if self.keep_rejections:
            self.rejections.append((rejection.reason, *_unit_and_dossier(rejection.raw)))


def _unit_and_dossier(raw: bytes) -> tuple[str | None, str | None]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    unit, dossier = data.get("unit_code"), data.get("dossier_code")
    return (unit if isinstance(unit, str) else None), (dossier if isinstance(dossier, str) else None)


def history_size(path: str) -> int | None:
    """Bytes a progress bar can count to: a plain file's size (None for stdin and gzip)."""
    if path == "-" or path.endswith(".gz"):
        return None
    return Path(path).stat().st_size


def read_events(stream: IO[bytes], stats: ReadStats, rejects: IO[bytes] | None = None,
                not_after: int | None = None) -> Iterator[EventBase]:
    """Decode a JSON-lines history; bad lines are counted (and written to `rejects`), never fatal.
    Events dated after `not_after` are rejected as `future_time`."""
    for number, line in enumerate(stream, start=1):
        stats.bytes += len(line)
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


def write_lines(path: str, lines: Iterator[bytes]) -> int:
    count = 0
    with open_history(path, "wb") as out:
        for line in lines:
            out.write(line)
            out.write(b"\n")
            count += 1
    return count


def missing(path: str) -> bool:
    return path != "-" and not Path(path).exists()


def load_history(history: str, engine: Engine, cutoff: int | None, not_after: int,
                 rejects: Path | None = None, keep_rejections: bool = False) -> ReadStats:
    """Fold a history file into the engine with a progress bar (by bytes, where the size is
    known), refusing events from the future; `cutoff` leaves out events after it."""
    stats = ReadStats(keep_rejections=keep_rejections)
    total = history_size(history)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[events]:,} events")]
    if total is not None:
        columns += [TaskProgressColumn(), TimeRemainingColumn()]
    else:
        columns.append(TimeElapsedColumn())
    with open_history(history) as stream, Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("replay", total=total, events=0)
        reject_file = rejects.open("wb") if rejects else None
        try:
            events = read_events(stream, stats, reject_file, not_after)
            if cutoff is not None:
                events = (e for e in events if e.occurred_at.timestamp() <= cutoff)
            engine.load(_ticking(events, stats, progress, task))
        finally:
            if reject_file:
                reject_file.close()
    return stats


def _ticking(events: Iterator[EventBase], stats: ReadStats, progress: Progress, task: TaskID) -> Iterator[EventBase]:
    for count, event in enumerate(events, start=1):
        if count % 20000 == 0:
            progress.update(task, completed=stats.bytes, events=count)
        yield event


def report_rejects(stats: ReadStats) -> None:
    total = sum(stats.rejected.values())
    err.print(f"{stats.events:,} events read, {total:,} rejected")
    if total:
        err.print("  by reason: " + ", ".join(f"{reason} {n:,}" for reason, n in stats.rejected.most_common()))
        for line, reason in stats.examples[:5]:
            err.print(f"  line {line}: {reason}")
