"""Every Redis key of a namespace, and every Lua script that writes them: the one place the workers
(the writer) and the read side (API, CLI) agree on. PREFIX is the namespace.

`SCHEMA` lists each key with its Redis type as the README's key table shows it; tests/test_keys.py
checks that table against it, and each pattern against what the builders make.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Segments the builders and the Lua scripts both use: a script builds keys from its rows, so it spells
# them with these too (formatted in below), never with literals of its own.
DOSSIER, ALERT, ALERTS, LIVE, LATE = "dossier", "alert", "alerts", "live", "late"
UNIT, OFFICER = "unit", "officer"
OPEN_LISTS = ("overdue", "approaching")  # open dossiers by due; completed-late lists are `late_list(month)`


def late_list(month: str) -> str:
    """The list of dossiers completed late in `month` (YYYY-MM)."""
    return f"{LATE}:{month}"


class RedisKeys:
    """The keys of one namespace."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str):
        self.prefix = prefix

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- scores (rewritten whole per period) ----------------------------------------------------
    @property
    def periods(self) -> str:
        return self._key("periods")

    def meta(self, period: str) -> str:
        return self._key("meta", period)

    def scores(self, period: str) -> str:
        return self._key("scores", period)

    def leaderboard(self, period: str, peer_group: str) -> str:
        return self._key("leaderboard", period, peer_group)

    def officers(self, period: str, unit: str) -> str:
        return self._key("officers", period, unit)

    def stake(self, period: str) -> str:
        return self._key("stake", period)

    def period_keys(self, period: str) -> str:
        """The leaderboard and officer keys written for a period, deleted when it is rewritten."""
        return self._key("keys", period)

    @property
    def scores_live(self) -> str:
        return self._key("scores", LIVE)

    # --- dossier lists ---------------------------------------------------------------------------
    def dossier_list(self, which: str, owner_kind: str, owner: str) -> str:
        """`which`: one of OPEN_LISTS or `late_list(month)`; `owner_kind`: UNIT or OFFICER."""
        return self._key(which, owner_kind, owner)

    def dossier(self, code: str) -> str:
        return self._key(DOSSIER, code)

    # --- alerts ----------------------------------------------------------------------------------
    @property
    def alerts(self) -> str:
        return self._key(ALERTS)

    @property
    def alerts_live(self) -> str:
        return self._key(ALERTS, LIVE)

    def alert_marker(self, alert_id: str) -> str:
        return self._key(ALERT, alert_id)

    def alerts_dead(self, group: str) -> str:
        """Alerts a subscriber group's sink (a webhook) could not deliver after its attempts."""
        return self._key(ALERTS, "dead", group)

    @property
    def acknowledged(self) -> str:
        """Dossier → JSON {"by", "at"}: an overdue dossier someone has taken in hand (no escalation)."""
        return self._key("acknowledged")

    # --- workers' progress and commands ----------------------------------------------------------
    @property
    def clock(self) -> str:
        """Source → "as of" it reached, written by the source's worker (read back on restore)."""
        return self._key("clock")

    @property
    def sources(self) -> str:
        """Source → "as of", as the projector has it."""
        return self._key("sources")

    def replay(self, token: str) -> str:
        return self._key("replay", token)

    @property
    def worker(self) -> str:
        """The latest heartbeat of any of the namespace's workers (JSON, streams/heartbeat.py)."""
        return self._key("worker")

    def worker_beat(self, worker_id: str) -> str:
        """One worker's own heartbeat."""
        return self._key("worker", worker_id)

    @property
    def redis_run(self) -> str:
        """The Redis `run_id` the workers last saw: a new one means a restarted server."""
        return self._key("redis-run")

    @property
    def commands(self) -> str:
        return self._key("commands")

    def command_record(self, entry_id: str) -> str:
        return self._key("commands", entry_id)

    def command_pending(self, name: str) -> str:
        """The stream id of the `name` request no worker has taken yet (one at most: later ones join it)."""
        return self._key("command-pending", name)

    def command_recent(self, name: str) -> str:
        """Set when a `name` request is queued, expiring after the minimum interval between two."""
        return self._key("command-recent", name)

    # --- refused events --------------------------------------------------------------------------
    @property
    def rejected(self) -> str:
        return self._key("rejected")

    def rejected_in(self, period: str) -> str:
        return self._key("rejected", period)

    # --- what the national portal published (`chiso766 portal load`) ----------------------------
    # One hash per kind of publication: a province table (group scores only) loaded after a snapshot
    # must not overwrite the snapshot's indicator detail, and each meta hash names its own file.
    def portal(self, period: str, kind: str) -> str:
        """Unit code → the published unit's JSON, for the period the publication covers; `kind` is
        `snapshot` or `provinces`."""
        return self._key("portal", kind, period)

    def portal_meta(self, period: str, kind: str) -> str:
        return self._key("portal-meta", kind, period)

    def reconciliation(self, period: str) -> str:
        """Unit code → its reconciliation with dossier-level explanations (`reconcile … --store`)."""
        return self._key("reconcile", period)

    def plans(self, period: str) -> str:
        """`UNIT|TARGET` → a stored plan (`plan … --store`)."""
        return self._key("plans", period)


