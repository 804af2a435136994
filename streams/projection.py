"""The Redis projection: absolute values computed from table state, so it can be rebuilt any time.

Keys (PREFIX is the namespace):
  PREFIX:periods                              SET   periods with scores
  PREFIX:meta:PERIOD                          HASH  as_of, ruleset, updated_at
  PREFIX:scores:PERIOD                        HASH  unit code → unit JSON (the `chiso766 score --json` entry)
  PREFIX:leaderboard:PERIOD:PEER_GROUP        ZSET  unit code scored by total
  PREFIX:officers:PERIOD:UNIT                 HASH  officer id → JSON counters and points_cost
  PREFIX:stake:PERIOD                         HASH  unit code → points one more overdue dossier costs
  PREFIX:overdue:unit:UNIT / :officer:ID      ZSET  dossier code scored by due (epoch seconds)
  PREFIX:approaching:unit:UNIT / :officer:ID  ZSET  dossier code scored by due
  PREFIX:dossier:CODE                         HASH  unit, officer, procedure, due, list[, month, completed]
                                                    (open dossiers and those completed late)
  PREFIX:late:MONTH:unit:UNIT / :officer:ID   ZSET  dossiers completed late in MONTH (YYYY-MM), by completion
  PREFIX:alerts                               STREAM alert entries (bounded, read with consumer groups)
  PREFIX:alerts:live                          PUBSUB channel, the same JSON for live pages
  PREFIX:scores:live                          PUBSUB {"period", "as_of"} each time a period's scores are rewritten
  PREFIX:commands                             STREAM requests from the API (rebuild), taken by one worker
  PREFIX:alert:ID                             STRING dedupe marker (30 days): redelivery raises nothing twice
  PREFIX:keys:PERIOD                          SET   leaderboard and officer keys of a period (for rewrites)
  PREFIX:replay:TOKEN                         HASH  source → as_of, once a replay's watermark got through
  PREFIX:sources                              HASH  source → as_of (progress of each input partition)
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import orjson
import redis.asyncio as aioredis

from scoring.alerts import Alert
from scoring.calendar import local
from scoring.periods import parse_period
from scoring.report import unit_json
from scoring.rollup import OfficerTally, UnitScore
from scoring.ruleset import Ruleset, as_number
from scoring.stakes import points_at_stake
from streams.scorer import Listing

ALERT_MARKER_SECONDS = 30 * 86400
LISTS = ("overdue", "approaching")


def iso(moment: int | None) -> str | None:
    return local(moment).isoformat() if moment is not None else None


async def write_scores(client: aioredis.Redis, prefix: str, period: str, as_of: int, ruleset: Ruleset,
                       units: list[UnitScore], officers: list[OfficerTally]) -> None:
    index = f"{prefix}:keys:{period}"  # the per-group and per-unit keys written last time
    old_keys = await client.smembers(index)
    pipe = client.pipeline(transaction=True)
    pipe.delete(f"{prefix}:scores:{period}", f"{prefix}:stake:{period}", index, *old_keys)
    written: list[str] = []
    if units:
        pipe.hset(f"{prefix}:scores:{period}", mapping={
            unit.code: orjson.dumps(unit_json(unit, ruleset)) for unit in units})
        pipe.hset(f"{prefix}:stake:{period}", mapping={
            unit.code: str(as_number(points_at_stake(unit.counts, ruleset))) for unit in units})
        boards: dict[str, dict[str, float]] = {}
        for unit in units:
            boards.setdefault(unit.peer_group, {})[unit.code] = as_number(unit.card.total)
        for peer_group, members in boards.items():
            pipe.zadd(f"{prefix}:leaderboard:{period}:{peer_group}", members)
            written.append(f"{prefix}:leaderboard:{period}:{peer_group}")
    by_unit: dict[str, dict[str, bytes]] = {}
    for tally in officers:
        by_unit.setdefault(tally.unit, {})[tally.officer] = orjson.dumps(
            {**tally.counters, "points_cost": as_number(tally.points_cost)})
    for unit_code, entries in by_unit.items():
        pipe.hset(f"{prefix}:officers:{period}:{unit_code}", mapping=entries)
        written.append(f"{prefix}:officers:{period}:{unit_code}")
    if written:
        pipe.sadd(index, *written)
    pipe.hset(f"{prefix}:meta:{period}", mapping={"as_of": iso(as_of) or "", "ruleset": ruleset.id,
                                                  "updated_at": str(time.time())})
    pipe.sadd(f"{prefix}:periods", period)
    pipe.publish(f"{prefix}:scores:live", orjson.dumps({"period": period, "as_of": iso(as_of)}))
    await pipe.execute()


async def write_listings(client: aioredis.Redis, prefix: str, listings: Iterable[Listing]) -> None:
    pipe = client.pipeline(transaction=False)
    count = 0
    for listing in listings:
        count += 1
        # Drop the dossier from every list it may have been in, then add it where it belongs now.
        previous = f"{prefix}:dossier:{listing.dossier}"
        pipe.eval(_FORGET_SCRIPT, 1, previous, prefix, listing.dossier)
        fields = {"unit": listing.unit or "", "officer": listing.officer or "",
                  "procedure": listing.procedure or "", "due": str(listing.due or ""), "list": listing.state}
        listed: tuple[str, int] | None = None  # (list key part, sort score)
        if listing.state in LISTS and listing.due is not None:
            listed = (listing.state, listing.due)
        elif listing.state == "late" and listing.completed is not None:
            fields["month"] = f"{local(listing.completed):%Y-%m}"
            fields["completed"] = str(listing.completed)
            listed = (f"late:{fields['month']}", listing.completed)
        if listed:
            for owner_kind, owner in (("unit", listing.unit), ("officer", listing.officer)):
                if owner:
                    pipe.zadd(f"{prefix}:{listed[0]}:{owner_kind}:{owner}", {listing.dossier: listed[1]})
        if listing.state in (*LISTS, "open", "late"):
            pipe.hset(previous, mapping=fields)
    if count:
        await pipe.execute()


# Removes a dossier from the lists its hash says it is in, then the hash itself.
_FORGET_SCRIPT = """
local entry = redis.call('HGETALL', KEYS[1])
if #entry == 0 then return 0 end
local fields = {}
for i = 1, #entry, 2 do fields[entry[i]] = entry[i + 1] end
local list = fields['list']
if list == 'late' then list = 'late:' .. fields['month'] end
if list ~= 'open' then
  local base = ARGV[1] .. ':' .. list
  if fields['unit'] ~= '' then redis.call('ZREM', base .. ':unit:' .. fields['unit'], ARGV[2]) end
  if fields['officer'] ~= '' then redis.call('ZREM', base .. ':officer:' .. fields['officer'], ARGV[2]) end
