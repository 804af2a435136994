"""DongBoHoSoMC dossier records and CapNhatTienDoHoSoMC progress records → chiso766 events.

A dossier record is the whole current state of a dossier, resent on every action. Each record is
translated on its own, with no memory of earlier records: every fact it states becomes an event whose
id is derived from the dossier code and the fact (`dvcqg:CODE:s9:EPOCH`), so a record sent five times
gives the same events five times, and the core's semilattice state takes them as once. What differs
between two records of one dossier is resolved by the core, whatever the order they arrive in:

- statuses: each status's earliest instant wins; a record's dates (NgayTiepNhan, NgayKetThucXuLy,
  NgayTra, NgayTuChoi) and progress records' ThoiDiemXuLy both feed it;
- the receipt and its due: every record proposes its NgayHenTra as the receipt's due, under an event id
  that ranks the records by their own status time (earliest first), so the earliest record's due is
  the original whichever arrives first;
- re-appointed dues: every record's NgayHenTra is also a re-appointment candidate; the core ignores
  one equal to the original, so a changed NgayHenTra is a re-appointed due and an unchanged one none;
- supplements: DanhSachHoSoBoSung items and progress records with status 5 propose request instants
  (the same instant gives the same event id); the core counts requests with no receipt between them as
  one, so one request reported both ways is never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest import loose
from ingest.loose import LooseValueError, flag, instant, integer, items, text
from ingest.privacy import Pseudonymiser
from schemas import events as ev

SOURCE = "dvcqg-sync"
APPROXIMATE_SOURCE = "dvcqg-sync~arrival"  # an event timed by its record's arrival, not by the record
FAR = 9_999_999_999  # ranks epoch seconds in descending order as fixed-width text
# Statuses a dossier record dates itself: the field holding each one's instant.
DATED_STATUSES = {3: "NgayTuChoi", 9: "NgayKetThucXuLy", 10: "NgayTra"}
# Statuses whose time only progress records carry (a record states them, never when they began).
PROGRESS_STATUSES = frozenset({4, 5, 6})
MAX_CODE = 128


@dataclass
class Translated:
    """What one record became: events, or a rejection (`reason`, `detail`), and what was noticed."""

    events: list[ev.EventBase] = field(default_factory=list)
    reason: str | None = None
    detail: str = ""
    approximate: int = 0  # events timed by the arrival of the record
    notes: list[str] = field(default_factory=list)  # facts left out, by reason (counted by callers)

    @property
    def rejected(self) -> bool:
        return self.reason is not None


def _reject(reason: str, detail: str) -> Translated:
    return Translated(reason=reason, detail=detail)


def unit_of(dossier_code: str, hint: str) -> str:
    """The envelope's madonvi, else the query string's, else the MaHoSo prefix (before the first `-`)."""
    if hint:
        return hint
    prefix, dash, _ = dossier_code.partition("-")
    return prefix if dash and prefix and " " not in prefix else ""


def code_problem(name: str, value: str) -> str | None:
    if len(value) > MAX_CODE:
        return f"`{name}` is {len(value)} characters, at most {MAX_CODE}"
    if not ev.usable_code(value):
        return f"`{name}` holds a control character or `|`"
    return None


class DossierTranslator:
    """Translates records of one deployment; `pseudonyms` holds its secret."""

    def __init__(self, pseudonyms: Pseudonymiser, source: str = SOURCE):
        self.pseudonyms, self.source = pseudonyms, source

    # --- DongBoHoSoMC ----------------------------------------------------------------------------

    def dossier(self, record: object, unit_hint: str = "", arrival: int | None = None) -> Translated:
        if not isinstance(record, dict):
            return _reject("not_a_record", "a record must be a JSON object")
        try:
            return self._dossier(record, unit_hint, arrival)
        except LooseValueError as error:
            return _reject("bad_value", str(error))
        except (ValueError, OverflowError) as error:
            return _reject("bad_value", str(error)[:300])

    def _dossier(self, record: dict, unit_hint: str, arrival: int | None) -> Translated:
        code = text(record, "MaHoSo")
        if not code:
            return _reject("no_dossier_code", "`MaHoSo` is missing: the record cannot be keyed")
        unit = unit_of(code, unit_hint)
        if not unit:
            return _reject("unit_unknown", "no unit: neither the envelope's `madonvi`, the query string's"
                           " `MaDinhDanhDV` nor a `MaHoSo` prefix (UNIT-yyMMdd-SEQ) names one")
        status = integer(record, "TrangThaiHoSo")
        if status is None or not 1 <= status <= 10:
            return _reject("bad_status", f"`TrangThaiHoSo` {status!r} is not a status 1-10")
        procedure = text(record, "MaTTHC")
        for name, value in (("MaHoSo", code), ("madonvi", unit), ("MaTTHC", procedure)):
            problem = code_problem(name, value) if value else None
            if problem:
                return _reject("unusable_code", problem)
        channel = integer(record, "KenhThucHien", 1)
        if channel not in (1, 2, 3):
            return _reject("bad_channel", f"`KenhThucHien` {channel} is not 1, 2 or 3")
        dates = {name: instant(record, name) for name in
                 ("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayTuChoi", "NgayKetThucXuLy", "NgayTra")}
        supplements = [(instant(item, "NgayBoSung"), instant(item, "NgayTiepNhanBoSung"))
                       for item in items(record, "DanhSachHoSoBoSung")]
        own = [moment for name, moment in dates.items() if moment is not None and name != "NgayHenTra"]
        own += [moment for pair in supplements for moment in pair if moment is not None]
        out = Translated()
        record_at = max(own) if own else arrival
        emit = _Emitter(out, code, self.source)

        if dates["NgayNopHoSo"] is not None and channel == 2:
            emit.status(1, dates["NgayNopHoSo"], "s1")
        for dated, name in DATED_STATUSES.items():
            if dates[name] is not None:
                emit.status(dated, dates[name], f"s{dated}")
        undated = status not in PROGRESS_STATUSES and status not in (1, 2) and \
            (status not in DATED_STATUSES or dates[DATED_STATUSES[status]] is None)
        if undated:  # 7, 8, or 3/9/10 with their date empty: the record's arrival, if known
            if arrival is None:
                out.notes.append("status_time_unknown")
            else:
                emit.add(ev.DossierStatusChanged, f"s{status}~arrival", arrival, approximate=True, status=status)

        if status not in (1, 3):  # 1: submitted online, not accepted yet; 3: refused at reception
            received_at = dates["NgayTiepNhan"]
            approximate = received_at is None
            if approximate:
                if arrival is None:
                    return _reject("no_receipt_time", f"status {status} needs `NgayTiepNhan` (the clock's start)"
                                   " and the record has no arrival time to stand in for it")
                received_at = arrival
            if not procedure:
                return _reject("no_procedure", "`MaTTHC` is missing: a received dossier needs its procedure")
            self._receipt(emit, record, unit, procedure, channel, received_at, dates["NgayHenTra"],
                          record_at if record_at is not None else received_at, status, approximate)
            self._facts(emit, record, received_at, dates, supplements)
        return out

    def _receipt(self, emit: _Emitter, record: dict, unit: str, procedure: str, channel: int, received_at: int,
                 due: int | None, record_at: int, status: int, approximate: bool) -> None:
        fee = sum(max(0, integer(item, "Gia", 0) or 0) for item in items(record, "DanhSachLePhi"))
        # Max event id wins the receipt (occurred_at being equal): ids count down with the record's
        # own time, then its status, then its due, so the earliest record's due is the original.
        rank = f"{FAR - record_at:010d}{9 - min(status, 9)}{FAR - (due or 0):010d}"
        emit.add(ev.DossierReceived, f"receipt:{rank}", received_at, approximate=approximate,
                 unit_code=unit, procedure_code=procedure, channel=channel,
                 received_at=loose.local_datetime(received_at),
                 due_at=loose.local_datetime(due) if due is not None else None,
                 fee_amount=min(fee, ev.MAX_MONEY))
        if due is not None:
            emit.add(ev.DueReappointed, f"due:{due}", record_at, new_due_at=loose.local_datetime(due))
        # A record that reaches us is a record the one-stop system synced to the portal.
        emit.add(ev.PortalSyncAcknowledged, "synced", received_at, approximate=approximate)
        paid = integer(record, "DuocThanhToanTrucTuyen", 0)
        if fee > 0 and paid in (1, 2):
            emit.add(ev.PaymentMade, "paid-online", record_at, amount=min(fee, ev.MAX_MONEY), online=True)

    def _facts(self, emit: _Emitter, record: dict, received_at: int, dates: dict[str, int | None],
               supplements: list[tuple[int | None, int | None]]) -> None:
        documents = [item for item in items(record, "TaiLieuNop") if not flag(item, "IsDeleted")]
        components = flag(record, "HoSoCoThanhPhanSoHoa") or any(flag(item, "DuocSoHoa") for item in documents)
        reused = any(flag(item, "DuocTaiSuDung") or text(item, "MaKetQuaThayThe") for item in documents)
        storage = any(flag(item, "DuocLayTuKhoDMQG") for item in documents)
        population = any(text(item, "MaCSDL") for item in items(record, "DSKetNoiCSDL")) \
            or flag(record, "TaiKhoanDuocXacThucVoiVNeID")
        bits = components | reused << 1 | storage << 2 | population << 3
        if bits:
            emit.add(ev.DigitisationRecorded, f"digitised:{bits}", received_at, components_digitised=components,
                     reused_digitised_data=reused, personal_storage_linked=storage, population_data_used=population)
        for requested, answered in supplements:
            if requested is not None:
                emit.add(ev.SupplementRequested, f"supplement:{requested}", requested)
            if answered is not None:
                emit.add(ev.SupplementReceived, f"supplement-received:{answered}", answered)
        finished = dates["NgayKetThucXuLy"] if dates["NgayKetThucXuLy"] is not None else dates["NgayTra"]
        if finished is not None:
            results = items(record, "DanhSachGiayToKetQua")
            electronic = any(text(item, "DuongDanTepTinKetQua") for item in results)
            emit.add(ev.ResultIssued, f"result:{int(electronic)}{int(bool(results))}", finished,
                     electronic=electronic, returns_document=bool(results))
            if electronic:
                emit.add(ev.DigitisationRecorded, "result-digitised", finished, result_digitised=True)

    # --- CapNhatTienDoHoSoMC ---------------------------------------------------------------------

    def progress(self, record: object, unit_hint: str = "", arrival: int | None = None) -> Translated:
        if not isinstance(record, dict):
            return _reject("not_a_record", "a record must be a JSON object")
        try:
            return self._progress(record)
        except LooseValueError as error:
            return _reject("bad_value", str(error))
        except (ValueError, OverflowError) as error:
            return _reject("bad_value", str(error)[:300])

    def _progress(self, record: dict) -> Translated:
        code = text(record, "MaHoSo")
        if not code:
            return _reject("no_dossier_code", "`MaHoSo` is missing: the step cannot be keyed")
        problem = code_problem("MaHoSo", code)
        if problem:
            return _reject("unusable_code", problem)
        status = integer(record, "TrangThai")
        if status is None or not 1 <= status <= 10:
            return _reject("bad_status", f"`TrangThai` {status!r} is not a status 1-10")
        at = instant(record, "ThoiDiemXuLy")
        if at is None:
            return _reject("no_time", "`ThoiDiemXuLy` is missing: a step without its time says nothing")
        officer = self.pseudonyms.officer(text(record, "NguoiXuLy"))
        department = text(record, "PhongBanXuLy")[:512]
        out = Translated()
        emit = _Emitter(out, code, self.source)
        if status == ev.SUPPLEMENT_REQUESTED:
            emit.add(ev.SupplementRequested, f"supplement:{at}", at)
        else:
            emit.add(ev.DossierStatusChanged, f"p{status}:{at}", at, status=status, officer_id=officer)
        started, step_due = instant(record, "NgayBatDau"), instant(record, "NgayKetThucTheoQuyDinh")
        if started is not None and step_due is not None and officer is not None and started <= at:
            # The dedupe key of INGEST.md §3, its free text reduced to a keyed digest.
            step = self.pseudonyms.token(str(at), str(status), text(record, "NoiDungXuLy"))
            emit.add(ev.ProcessingStep, f"step:{step}", at, step_id=step, officer_id=officer,
                     department=department, started_at=loose.local_datetime(started),
                     step_due_at=loose.local_datetime(step_due), completed_at=loose.local_datetime(at))
        elif started is not None or step_due is not None:
            out.notes.append("step_incomplete")
        return out


class _Emitter:
    """Builds a record's events with their deterministic ids."""

    __slots__ = ("code", "out", "source")

    def __init__(self, out: Translated, code: str, source: str):
        self.out, self.code, self.source = out, code, source

    def add(self, kind: type[ev.EventBase], fact: str, at: int, approximate: bool = False, **fields) -> None:
        event = kind(event_id=f"dvcqg:{self.code}:{fact}", occurred_at=loose.local_datetime(at),
                     source=APPROXIMATE_SOURCE if approximate else self.source, dossier_code=self.code, **fields)
        self.out.events.append(event)
        if approximate:
            self.out.approximate += 1

    def status(self, status: int, at: int, fact: str) -> None:
        self.add(ev.DossierStatusChanged, f"{fact}:{at}", at, status=status)

