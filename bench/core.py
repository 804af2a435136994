"""Core benchmark: the Python limit (orjson + a dict update) against decode + lifecycle + tallies.

Run: `python -m bench.core [--dossiers N] [--batch N]`. Both loops run over the same simulated
history in the same process, alternating, best of three; the last line printed is one JSON object
{"raw_eps", "core_eps", "ratio", "events"}.
"""

from __future__ import annotations

import argparse
import gc
import time

import orjson

from schemas import Rejection, decode
from scoring.engine import Engine
from support.resources import load_calendar, load_ruleset
from support.simulate import Simulator


def raw_loop(lines: list[bytes]) -> float:
    """The floor any Python consumer pays: decode each event and touch a dict keyed by entity."""
    started = time.perf_counter()
    latest: dict[str, bytes] = {}
    for line in lines:
        event = orjson.loads(line)
        latest[event.get("dossier_code") or event["event_id"]] = event["event_type"]
    return time.perf_counter() - started


def core_loop(lines: list[bytes], batch: int, ruleset, calendar) -> float:
    """What a worker does: validate-decode, reduce dossier states, emit tally deltas per batch."""
    started = time.perf_counter()
    engine = Engine(ruleset, calendar)
    for offset in range(0, len(lines), batch):
        events = [decode(line) for line in lines[offset:offset + batch]]
        engine.apply_batch([e for e in events if not isinstance(e, Rejection)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dossiers", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ruleset, calendar = load_ruleset(), load_calendar()
    lines = list(Simulator(766, args.dossiers, calendar=calendar).events())
    raw_times, core_times = [], []
    for _ in range(args.rounds):
        gc.collect()
        raw_times.append(raw_loop(lines))
        gc.collect()
        core_times.append(core_loop(lines, args.batch, ruleset, calendar))
    raw_eps, core_eps = len(lines) / min(raw_times), len(lines) / min(core_times)
    print(f"events {len(lines):,} · batch {args.batch} · best of {args.rounds}")
    print(f"raw  orjson + dict update      {raw_eps:>12,.0f} events/s")
    print(f"core decode + lifecycle + tally {core_eps:>11,.0f} events/s")
    print(f"core / raw                      {core_eps / raw_eps:>11.1%}")
    print(orjson.dumps({"raw_eps": round(raw_eps), "core_eps": round(core_eps),
                        "ratio": round(core_eps / raw_eps, 4), "events": len(lines)}).decode())


if __name__ == "__main__":
    main()
