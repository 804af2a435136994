"""The unit registry and the procedure catalogue, folded from catalogue events.

Upserts are last-writer-wins by (occurred_at, event_id), so the directory too is independent of
the order in which its events arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from schemas import events as ev
from scoring.calendar import STANDARD_HOURS, WorkingCalendar, WorkingHours

TOP_LEVELS = ("province", "ministry")
PLURAL = {"province": "provinces", "ministry": "ministries", "agency": "agencies", "commune": "communes"}


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    name_en: str
    level: str
    parent: str | None
    peer_group: str | None
    offers_e_certified_copy: bool
    hours: WorkingHours


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    authority_unit: str
    handled_by: tuple[str, ...]
    time_limits: tuple[tuple[int | None, float, str], ...]  # (channel or None, value, unit)
    online: bool
    fee_bearing: bool
    for_citizens: bool
    returns_document: bool
    decision_date: date | None
    legal_effective_date: date | None
    published_at: int | None
    content_parts_present: int

    def limit_for(self, channel: int) -> tuple[float, str] | None:
        fallback = None
        for limit_channel, value, unit in self.time_limits:
            if limit_channel == channel:
                return value, unit
            if limit_channel is None:
                fallback = (value, unit)
        return fallback


def unit_from_event(event: ev.UnitUpserted) -> Unit:
    return Unit(
        code=event.unit_code, name=event.name, name_en=event.name_en or event.name, level=event.level,
        parent=event.parent, peer_group=event.peer_group,
        offers_e_certified_copy=event.offers_e_certified_copy,
        hours=WorkingHours.from_text(event.working_hours, event.receipt_cutoff),
    )


def procedure_from_event(event: ev.ProcedureUpserted) -> Procedure:
    return Procedure(
        code=event.procedure_code, name=event.name, authority_unit=event.authority_unit,
        handled_by=tuple(event.handled_by),
        time_limits=tuple((limit.channel, limit.value, limit.unit) for limit in event.time_limits),
        online=event.online_level != "none", fee_bearing=event.fee_bearing, for_citizens=event.for_citizens,
        returns_document=event.returns_document, decision_date=event.decision_date,
        legal_effective_date=event.legal_effective_date,
        published_at=int(event.published_at.timestamp()) if event.published_at else None,
        content_parts_present=event.content_parts_present,
    )


@dataclass
class Directory:
    units: dict[str, Unit] = field(default_factory=dict)
    procedures: dict[str, Procedure] = field(default_factory=dict)
    _versions: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    _ancestors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _handled: dict[str, tuple[Procedure, ...]] | None = None
    version: int = 0  # bumped on every change, so engines sharing the directory notice it

    def apply(self, event: ev.UnitUpserted | ev.ProcedureUpserted) -> bool:
        """Fold a catalogue event; True when it changed the directory."""
        key = ("unit", event.unit_code) if isinstance(event, ev.UnitUpserted) else ("procedure", event.procedure_code)
        version = ev.record_version(event, int(event.occurred_at.timestamp()))
        known = self._versions.get(key)
        if known is not None and version <= known:
            return False
        self._versions[key] = version
        self.version += 1
        if isinstance(event, ev.UnitUpserted):
            self.units[event.unit_code] = unit_from_event(event)
            self._ancestors.clear()
        else:
            self.procedures[event.procedure_code] = procedure_from_event(event)
        self._handled = None
        return True

    def ancestors(self, code: str) -> tuple[str, ...]:
        """The unit's parents, nearest first (cycles in bad registry data are cut)."""
        cached = self._ancestors.get(code)
        if cached is None:
            chain: list[str] = []
            unit = self.units.get(code)
            while unit is not None and unit.parent and unit.parent not in chain and unit.parent != code:
                chain.append(unit.parent)
                unit = self.units.get(unit.parent)
            cached = self._ancestors[code] = tuple(chain)
        return cached

    def top(self, code: str) -> str:
        """The province or ministry a unit belongs to (itself when it is one)."""
        chain = (code, *self.ancestors(code))
        for candidate in chain:
            unit = self.units.get(candidate)
            if unit is not None and unit.level in TOP_LEVELS:
                return candidate
        return chain[-1]

    def peer_group(self, code: str) -> str:
        unit = self.units.get(code)
        if unit is None:
            return "unregistered"
        if unit.peer_group:
            return unit.peer_group
        if unit.level == "province":
            return "provinces"
        if unit.level == "ministry":
            return "ministries"
        return f"{PLURAL[unit.level]}:{self.top(code)}"

    def hours(self, code: str | None) -> WorkingHours:
        unit = self.units.get(code) if code else None
        return unit.hours if unit is not None else STANDARD_HOURS

    def handled_by(self, unit_code: str) -> tuple[Procedure, ...]:
        if self._handled is None:
            index: dict[str, list[Procedure]] = {}
            for procedure in sorted(self.procedures.values(), key=lambda p: p.code):
                for handler in procedure.handled_by:
                    index.setdefault(handler, []).append(procedure)
            self._handled = {code: tuple(found) for code, found in index.items()}
        return self._handled.get(unit_code, ())

    def legal_due(self, calendar: WorkingCalendar, unit: str | None, procedure: str | None, channel: int,
                  received_at: int, limit: tuple[float, str] | None) -> int | None:
        """Due instant from the dossier's own limit, else the catalogue's limit for its channel."""
        if limit is None and procedure is not None and procedure in self.procedures:
            limit = self.procedures[procedure].limit_for(channel)
        if limit is None:
            return None
        return calendar.due_at(received_at, limit[0], limit[1], self.hours(unit))  # type: ignore[arg-type]