end
redis.call('DEL', KEYS[1])
return 1
"""


def alert_json(alert: Alert, stake: float | None) -> dict:
    return {"alert_id": alert.alert_id, "kind": alert.kind, "dossier": alert.dossier, "procedure": alert.procedure,
            "unit": alert.unit, "officer": alert.officer, "due": iso(alert.due), "at": iso(alert.at),
            "threshold_working_minutes": alert.threshold_minutes, "points_at_stake": stake}


async def publish_alerts(client: aioredis.Redis, prefix: str, alerts: Iterable[Alert], maxlen: int) -> int:
    """Append each new alert to the stream and the live channel; an alert id seen before is skipped.
    Three round trips for the whole batch: claim the ids, read the stakes, publish."""
    alerts = list(alerts)
    if not alerts:
        return 0
    claim = client.pipeline(transaction=False)
    for alert in alerts:
        claim.set(f"{prefix}:alert:{alert.alert_id}", "1", nx=True, ex=ALERT_MARKER_SECONDS)
    fresh = [alert for alert, claimed in zip(alerts, await claim.execute(), strict=True) if claimed]
    if not fresh:
        return 0
    stakes = client.pipeline(transaction=False)
    for alert in fresh:
        stakes.hget(f"{prefix}:stake:{parse_period(f'month:{local(alert.at):%Y-%m}').key}", alert.unit or "")
    publish = client.pipeline(transaction=False)
    for alert, stake in zip(fresh, await stakes.execute(), strict=True):
        body = orjson.dumps(alert_json(alert, float(stake) if stake else None))
        publish.xadd(f"{prefix}:alerts", {"alert": body, "kind": alert.kind, "unit": alert.unit or ""},
                     maxlen=maxlen, approximate=True)
        publish.publish(f"{prefix}:alerts:live", body)
    await publish.execute()
    return len(fresh)


async def read_report(client: aioredis.Redis, prefix: str, period: str) -> dict | None:
    """The `chiso766 score --json` shape, read back from the projection."""
    meta = await client.hgetall(f"{prefix}:meta:{period}")
    if not meta:
        return None
    entries = await client.hgetall(f"{prefix}:scores:{period}")
    units = sorted((orjson.loads(value) for value in entries.values()), key=lambda unit: unit["code"])
    return {"period": period, "as_of": meta[b"as_of"].decode(), "ruleset": meta[b"ruleset"].decode(),
            "units": units}

