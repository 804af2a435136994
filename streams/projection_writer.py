"""Writing the Redis projection: absolute values computed from table state, so it can be rebuilt any
time. Every key and script is `contracts.keys`'s."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import orjson
import redis.asyncio as aioredis

from contracts.keys import ALERT_SCRIPT, LIST_SCRIPT, RedisKeys
from scoring.alerts import Alert
from scoring.calendar import iso, local
from scoring.periods import month_index, parse_period, period_keys_at_month
from scoring.report import unit_json
from scoring.rollup import OfficerTally, UnitScore
from scoring.ruleset import Ruleset, as_number
from scoring.stakes import points_at_stake
from streams.scorer import Listing

ALERT_MARKER_SECONDS = 30 * 86400
SCRIPT_CHUNK = 2000  # rows per script call: Redis serves nothing else while a script runs


async def write_scores(client: aioredis.Redis, keys: RedisKeys, period: str, as_of: int, ruleset: Ruleset,
                       units: list[UnitScore], officers: list[OfficerTally]) -> None:
    index = keys.period_keys(period)  # the per-group and per-unit keys written last time
    old_keys = await client.smembers(index)
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.scores(period), keys.stake(period), index, *old_keys)
    written: list[str] = []
    if units:
        pipe.hset(keys.scores(period), mapping={
            unit.code: orjson.dumps(unit_json(unit, ruleset)) for unit in units})
        pipe.hset(keys.stake(period), mapping={
            unit.code: str(as_number(points_at_stake(unit.counts, ruleset))) for unit in units})
        boards: dict[str, dict[str, float]] = {}
        for unit in units:
            boards.setdefault(unit.peer_group, {})[unit.code] = as_number(unit.card.total)
        for peer_group, members in boards.items():
            pipe.zadd(keys.leaderboard(period, peer_group), members)
            written.append(keys.leaderboard(period, peer_group))
    by_unit: dict[str, dict[str, bytes]] = {}
    for tally in officers:
        by_unit.setdefault(tally.unit, {})[tally.officer] = orjson.dumps(
            {**tally.counters, "points_cost": as_number(tally.points_cost)})
    for unit_code, entries in by_unit.items():
        pipe.hset(keys.officers(period, unit_code), mapping=entries)
        written.append(keys.officers(period, unit_code))
    if written:
        pipe.sadd(index, *written)
    pipe.hset(keys.meta(period), mapping={"as_of": iso(as_of) or "", "ruleset": ruleset.id,
                                          "updated_at": str(time.time())})
    pipe.sadd(keys.periods, period)
    pipe.publish(keys.scores_live, orjson.dumps({"period": period, "as_of": iso(as_of)}))
    await pipe.execute()


def queue_listings(pipe: aioredis.client.Pipeline, keys: RedisKeys, listings: Iterable[Listing]) -> int:
    """Each dossier leaves every list its hash says it was in and joins the one it belongs to now:
    one script call per chunk of dossiers, so the client encodes one argument, not five commands
    each. Returns the number of calls queued on `pipe`."""
    rows = []
    for listing in listings:
        month = completed = ""
        if listing.state == "late" and listing.completed is not None:
            month, completed = f"{local(listing.completed):%Y-%m}", str(listing.completed)
        rows.append((listing.dossier, listing.unit or "", listing.officer or "", listing.procedure or "",
                     str(listing.due or ""), listing.state, month, completed))
    for start in range(0, len(rows), SCRIPT_CHUNK):
        pipe.eval(LIST_SCRIPT, 0, keys.prefix, orjson.dumps(rows[start:start + SCRIPT_CHUNK]))
    return -(-len(rows) // SCRIPT_CHUNK)


def queue_rejections(pipe: aioredis.client.Pipeline, keys: RedisKeys, reasons: Mapping[str, int], moment: int) -> None:
    """Add a batch's refused events, by reason, to the all-time hash and those of the month, quarter
    and year of `moment` (when they were processed: a refused event may carry no usable date of
    its own). Queued on the batch's pipeline, so they cost no round trip of their own; a batch with
    no rejections queues nothing."""
    if not reasons:
        return
    for key in (keys.rejected, *(keys.rejected_in(period) for period in period_keys_at_month(month_index(moment)))):
        for reason, count in reasons.items():
            pipe.hincrby(key, reason, count)


def alert_json_head(alert: Alert) -> str:
    """The alert's JSON object without its closing brace; the script adds `points_at_stake`."""
    return orjson.dumps({
        "alert_id": alert.alert_id, "kind": alert.kind, "dossier": alert.dossier, "procedure": alert.procedure,
        "unit": alert.unit, "officer": alert.officer, "due": iso(alert.due), "at": iso(alert.at),
        "threshold_working_minutes": alert.threshold_minutes}).decode()[:-1]


def queue_alerts(pipe: aioredis.client.Pipeline, keys: RedisKeys, alerts: Iterable[Alert], maxlen: int) -> int:
    """Append each new alert to the stream and the live channel; an alert id seen before is skipped.
    One script call per chunk (claim the id, read the unit's points at stake, publish), each
    replying how many it published. Returns the number of calls queued on `pipe`."""
    rows = []
    months: dict[str, str] = {}
    for alert in alerts:
        month = f"{local(alert.at):%Y-%m}"
        if month not in months:
            months[month] = parse_period(f"month:{month}").key
        rows.append((alert.alert_id, keys.stake(months[month]), alert.unit or "", alert.kind,
                     alert_json_head(alert)))
    for start in range(0, len(rows), SCRIPT_CHUNK):
        pipe.eval(ALERT_SCRIPT, 0, keys.prefix, maxlen, ALERT_MARKER_SECONDS,
                  orjson.dumps(rows[start:start + SCRIPT_CHUNK]))
    return -(-len(rows) // SCRIPT_CHUNK)
