"""A procedure record shaped like the portal's `LayThuTuc` answer (`result[0]`) → `procedure.upserted`.

Read: MATTHC, TENTTHC, CACHTHUCTHUCHIEN[{KENH, THOIGIAN[{THOIGIANGIAIQUYET, DONVITINH, PHILEPHI[{SOTIEN}]}]}]
(time limit per channel; Giờ / Ngày / Ngày làm việc / Tháng), KETQUATHUCHIEN (a result document),
COQUANTHUCHIEN[{MADONVI}] (who handles it), COQUANCOTHAMQUYEN[{MADONVI}] (the authority; else the
call's unit), DOITUONGTHUCHIEN[{MADOITUONG}] (1 = citizens), MUCDO ("4" or "toàn trình": fully
online), TRANGTHAI (1 = public). The publicity indicators (1.1-1.3) need dates LayThuTuc's answer
does not hold; chiso766 reads them when present: NGAYBANHANH (decision), NGAYHIEULUC (in force),
NGAYCONGKHAI (published), SOPHANNOIDUNG (content parts present, 0-7).
"""

from __future__ import annotations

import hashlib

from ingest import loose
from ingest.dvcqg import SOURCE, Translated, code_problem
from ingest.loose import LooseValueError, instant, integer, items, text
from schemas import events as ev

TIME_UNITS = {"ngày làm việc": "working_days", "ngay lam viec": "working_days", "ngày": "days", "ngay": "days",
              "giờ": "hours", "gio": "hours", "tháng": "months", "thang": "months"}


def _limits(record: dict) -> list[ev.TimeLimit]:
    per_channel: dict[int, tuple[float, str]] = {}
    for way in items(record, "CACHTHUCTHUCHIEN"):
        channel = integer(way, "KENH")
        if channel not in (1, 2, 3) or channel in per_channel:
            continue
        for period in items(way, "THOIGIAN"):
            raw = period.get("THOIGIANGIAIQUYET")
            value = float(str(raw).replace(",", ".")) if not loose.missing(raw) else 0.0
            unit = TIME_UNITS.get(text(period, "DONVITINH").lower())
            if value > 0 and unit is not None:
                if value > ev.MAX_TIME_LIMIT[unit]:
                    raise LooseValueError("THOIGIANGIAIQUYET", raw, f"at most {ev.MAX_TIME_LIMIT[unit]} {unit}")
                per_channel[channel] = (value, unit)
                break
    if len(set(per_channel.values())) == 1:
        value, unit = next(iter(per_channel.values()))
        return [ev.TimeLimit(value=value, unit=unit)]  # one limit for every channel
    return [ev.TimeLimit(value=value, unit=unit, channel=channel)
            for channel, (value, unit) in sorted(per_channel.items())]


def procedure(record: object, unit_hint: str = "", arrival: int | None = None) -> Translated:
    if not isinstance(record, dict):
        return Translated(reason="not_a_record", detail="a record must be a JSON object")
    try:
        return _procedure(record, unit_hint, arrival)
    except LooseValueError as error:
        return Translated(reason="bad_value", detail=str(error))
    except (ValueError, OverflowError) as error:
        return Translated(reason="bad_value", detail=str(error)[:300])


def _procedure(record: dict, unit_hint: str, arrival: int | None) -> Translated:
    code = text(record, "MATTHC") or text(record, "maTTHC")
    if not code:
        return Translated(reason="no_procedure_code", detail="`MATTHC` is missing")
    authorities = [text(item, "MADONVI") for item in items(record, "COQUANCOTHAMQUYEN") if text(item, "MADONVI")]
    authority = authorities[0] if authorities else unit_hint
    if not authority:
        return Translated(reason="unit_unknown", detail="no authority: neither COQUANCOTHAMQUYEN nor the call's unit")
    handlers = sorted({text(item, "MADONVI") for item in items(record, "COQUANTHUCHIEN") if text(item, "MADONVI")})
    for name, value in (("MATTHC", code), ("authority", authority), *(("COQUANTHUCHIEN", h) for h in handlers)):
        problem = code_problem(name, value)
        if problem:
            return Translated(reason="unusable_code", detail=problem)
    channels = {integer(way, "KENH") for way in items(record, "CACHTHUCTHUCHIEN")}
    level = text(record, "MUCDO").lower()
    online = ("full" if level in ("4", "toàn trình", "toan trinh") else "partial") if 2 in channels else "none"
    fees = [integer(fee, "SOTIEN", 0) or 0 for way in items(record, "CACHTHUCTHUCHIEN")
            for period in items(way, "THOIGIAN") for fee in items(period, "PHILEPHI")]
    audiences = [text(item, "MADOITUONG") for item in items(record, "DOITUONGTHUCHIEN")]
    decided, effective, published = instant(record, "NGAYBANHANH"), instant(record, "NGAYHIEULUC"), \
        instant(record, "NGAYCONGKHAI")
    public = loose.missing(record.get("TRANGTHAI")) or text(record, "TRANGTHAI") == "1"
    parts = integer(record, "SOPHANNOIDUNG", 0) or 0
    at = arrival if arrival is not None else decided
    if at is None:
        return Translated(reason="no_time", detail="neither an arrival time nor `NGAYBANHANH` dates the record")
    fields = dict(
        procedure_code=code, name=text(record, "TENTTHC")[:512], authority_unit=authority,
        handled_by=handlers or [authority], time_limits=_limits(record), online_level=online,
        fee_bearing=any(amount > 0 for amount in fees), for_citizens=not audiences or "1" in audiences,
        returns_document=bool(items(record, "KETQUATHUCHIEN")),
        decision_date=loose.local_datetime(decided).date() if decided is not None else None,
        legal_effective_date=loose.local_datetime(effective).date() if effective is not None else None,
        published_at=loose.local_datetime(published) if published is not None and public else None,
        content_parts_present=max(0, min(7, parts)))
    event = ev.ProcedureUpserted(event_id="", occurred_at=loose.local_datetime(at), source=SOURCE, **fields)
    # The id names the content, so a resent record is the same event and a changed one a new one.
    digest = hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:16]
    event.event_id = f"dvcqg-catalogue:{code}:{digest}"
    return Translated(events=[event])
