"""Reads of the Redis projection for the API, the exports and the subscriber CLI.

Every number comes from what the workers wrote (keys: `contracts.keys`); this module only picks,
orders, pages and joins. It never touches Kafka or the worker tables.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from contracts.keys import RedisKeys
from scoring.calendar import iso
from scoring.periods import Period, parse_period, period_at
from scoring.quality_labels import problem_labels
from scoring.ruleset import Ruleset


class NotFound(LookupError):
    """A unit, officer or period the projection does not know."""

    def __init__(self, error: str, detail: str):
        super().__init__(detail)
        self.error, self.detail = error, detail


def unknown_unit(code: str, where: str) -> NotFound:
    return NotFound("unknown_unit", f"no unit {code!r} in {where}")


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    def slice(self, total: int) -> tuple[int, int]:
        """Start and end (exclusive) of this page; a page past the end is an error, except page 1."""
        start = (self.number - 1) * self.size
        if start >= total and self.number > 1:
            raise NotFound("page_out_of_range", f"page {self.number} is past the end ({total} items, "
                                                f"{self.size} a page)")
        return start, min(total, start + self.size)


async def read_report(client: aioredis.Redis, keys: RedisKeys, period: str) -> dict | None:
    """The `chiso766 score --json` shape, read back from the projection."""
    meta = await client.hgetall(keys.meta(period))
    if not meta:
        return None
    entries = await client.hgetall(keys.scores(period))
    units = sorted((orjson.loads(value) for value in entries.values()), key=lambda unit: unit["code"])
    return {"period": period, "as_of": meta[b"as_of"].decode(), "ruleset": meta[b"ruleset"].decode(),
            "units": units}


def alert_entry_wanted(fields: dict[bytes, bytes], unit: str | None, kinds: Collection[str]) -> bool:
    """Whether an entry of the alert stream passes the filters (no unit / no kinds: any)."""
    return ((unit is None or fields.get(b"unit", b"").decode() == unit)
            and (not kinds or fields.get(b"kind", b"").decode() in kinds))


class ProjectionReader:
    """Reads of one namespace's projection."""

    def __init__(self, client: aioredis.Redis, prefix: str, ruleset: Ruleset):
        self.client, self.keys, self.ruleset = client, RedisKeys(prefix), ruleset

    # --- periods and scores ---------------------------------------------------------------------

    async def periods(self) -> list[str]:
        found = await self.client.smembers(self.keys.periods)
        return sorted((item.decode() for item in found), key=lambda key: (parse_period(key).start, key))

    async def meta(self, period: str) -> dict[str, str]:
        meta = await self.client.hgetall(self.keys.meta(period))
        if not meta:
            raise NotFound("unknown_period", f"no scores for period {period} yet")
        return {key.decode(): value.decode() for key, value in meta.items()}

    async def units(self, period: str) -> dict[str, dict]:
        entries = await self.client.hgetall(self.keys.scores(period))
        return {code.decode(): orjson.loads(value) for code, value in entries.items()}

    async def unit(self, period: str, code: str) -> dict:
        value = await self.client.hget(self.keys.scores(period), code)
        if value is None:
            raise unknown_unit(code, f"period {period}")
        return orjson.loads(value)

    async def require_unit(self, code: str) -> None:
        """A unit the latest scored period knows (dossier lists have no period of their own)."""
        periods = await self.periods()
        latest = max(periods, key=lambda key: parse_period(key).end) if periods else None
        if latest is None or not await self.client.hexists(self.keys.scores(latest), code):
            raise unknown_unit(code, "the projection")

    async def stakes(self, period: str) -> dict[str, float]:
        entries = await self.client.hgetall(self.keys.stake(period))
        return {code.decode(): float(value) for code, value in entries.items()}

    async def peer_groups(self, period: str) -> dict[str, int]:
        """Peer group → number of units in it."""
        sizes: dict[str, int] = {}
        for unit in (await self.units(period)).values():
            sizes[unit["peer_group"]] = sizes.get(unit["peer_group"], 0) + 1
        return dict(sorted(sizes.items()))

    async def leaderboard(self, period: str, peer_group: str, page: Page) -> dict:
        meta = await self.meta(period)
        units = await self.units(period)
        members = sorted((unit for unit in units.values() if unit["peer_group"] == peer_group),
                         key=lambda unit: (unit["rank"] or 10**9, unit["code"]))
        if not members:
            raise NotFound("unknown_group", f"no peer group {peer_group!r} in period {period}; "
                                            f"known: {', '.join(sorted({u['peer_group'] for u in units.values()}))}")
        previous_key = parse_period(period).previous.key
        previous = await self.units(previous_key)
        start, end = page.slice(len(members))
        rows = []
        for unit in members[start:end]:
            before = previous.get(unit["code"])
            rows.append({
                "rank": unit["rank"], "code": unit["code"], "name": unit["name"], "total": unit["total"],
                "groups": unit["groups"],
                "previous_total": before["total"] if before else None,
                "change": round(unit["total"] - before["total"], 2) if before else None,
                "previous_rank": before["rank"] if before else None,
                "movement": (before["rank"] - unit["rank"]) if before and before["rank"] and unit["rank"] else None,
            })
        return {"period": period, "previous_period": previous_key, "as_of": meta["as_of"], "group": peer_group,
                "total_units": len(members), "page": page.number, "size": page.size, "units": rows}

    async def unit_page(self, period: str, code: str) -> dict:
        meta = await self.meta(period)
        units = await self.units(period)
        if code not in units:
            raise unknown_unit(code, f"period {period}")
        unit = units[code]
        ruleset = self.ruleset
        indicators = []
        for indicator in ruleset.indicators:
            counts = unit["indicators"].get(indicator.code, {"numerator": 0, "denominator": 0, "score": 0})
            indicators.append({"code": indicator.code, "ref": indicator.ref, "group": indicator.group,
                               "max": float(indicator.max), **counts})
        groups = [{"code": group, "max": float(spec["max"]), "score": unit["groups"].get(group, 0),
                   "name_vi": spec.get("name_vi", group), "name_en": spec.get("name_en", group)}
                  for group, spec in ruleset.groups.items()]
        children = sorted(({"code": child["code"], "name": child["name"], "total": child["total"],
                            "rank": child["rank"], "peer_group": child["peer_group"]}
                           for child in units.values() if child.get("parent") == code),
                          key=lambda child: (-child["total"], child["code"]))
        stake = (await self.stakes(period)).get(code)
        return {"period": period, "as_of": meta["as_of"], "code": code, "name": unit["name"],
                "level": unit["level"], "parent": unit["parent"], "peer_group": unit["peer_group"],
                "rank": unit["rank"], "total": unit["total"], "groups": groups, "indicators": indicators,
                "trend": await self.trend(period, code), "children": children, "points_at_stake": stake}

    async def trend(self, period: str, code: str) -> list[dict]:
        """The unit's monthly totals through the months of the period's year that have scores."""
        year = parse_period(period).first_month // 12
        months = [period_at("month", year * 12 + month).key for month in range(12)]
        pipe = self.client.pipeline(transaction=False)
        for month in months:
            pipe.hget(self.keys.scores(month), code)
        values = await pipe.execute()
        return [{"period": month, "total": orjson.loads(value)["total"]}
                for month, value in zip(months, values, strict=True) if value is not None]

    async def officers(self, period: str, code: str) -> list[dict]:
        await self.unit(period, code)
        entries = await self.client.hgetall(self.keys.officers(period, code))
        officers = [{"officer": officer.decode(), **orjson.loads(value)} for officer, value in entries.items()]
        return sorted(officers, key=lambda row: (-row.get("points_cost", 0), row["officer"]))

    # --- data quality ---------------------------------------------------------------------------

    async def quality(self, period: str, unit: str | None = None) -> dict:
        """The data-quality counts of a period: each unit's findings (pooled like its scores: a
        unit's count includes everything below it) and the namespace's refused events by reason —
        in the period (by when they were processed) and all time. With `unit`: it (always, even
        with no findings) and the units below it that have findings; without: every unit that
        has some. Counts only: the projection keeps no list of the dossiers behind them."""
        meta = await self.meta(period)
        units = await self.units(period)
        if unit is not None and unit not in units:
            raise unknown_unit(unit, f"period {period}")
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.rejected_in(period))
        pipe.hgetall(self.keys.rejected)
        in_period, all_time = (_counts(entries) for entries in await pipe.execute())
        if unit is None:
            chosen = sorted(units)
        else:
            chosen = [unit, *sorted(member["code"] for member in under(units, unit) if member["code"] != unit)]
        rows = []
        for code in chosen:
            findings = {name: count for name, count in sorted(units[code].get("findings", {}).items()) if count}
            if findings or code == unit:
                rows.append({"code": code, "name": units[code]["name"], "findings": findings})
        seen = {name for row in rows for name in row["findings"]} | set(in_period) | set(all_time)
        return {"period": period, "as_of": meta["as_of"], "units": rows, "rejected": in_period,
                "rejected_all_time": all_time, "labels": problem_labels(seen)}

    # --- dossier lists --------------------------------------------------------------------------

    async def list_size(self, which: str, owner_kind: str, owner: str) -> int:
        return await self.client.zcard(self.keys.dossier_list(which, owner_kind, owner))

    async def dossiers(self, which: str, owner_kind: str, owner: str, page: Page,
                       stake_period: Period | None = None) -> dict:
        """Overdue / approaching dossiers of a unit or officer, by due; or, with which="late:YYYY-MM",
        the dossiers completed late that month, by completion."""
        key = self.keys.dossier_list(which, owner_kind, owner)
        total = await self.list_size(which, owner_kind, owner)
        start, end = page.slice(total)
        codes = await self.client.zrange(key, start, end - 1, withscores=True) if end > start else []
        pipe = self.client.pipeline(transaction=False)
        for code, _ in codes:
            pipe.hgetall(self.keys.dossier(code.decode()))
        details = await pipe.execute()
        stakes = await self.stakes(stake_period.key) if stake_period else {}
        rows = []
        for (code, score), fields in zip(codes, details, strict=True):
            info = {name.decode(): value.decode() for name, value in fields.items()}
            unit = info.get("unit") or None
            rows.append({"dossier": code.decode(), "procedure": info.get("procedure") or None, "unit": unit,
                         "officer": info.get("officer") or None,
                         "due": iso(int(info["due"])) if info.get("due") else None,
                         "completed": iso(int(info["completed"])) if info.get("completed") else None,
                         "sort_at": iso(score), "points_at_stake": stakes.get(unit) if unit else None})
        return {"list": which, owner_kind: owner, "total": total, "page": page.number, "size": page.size,
                "dossiers": rows}

    # --- alerts ---------------------------------------------------------------------------------

    async def recent_alerts(self, limit: int, unit: str | None = None, kind: str | None = None) -> list[dict]:
        """The newest alerts first, filtered; scans at most 20 × limit stream entries."""
        found: list[dict] = []
        for _, fields in await self.client.xrevrange(self.keys.alerts, count=limit * 20):
            if not alert_entry_wanted(fields, unit, (kind,) if kind else ()):
                continue
            found.append(orjson.loads(fields[b"alert"]))
            if len(found) >= limit:
                break
        # An alert raised before its unit was first scored has no points at stake: the unit's stake of
        # the alert's month fills it (a wrong null beside a dossier row showing 1,26).
        stakes: dict[str, dict[str, float]] = {}
        for alert in found:
            if alert.get("points_at_stake") is None and alert.get("unit") and alert.get("at"):
                month = f"month:{alert['at'][:7]}"
                if month not in stakes:
                    stakes[month] = await self.stakes(month)
                alert["points_at_stake"] = stakes[month].get(alert["unit"])
        return found

    async def worker_heartbeat(self) -> dict | None:
        """The latest worker heartbeat: JSON with `mode`, `state` (advancing, idle, stalled) and
        progress (streams/heartbeat.py); a plain mode string from workers before those."""
        raw = await self.client.get(self.keys.worker)
        if raw is None:
            return None
        return orjson.loads(raw) if raw[:1] == b"{" else {"mode": raw.decode(), "state": None}

    async def worker_mode(self) -> str | None:
        beat = await self.worker_heartbeat()
        return beat["mode"] if beat else None

    def current_month(self, as_of: str) -> Period:
        return parse_period(f"month:{as_of[:7]}")


def _counts(entries: dict[bytes, bytes]) -> dict[str, int]:
    return {name.decode(): int(count) for name, count in sorted(entries.items()) if int(count)}


def under(units: dict[str, dict], root: str) -> list[dict]:
    """`root` and every unit below it, by the units' parents (a loop in them ends the walk)."""
    def inside(code: str | None) -> bool:
        seen = set()
        while code and code not in seen:
            if code == root:
                return True
            seen.add(code)
            code = units[code]["parent"] if code in units else None
        return False
    return [unit for code, unit in units.items() if inside(code)]