@dataclass(frozen=True)
class KeySpec:
    patterns: tuple[str, ...]  # as the README writes them: PREFIX and placeholders in capitals
    redis_type: str
    build: Callable[[RedisKeys], tuple[str, ...]]  # the same keys from the builders, placeholders as arguments


SCHEMA: tuple[KeySpec, ...] = (
    KeySpec(("PREFIX:periods",), "set", lambda k: (k.periods,)),
    KeySpec(("PREFIX:meta:PERIOD",), "hash", lambda k: (k.meta("PERIOD"),)),
    KeySpec(("PREFIX:scores:PERIOD",), "hash", lambda k: (k.scores("PERIOD"),)),
    KeySpec(("PREFIX:leaderboard:PERIOD:PEER_GROUP",), "sorted set",
            lambda k: (k.leaderboard("PERIOD", "PEER_GROUP"),)),
    KeySpec(("PREFIX:officers:PERIOD:UNIT",), "hash", lambda k: (k.officers("PERIOD", "UNIT"),)),
    KeySpec(("PREFIX:stake:PERIOD",), "hash", lambda k: (k.stake("PERIOD"),)),
    KeySpec(("PREFIX:overdue:unit:UNIT", "PREFIX:overdue:officer:ID"), "sorted set",
            lambda k: (k.dossier_list("overdue", UNIT, "UNIT"), k.dossier_list("overdue", OFFICER, "ID"))),
    KeySpec(("PREFIX:approaching:unit:UNIT", "PREFIX:approaching:officer:ID"), "sorted set",
            lambda k: (k.dossier_list("approaching", UNIT, "UNIT"), k.dossier_list("approaching", OFFICER, "ID"))),
    KeySpec(("PREFIX:dossier:CODE",), "hash", lambda k: (k.dossier("CODE"),)),
    KeySpec(("PREFIX:late:MONTH:unit:UNIT", "PREFIX:late:MONTH:officer:ID"), "sorted set",
            lambda k: (k.dossier_list(late_list("MONTH"), UNIT, "UNIT"),
                       k.dossier_list(late_list("MONTH"), OFFICER, "ID"))),
    KeySpec(("PREFIX:alerts",), "stream", lambda k: (k.alerts,)),
    KeySpec(("PREFIX:alerts:dead:GROUP",), "stream", lambda k: (k.alerts_dead("GROUP"),)),
    KeySpec(("PREFIX:acknowledged",), "hash", lambda k: (k.acknowledged,)),
    KeySpec(("PREFIX:alerts:live",), "pub/sub", lambda k: (k.alerts_live,)),
    KeySpec(("PREFIX:scores:live",), "pub/sub", lambda k: (k.scores_live,)),
    KeySpec(("PREFIX:commands", "PREFIX:commands:ID"), "stream, hash",
            lambda k: (k.commands, k.command_record("ID"))),
    KeySpec(("PREFIX:command-pending:NAME", "PREFIX:command-recent:NAME"), "string",
            lambda k: (k.command_pending("NAME"), k.command_recent("NAME"))),
    KeySpec(("PREFIX:alert:ID",), "string", lambda k: (k.alert_marker("ID"),)),
    KeySpec(("PREFIX:keys:PERIOD",), "set", lambda k: (k.period_keys("PERIOD"),)),
    KeySpec(("PREFIX:sources", "PREFIX:clock"), "hash", lambda k: (k.sources, k.clock)),
    KeySpec(("PREFIX:replay:TOKEN",), "hash", lambda k: (k.replay("TOKEN"),)),
    KeySpec(("PREFIX:worker", "PREFIX:worker:ID"), "string", lambda k: (k.worker, k.worker_beat("ID"))),
    KeySpec(("PREFIX:redis-run",), "string", lambda k: (k.redis_run,)),
    KeySpec(("PREFIX:rejected", "PREFIX:rejected:PERIOD"), "hash", lambda k: (k.rejected, k.rejected_in("PERIOD"))),
    KeySpec(("PREFIX:portal:KIND:PERIOD", "PREFIX:portal-meta:KIND:PERIOD"), "hash",
            lambda k: (k.portal("PERIOD", "KIND"), k.portal_meta("PERIOD", "KIND"))),
    KeySpec(("PREFIX:reconcile:PERIOD",), "hash", lambda k: (k.reconciliation("PERIOD"),)),
    KeySpec(("PREFIX:plans:PERIOD",), "hash", lambda k: (k.plans("PERIOD"),)),
)


