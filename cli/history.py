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

from schemas import Rejection, decode_message
from schemas.events import EventBase


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
    rejected: Counter = field(default_factory=Counter)
    examples: list[tuple[int, str]] = field(default_factory=list)


def read_events(stream: IO[bytes], stats: ReadStats, rejects: IO[bytes] | None = None) -> Iterator[EventBase]:
    """Decode a JSON-lines history; bad lines are counted (and written to `rejects`), never fatal."""
    for number, line in enumerate(stream, start=1):
        line = line.strip()
        if not line:
            continue
        stats.lines += 1
        for item in decode_message(line):
            if isinstance(item, Rejection):
                stats.rejected[item.reason] += 1
                if len(stats.examples) < 20:
                    stats.examples.append((number, item.describe()))
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
