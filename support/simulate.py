"""A seeded, realistic event history for one province: units, officers, a procedure catalogue,
dossiers through their whole lifecycle, petitions. Same seed and arguments → the same bytes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import msgspec

from scoring.calendar import VIETNAM, WorkingCalendar

AGENCIES = [
    "Sở Tư pháp", "Sở Tài chính", "Sở Xây dựng", "Sở Nông nghiệp và Môi trường", "Sở Y tế",
    "Sở Giáo dục và Đào tạo", "Sở Nội vụ", "Sở Công Thương", "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ", "Sở Dân tộc và Tôn giáo", "Sở Ngoại vụ",
]
AGENCIES_EN = [
    "Department of Justice", "Department of Finance", "Department of Construction",
    "Department of Agriculture and Environment", "Department of Health", "Department of Education",
    "Department of Home Affairs", "Department of Industry and Trade", "Department of Culture and Tourism",
    "Department of Science and Technology", "Department of Ethnic and Religious Affairs",
    "Department of Foreign Affairs",
]
PLACE_SYLLABLES = ["An", "Bình", "Phú", "Hòa", "Tân", "Thạnh", "Long", "Minh", "Phước", "Lộc", "Xuân",
                   "Đông", "Tây", "Nam", "Bắc", "Hưng", "Thịnh", "Quang", "Trung", "Vĩnh"]
PROCEDURE_TOPICS = ["Cấp giấy phép", "Đăng ký", "Cấp lại", "Điều chỉnh", "Gia hạn", "Công nhận", "Xác nhận",
                    "Cấp bản sao", "Thẩm định", "Chứng thực"]
PROCEDURE_OBJECTS = ["hộ kinh doanh", "xây dựng", "hành nghề", "khai sinh", "kết hôn", "đất đai", "lao động",
                     "môi trường", "an toàn thực phẩm", "giáo dục", "văn hóa", "cư trú"]
LIMIT_CHOICES = [((8, "hours"), 4), ((4, "hours"), 2), ((1, "working_days"), 6), ((3, "working_days"), 10),
                 ((5, "working_days"), 10), ((10, "working_days"), 8), ((15, "working_days"), 6),
                 ((20, "working_days"), 3), ((10, "days"), 3), ((30, "days"), 2), ((1, "months"), 1)]


UNSYNCABLE = frozenset({"dossier.rated", "dossier.petition_linked", "petition.received", "petition.answered",
                        "petition.rated"})
UNSYNCABLE_FIELDS = {"dossier.received": ("officer_id", "time_limit"), "dossier.due_reappointed": ("apology_sent_at",)}


@dataclass(frozen=True)
class UnitSpec:
    code: str
    level: str
    officers: tuple[str, ...]
    quality: float  # share of dossiers done on time; drives the other rates too


# msgspec, not orjson: orjson's bytes keep a 4 KiB buffer each, which is 10 GB for 2.4 M events.
_encode = msgspec.json.encode


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, VIETNAM).isoformat()


def _weighted(rng: random.Random, choices: list) -> tuple:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


class Simulator:
    def __init__(self, seed: int, dossiers: int, province: str = "H15", start: date = date(2026, 1, 5),
                 days: int = 320, calendar: WorkingCalendar | None = None, sync_facts_only: bool = False):
        self.rng = random.Random(seed)
        # Only the facts the DVCQG sync format can carry (support/dvcqg_sim.py): the same draws,
        # so the same province, told the way its sync calls tell it. Left out: ratings, petitions,
        # apology letters, offline payments, the receiving officer, a receipt's own time limit (the
        # catalogue has it), steps still running at the end; every received dossier counts as synced.
        self.sync_facts_only = sync_facts_only
        self.dossier_count, self.province, self.days = dossiers, province, days
        self.start = int(datetime.combine(start, datetime.min.time(), VIETNAM).timestamp())
        self.end = self.start + days * 86400
        self.calendar = calendar or WorkingCalendar()
        self.units: list[UnitSpec] = []
        self.procedures: dict[str, list[dict]] = {"agency": [], "commune": []}
        self._events: list[tuple[int, int, bytes]] = []
        self._popularity: dict[str, list[float]] = {}
        self._sequence = 0

    def _emit(self, ts: int, event_type: str, event_id: str, **fields) -> None:
        if self.sync_facts_only:
            if event_type in UNSYNCABLE or (event_type == "dossier.payment_made" and not fields["online"]) or \
                    (event_type == "dossier.processing_step" and "completed_at" not in fields):
                return
            for name in UNSYNCABLE_FIELDS.get(event_type, ()):
                fields.pop(name, None)
        body = {"event_id": event_id, "event_type": event_type, "schema_version": 1, "occurred_at": _iso(ts),
                "source": "sim-one-stop", **{k: v for k, v in fields.items() if v is not None}}
        self._sequence += 1
        self._events.append((ts, self._sequence, _encode(body)))

    # --- registry and catalogue ------------------------------------------------------------------

    def _build_units(self) -> None:
        rng, province, at = self.rng, self.province, self.start - 7 * 86400
        self._emit(at, "unit.upserted", f"unit-{province}", unit_code=province, name="Tỉnh Mẫu Sơn",
                   name_en="Mau Son Province", level="province")
        communes = max(8, min(60, self.dossier_count // 2500))
        for index, (name, name_en) in enumerate(zip(AGENCIES, AGENCIES_EN, strict=True), start=1):
            code = f"{province}.{index:02d}"
            self._add_unit(code, "agency", name, name_en, at, rng.uniform(0.80, 0.985))
        used: set[str] = set()
        for index in range(1, communes + 1):
            while True:
                name = f"{rng.choice(['Xã', 'Phường'])} {rng.choice(PLACE_SYLLABLES)} {rng.choice(PLACE_SYLLABLES)}"
                if name not in used:
                    used.add(name)
                    break
            code = f"{province}.X{index:03d}"
            self._add_unit(code, "commune", name, name, at, rng.uniform(0.78, 0.99),
                           e_copy=rng.random() < 0.7)

    def _add_unit(self, code: str, level: str, name: str, name_en: str, at: int, quality: float,
                  e_copy: bool = False) -> None:
        officers = tuple(f"{code}-CB{n:02d}" for n in range(1, self.rng.randint(3, 8) + 1))
        self.units.append(UnitSpec(code, level, officers, quality))
        self._emit(at, "unit.upserted", f"unit-{code}", unit_code=code, name=name, name_en=name_en, level=level,
                   parent=self.province, offers_e_certified_copy=e_copy or None)

    def _build_catalogue(self) -> None:
        rng, at = self.rng, self.start - 6 * 86400
        for kind, count in (("agency", 60), ("commune", 25)):
            handlers = [u.code for u in self.units if u.level == kind]
            for index in range(1, count + 1):
                code = f"{self.province}-{kind[0].upper()}{index:03d}"
                value, unit = _weighted(rng, LIMIT_CHOICES)
                handled_by = handlers if kind == "commune" else rng.sample(handlers, rng.randint(1, 2))
                decision = date(2026, 1, 1) + timedelta(days=rng.randint(0, 280))
                effective = self.calendar.add_working_days(decision, rng.choice([3, 5, 7, 10, 25]))
                published_day = self.calendar.add_working_days(decision, rng.choice([1, 2, 4, 5, 6, 9]))
                published = int(datetime.combine(published_day, datetime.min.time(), VIETNAM).timestamp()) + 36000
                spec = {"code": code, "limit": (value, unit), "online": rng.random() < 0.9,
                        "fee": rng.random() < 0.35, "document": rng.random() < 0.85}
                self.procedures[kind].append(spec)
                self._popularity.setdefault(kind, []).append(1 / index**1.6)
                self._emit(at, "procedure.upserted", f"proc-{code}", procedure_code=code,
                           name=f"{rng.choice(PROCEDURE_TOPICS)} {rng.choice(PROCEDURE_OBJECTS)}",
                           authority_unit=self.province, handled_by=handled_by,
                           time_limits=[{"value": value, "unit": unit}],
                           online_level=("full" if rng.random() < 0.6 else "partial") if spec["online"] else "none",
                           fee_bearing=spec["fee"], for_citizens=rng.random() < 0.8, returns_document=spec["document"],
                           decision_date=decision.isoformat(), legal_effective_date=effective.isoformat(),
                           published_at=_iso(published) if published < self.end else None,
                           content_parts_present=7 if rng.random() < 0.9 else rng.randint(4, 6))

    # --- dossiers --------------------------------------------------------------------------------

    def _received_at(self) -> int:
        rng = self.rng
        while True:
            day = self.start + rng.randrange(self.days) * 86400
            local_day = datetime.fromtimestamp(day, VIETNAM).date()
            if self.calendar.is_working_day(local_day) or rng.random() < 0.08:  # online filings on rest days
                return day + rng.randint(7 * 3600 + 30 * 60, 17 * 3600 + 30 * 60)

    def _dossier(self, number: int) -> None:
        rng = self.rng
        unit = rng.choice(self.units)
        catalogue = self.procedures[unit.level]
        # A few procedures take most dossiers (Zipf-like), as on the real portal.
        procedure = rng.choices(catalogue, weights=self._popularity[unit.level])[0]
        code = f"{unit.code}-{number:07d}"
        ids = iter(range(1, 100))

        def emit(ts: int, event_type: str, **fields) -> None:
            if ts <= self.end:
                self._emit(ts, event_type, f"{code}-{next(ids)}", dossier_code=code, **fields)

        channel = 2 if procedure["online"] and rng.random() < 0.86 else (3 if rng.random() < 0.1 else 1)
        received = self._received_at()
        if channel == 2:
            submitted = received - rng.randint(600, 2 * 86400)
            emit(submitted, "dossier.status_changed", status=1)
            if rng.random() < 0.02:
                emit(received, "dossier.status_changed", status=3)
                return
        due = self.calendar.due_at(received, *procedure["limit"])
        fee = rng.choice([20000, 50000, 100000, 200000]) if procedure["fee"] else 0
        receiver = rng.choice(unit.officers)
        emit(received, "dossier.received", unit_code=unit.code, procedure_code=procedure["code"], channel=channel,
             received_at=_iso(received), due_at=_iso(due) if rng.random() < 0.95 else None,
             time_limit={"value": procedure["limit"][0], "unit": procedure["limit"][1]},
             fee_amount=fee, officer_id=receiver)
        if rng.random() < 0.97 or self.sync_facts_only:
            emit(received + rng.randint(30, 3600), "dossier.portal_sync_acknowledged")
        emit(received + rng.randint(60, 7200), "dossier.digitisation_recorded",
             components_digitised=rng.random() < unit.quality, reused_digitised_data=rng.random() < 0.3,
             personal_storage_linked=rng.random() < unit.quality - 0.1,
             population_data_used=rng.random() < 0.6)
        span = max(due - received, 3600)
        pause = 0
        supplements = 2 if rng.random() < 0.01 else (1 if rng.random() < 0.07 else 0)
        cursor = received + int(span * 0.2)
        for _ in range(supplements):
            emit(cursor, "dossier.supplement_requested", reason="Thiếu giấy tờ")
            wait = rng.randint(86400, 6 * 86400)
            emit(cursor + wait, "dossier.supplement_received")
            pause += wait
            cursor += wait + 3600
        on_time = rng.random() < unit.quality
        finish = received + pause + (int(span * rng.uniform(0.3, 0.98)) if on_time
                                     else span + rng.randint(3600, 8 * 86400))
        if rng.random() < 0.01:
            emit(received + span // 3, "dossier.status_changed", status=7)
            return
        self._steps(emit, unit, received, due, finish, on_time)
        if fee:
            emit(finish - 1800, "dossier.payment_made", amount=fee, online=rng.random() < unit.quality - 0.15)
        if not on_time and rng.random() < 0.4 and due - 86400 > received:
            emit(due - 86400, "dossier.due_reappointed", new_due_at=_iso(finish + 86400),
                 apology_sent_at=_iso(due - 86400))
        emit(finish, "dossier.status_changed", status=9, officer_id=unit.officers[-1])
        electronic = rng.random() < unit.quality - 0.05
        emit(finish + 60, "dossier.result_issued", electronic=electronic, returns_document=procedure["document"])
        if electronic:
            emit(finish + 120, "dossier.digitisation_recorded", result_digitised=True)
        emit(finish + rng.randint(3600, 3 * 86400), "dossier.status_changed", status=10)
        if rng.random() < 0.3:
            rating = "not_satisfied" if rng.random() < 0.03 else rng.choice(["satisfied", "very_satisfied"])
            emit(finish + rng.randint(86400, 4 * 86400), "dossier.rated", rating=rating)
        if rng.random() < 0.005:
            self._petition(unit, code, finish + 2 * 86400)

    def _steps(self, emit: Callable, unit: UnitSpec, received: int, due: int, finish: int, on_time: bool) -> None:
        rng = self.rng
        bounds = [received, received + (due - received) // 3, received + 2 * (due - received) // 3, due]
        actual = [received, received + (finish - received) // 3, received + 2 * (finish - received) // 3, finish]
        for index, department in enumerate(("Bộ phận một cửa", "Phòng chuyên môn", "Lãnh đạo")):
            step = {"step_id": f"S{index + 1}", "officer_id": rng.choice(unit.officers), "department": department,
                    "started_at": _iso(actual[index]), "step_due_at": _iso(bounds[index + 1])}
            # The step log is synced when a step ends; a step still running at the end of the history
            # shows up as started only.
            if actual[index + 1] <= self.end:
                emit(actual[index + 1], "dossier.processing_step", **step, completed_at=_iso(actual[index + 1]))
            else:
                emit(actual[index], "dossier.processing_step", **step)
        emit(received + 60, "dossier.status_changed", status=4, officer_id=unit.officers[0])

    def _petition(self, unit: UnitSpec, dossier: str | None, at: int) -> None:
        rng = self.rng
        petition = f"PAKN-{unit.code}-{self._sequence:08d}"
        if at > self.end:
            return
        self._emit(at, "petition.received", f"{petition}-1", petition_id=petition, unit_code=unit.code,
                   about=rng.choice(["procedure", "officer", "other"]), received_at=_iso(at), dossier_code=dossier)
        answer = at + rng.randint(2, 25) * 86400
        if answer <= self.end:
            self._emit(answer, "petition.answered", f"{petition}-2", petition_id=petition)
            if rng.random() < 0.5 and answer + 86400 <= self.end:
                self._emit(answer + 86400, "petition.rated", f"{petition}-3", petition_id=petition,
                           satisfied=rng.random() < 0.85)

    def events(self, on_progress: Callable[[str, int, int], None] | None = None) -> Iterator[bytes]:
        """The whole history as JSON lines, in event-time order. `on_progress(stage, done, total)` hears
        how far it is: stage `dossiers` while they are made, then `events` while they are handed out."""
        self._build_units()
        self._build_catalogue()
        for number in range(1, self.dossier_count + 1):
            self._dossier(number)
            if on_progress is not None and (number % 500 == 0 or number == self.dossier_count):
                on_progress("dossiers", number, self.dossier_count)
        for _ in range(max(1, self.dossier_count // 400)):
            unit = self.rng.choice(self.units)
            self._petition(unit, None, self._received_at())
        self._events.sort()
        total = len(self._events)
        for number, (_, _, body) in enumerate(self._events, start=1):
            yield body
            if on_progress is not None and (number % 20000 == 0 or number == total):
                on_progress("events", number, total)