# --- scripts -------------------------------------------------------------------------------------

# ARGV: prefix, JSON rows [dossier, unit, officer, procedure, due, state, month, completed] ('' = none).
# Each dossier leaves every list its hash says it was in and joins the one it belongs to now.
LIST_SCRIPT = f"""
local prefix = ARGV[1]
for _, row in ipairs(cjson.decode(ARGV[2])) do
  local code, unit, officer, procedure, due, state, month, completed = unpack(row)
  local key = prefix .. ':{DOSSIER}:' .. code
  local entry = redis.call('HGETALL', key)
  if #entry > 0 then
    local old = {{}}
    for i = 1, #entry, 2 do old[entry[i]] = entry[i + 1] end
    local list = old['list']
    if list == '{LATE}' then list = '{LATE}:' .. (old['month'] or '') end
    if list ~= 'open' then
      local base = prefix .. ':' .. list
      if old['unit'] ~= '' then redis.call('ZREM', base .. ':{UNIT}:' .. old['unit'], code) end
      if old['officer'] ~= '' then redis.call('ZREM', base .. ':{OFFICER}:' .. old['officer'], code) end
    end
    redis.call('DEL', key)
  end
  local list, score = nil, nil
  if (state == '{OPEN_LISTS[0]}' or state == '{OPEN_LISTS[1]}') and due ~= '' then list, score = state, due end
  if state == '{LATE}' and completed ~= '' then list, score = '{LATE}:' .. month, completed end
  if list then
    if unit ~= '' then redis.call('ZADD', prefix .. ':' .. list .. ':{UNIT}:' .. unit, score, code) end
    if officer ~= '' then redis.call('ZADD', prefix .. ':' .. list .. ':{OFFICER}:' .. officer, score, code) end
  end
  if state ~= 'closed' then
    redis.call('HSET', key, 'unit', unit, 'officer', officer, 'procedure', procedure, 'due', due, 'list', state)
    if month ~= '' then redis.call('HSET', key, 'month', month, 'completed', completed) end
  end
end
return 0
"""

# ARGV: prefix, stream max length, marker seconds, JSON rows [id, stake key, unit, kind, body without
# its last field]; the body is completed with the stake read here, in the same step as the claim.
# Replies how many alerts it published (an id seen before is skipped).
ALERT_SCRIPT = f"""
local prefix, maxlen, ttl = ARGV[1], ARGV[2], ARGV[3]
local sent = 0
for _, row in ipairs(cjson.decode(ARGV[4])) do
  local id, stake_key, unit, kind, head = unpack(row)
  if redis.call('SET', prefix .. ':{ALERT}:' .. id, '1', 'NX', 'EX', ttl) then
    local stake = redis.call('HGET', stake_key, unit)
    local body = head .. ',"points_at_stake":' .. (stake or 'null') .. '}}'
    redis.call('XADD', prefix .. ':{ALERTS}', 'MAXLEN', '~', maxlen, '*', 'alert', body, 'kind', kind, 'unit', unit)
    redis.call('PUBLISH', prefix .. ':{ALERTS}:{LIVE}', body)
    sent = sent + 1
  end
end
return sent
"""
