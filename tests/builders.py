"""Small builders for events and instants in tests (Vietnam local time unless an offset is given)."""

from __future__ import annotations

import itertools
from datetime import datetime

from schemas import events as ev
from scoring.calendar import VIETNAM

_ids = itertools.count(1)


def when(text: str) -> datetime:
    """'2026-09-01 09:00' in Vietnam time."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=VIETNAM)


def ts(text: str) -> int:
    return int(when(text).timestamp())


def _base(at: str, code: str) -> dict:
    return {"event_id": f"e{next(_ids)}", "occurred_at": when(at), "source": "test", "dossier_code": code}


def received(code: str, at: str, due: str | None, unit: str = "H15.01", procedure: str = "P1", channel: int = 2,
             fee: int = 0, limit: tuple[float, str] | None = None, officer: str | None = "O1") -> ev.DossierReceived:
    return ev.DossierReceived(
        **_base(at, code), unit_code=unit, procedure_code=procedure, channel=channel, received_at=when(at),
        due_at=when(due) if due else None, fee_amount=fee, officer_id=officer,
        time_limit=ev.TimeLimit(value=limit[0], unit=limit[1]) if limit else None,
    )


def status(code: str, at: str, value: int) -> ev.DossierStatusChanged:
    return ev.DossierStatusChanged(**_base(at, code), status=value)


def supplement_requested(code: str, at: str) -> ev.SupplementRequested:
    return ev.SupplementRequested(**_base(at, code))


def supplement_received(code: str, at: str) -> ev.SupplementReceived:
    return ev.SupplementReceived(**_base(at, code))


def step(code: str, at: str, step_id: str, officer: str, started: str, due: str,
         completed: str | None = None) -> ev.ProcessingStep:
    return ev.ProcessingStep(**_base(at, code), step_id=step_id, officer_id=officer, started_at=when(started),
                             step_due_at=when(due), completed_at=when(completed) if completed else None)


def unit(code: str, level: str, parent: str | None = None, e_copy: bool = False) -> ev.UnitUpserted:
    return ev.UnitUpserted(event_id=f"u-{code}-{next(_ids)}", occurred_at=when("2026-01-01 00:00"), unit_code=code,
                           name=f"Unit {code}", level=level, parent=parent, offers_e_certified_copy=e_copy)


def procedure(code: str, handled_by: list[str], authority: str = "H15", online: bool = True, fee: bool = False,
              limit: tuple[float, str] = (5, "working_days"), **extra) -> ev.ProcedureUpserted:
    return ev.ProcedureUpserted(
        event_id=f"p-{code}-{next(_ids)}", occurred_at=when("2026-01-01 00:00"), procedure_code=code,
        name=f"Procedure {code}", authority_unit=authority, handled_by=handled_by,
        time_limits=[ev.TimeLimit(value=limit[0], unit=limit[1])], online_level="full" if online else "none",
        fee_bearing=fee, **extra,
    )


def code_in(partition: int, taken: set[str], partitions: int = 4) -> str:
    """A dossier code, not in `taken`, that lands on `partition` of `partitions` (and is then taken)."""
    from streams.partitioning import partition_for

    for number in itertools.count():
        code = f"D-{number}"
        if code not in taken and partition_for(code, partitions) == partition:
            taken.add(code)
            return code
    raise AssertionError("unreachable")
