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
  PREFIX:rejected, PREFIX:rejected:PERIOD     HASH  reason → events refused (dead letters), all time and by the
                                                    month / quarter / year they were processed in; counted
                                                    as they happen, so a rebuild cannot restore them
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import orjson
import redis.asyncio as aioredis

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


def queue_listings(pipe: aioredis.client.Pipeline, prefix: str, listings: Iterable[Listing]) -> int:
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
        pipe.eval(_LIST_SCRIPT, 0, prefix, orjson.dumps(rows[start:start + SCRIPT_CHUNK]))
    return -(-len(rows) // SCRIPT_CHUNK)


# ARGV: prefix, JSON rows [dossier, unit, officer, procedure, due, state, month, completed] ('' = none).
_LIST_SCRIPT = """
local prefix = ARGV[1]
for _, row in ipairs(cjson.decode(ARGV[2])) do
  local code, unit, officer, procedure, due, state, month, completed = unpack(row)
  local key = prefix .. ':dossier:' .. code
  local entry = redis.call('HGETALL', key)
  if #entry > 0 then
    local old = {}
    for i = 1, #entry, 2 do old[entry[i]] = entry[i + 1] end
    local list = old['list']
    if list == 'late' then list = 'late:' .. (old['month'] or '') end
    if list ~= 'open' then
      local base = prefix .. ':' .. list
      if old['unit'] ~= '' then redis.call('ZREM', base .. ':unit:' .. old['unit'], code) end
      if old['officer'] ~= '' then redis.call('ZREM', base .. ':officer:' .. old['officer'], code) end
    end
    redis.call('DEL', key)
  end
  local list, score = nil, nil
  if (state == 'overdue' or state == 'approaching') and due ~= '' then list, score = state, due end
  if state == 'late' and completed ~= '' then list, score = 'late:' .. month, completed end
  if list then
    if unit ~= '' then redis.call('ZADD', prefix .. ':' .. list .. ':unit:' .. unit, score, code) end
    if officer ~= '' then redis.call('ZADD', prefix .. ':' .. list .. ':officer:' .. officer, score, code) end
  end
  if state ~= 'closed' then
    redis.call('HSET', key, 'unit', unit, 'officer', officer, 'procedure', procedure, 'due', due, 'list', state)
    if month ~= '' then redis.call('HSET', key, 'month', month, 'completed', completed) end
  end
end
return 0
"""


def queue_rejections(pipe: aioredis.client.Pipeline, prefix: str, reasons: Mapping[str, int], moment: int) -> None:
    """Add a batch's refused events, by reason, to the all-time hash and those of the month, quarter
    and year of `moment` (when they were processed: a refused event may carry no usable date of
    its own). Queued on the batch's pipeline, so they cost no round trip of their own; a batch with
    no rejections queues nothing."""
    if not reasons:
        return
    keys = (f"{prefix}:rejected", *(f"{prefix}:rejected:{key}" for key in period_keys_at_month(month_index(moment))))
    for key in keys:
        for reason, count in reasons.items():
            pipe.hincrby(key, reason, count)


def alert_json_head(alert: Alert) -> str:
    """The alert's JSON object without its closing brace; the script adds `points_at_stake`."""
    return orjson.dumps({
        "alert_id": alert.alert_id, "kind": alert.kind, "dossier": alert.dossier, "procedure": alert.procedure,
        "unit": alert.unit, "officer": alert.officer, "due": iso(alert.due), "at": iso(alert.at),
        "threshold_working_minutes": alert.threshold_minutes}).decode()[:-1]


def queue_alerts(pipe: aioredis.client.Pipeline, prefix: str, alerts: Iterable[Alert], maxlen: int) -> int:
    """Append each new alert to the stream and the live channel; an alert id seen before is skipped.
    One script call per chunk (claim the id, read the unit's points at stake, publish), each
    replying how many it published. Returns the number of calls queued on `pipe`."""
    rows = []
    months: dict[str, str] = {}
    for alert in alerts:
        month = f"{local(alert.at):%Y-%m}"
        if month not in months:
            months[month] = parse_period(f"month:{month}").key
        rows.append((alert.alert_id, f"{prefix}:stake:{months[month]}", alert.unit or "", alert.kind,
                     alert_json_head(alert)))
    for start in range(0, len(rows), SCRIPT_CHUNK):
        pipe.eval(_ALERT_SCRIPT, 0, prefix, maxlen, ALERT_MARKER_SECONDS,
                  orjson.dumps(rows[start:start + SCRIPT_CHUNK]))
    return -(-len(rows) // SCRIPT_CHUNK)


# ARGV: prefix, stream max length, marker seconds, JSON rows [id, stake key, unit, kind, body without
# its last field]; the body is completed with the stake read here, in the same step as the claim.
_ALERT_SCRIPT = """
local prefix, maxlen, ttl = ARGV[1], ARGV[2], ARGV[3]
local sent = 0
for _, row in ipairs(cjson.decode(ARGV[4])) do
  local id, stake_key, unit, kind, head = unpack(row)
  if redis.call('SET', prefix .. ':alert:' .. id, '1', 'NX', 'EX', ttl) then
    local stake = redis.call('HGET', stake_key, unit)
    local body = head .. ',"points_at_stake":' .. (stake or 'null') .. '}'
    redis.call('XADD', prefix .. ':alerts', 'MAXLEN', '~', maxlen, '*', 'alert', body, 'kind', kind, 'unit', unit)
    redis.call('PUBLISH', prefix .. ':alerts:live', body)
    sent = sent + 1
  end
end
return sent
"""


async def read_report(client: aioredis.Redis, prefix: str, period: str) -> dict | None:
    """The `chiso766 score --json` shape, read back from the projection."""
    meta = await client.hgetall(f"{prefix}:meta:{period}")
    if not meta:
        return None
    entries = await client.hgetall(f"{prefix}:scores:{period}")
    units = sorted((orjson.loads(value) for value in entries.values()), key=lambda unit: unit["code"])
    return {"period": period, "as_of": meta[b"as_of"].decode(), "ruleset": meta[b"ruleset"].decode(),
            "units": units}

