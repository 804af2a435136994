"""What every command shares: the error console, a clear failure, instants given on the command line."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import orjson
import typer
from rich.console import Console
from rich.text import Text

from schemas.decode import FUTURE_TOLERANCE_SECONDS
from schemas.events import EARLIEST_YEAR, LATEST_YEAR


def console(stderr: bool = False, width: int | None = None, soft_wrap: bool = False) -> Console:
    """A console that prints data as it is: no markup (a unit named `[/]` must not crash a table),
    control characters stripped by Rich. Styles go through `Text`, never through markup."""
    return Console(stderr=stderr, width=width, markup=False, soft_wrap=soft_wrap)


# Messages are lines: not cut at 80 columns when stderr is a file or a pipe (a log, a test, grep).
err = console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)  # one line, however narrow
    raise typer.Exit(code)


def parse_instant(text: str, option: str) -> int:
    """Epoch seconds of an ISO-8601 instant that carries its UTC offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} must be ISO-8601 with an offset, got {text!r}")
    if moment.tzinfo is None:
        fail(f"{option} needs a UTC offset (e.g. +07:00), got {text!r}")
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        fail(f"{option} must fall in {EARLIEST_YEAR}-{LATEST_YEAR}, the years events can have, got {text!r}")
    return int(moment.timestamp())


def dump(data: object) -> None:
    """JSON for machines, on stdout."""
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def not_after(now: str | None) -> int:
    """Epoch seconds after which an event is refused as `future_time`: `--now` (default: the wall
    clock — the CLI's one reading of it) plus the tolerance for drifting source clocks."""
    moment = parse_instant(now, "--now") if now is not None else int(time.time())
    return moment + FUTURE_TOLERANCE_SECONDS


PERIOD_HELP = ('month:YYYY-MM, quarter:YYYY-QN, year:YYYY, or as people write them: "Tháng 9/2026", '
               '"Quý III/2026", "Năm 2026", 2026-09.')


def output_file(path: Path, option: str) -> Path:
    """A file a command will write: its folder is made now, before any long work, and a path that
    cannot be written (a folder, a read-only place) is one line."""
    if path.is_dir():
        fail(f"{option} {path} is a folder: give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"cannot create the folder of {option} {path}: {error.strerror or error}")
    return path
