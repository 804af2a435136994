"""A sync call (or an archived one) → its records' events and per-record reasons.

Two shapes arrive: the integration envelope `{"session", "madonvi", "service", "isUpdating", "data"}`
and the bare array provincial gateways post (unit and service then come from the query string or the
caller). Every event is checked against the event contract (schemas.decode) before it counts, so what
leaves here is exactly what a worker accepts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ingest import catalogue
from ingest.dvcqg import DossierTranslator, Translated
from ingest.loose import LooseValueError, shown, text
from ingest.privacy import scrubbed
from schemas import Rejection, decode
from schemas import events as ev

DOSSIERS, PROGRESS, CATALOGUE = "DongBoHoSoMC", "CapNhatTienDoHoSoMC", "LayThuTuc"
SERVICES = (DOSSIERS, PROGRESS, CATALOGUE)


@dataclass(frozen=True)
class RecordRejection:
    index: int  # the record's place in the call's `data`
    dossier_code: str  # MaHoSo / MATTHC when readable, else ""
    reason: str
    detail: str
    record: object  # the record with personal data removed (privacy.scrubbed)

    def as_json(self) -> dict:
        return {"index": self.index, "MaHoSo": self.dossier_code, "reason": self.reason, "detail": self.detail}


@dataclass
class CallResult:
    service: str
    unit: str
    records: int = 0
    events: list[tuple[ev.EventBase, bytes]] = field(default_factory=list)
    rejections: list[RecordRejection] = field(default_factory=list)
    approximate: int = 0
    notes: Counter = field(default_factory=Counter)


class CallError(ValueError):
    """The call as a whole cannot be read (not the envelope, not an array, an unknown service)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def envelope(body: object, service: str = "", unit: str = "") -> tuple[str, str, list]:
    """(service, unit, records) of a call body; the query string's service/unit fill what a bare
    array lacks, and the envelope's own win over them."""
    if isinstance(body, list):
        records = body
    elif isinstance(body, dict) and "data" in body:
        try:
            service = text(body, "service") or service
            unit = text(body, "madonvi") or text(body, "MaDinhDanhDV") or unit
        except LooseValueError as error:
            raise CallError("bad_envelope", str(error)) from None
        if not isinstance(body["data"], list):  # INGEST.md §1: `data` is an array, even of one record
            raise CallError("bad_envelope", f"`data` is {shown('data', body['data'])}, not a JSON array of records")
        records = body["data"]
    elif isinstance(body, dict) and ("MaHoSo" in body or "MATTHC" in body):
        records = [body]  # one bare record, as some archives hold them one per line
        if not service:
            service = CATALOGUE if "MATTHC" in body else (PROGRESS if "ThoiDiemXuLy" in body else DOSSIERS)
    else:
        raise CallError("bad_envelope", "expected the envelope {session, madonvi, service, data} or a JSON array"
                        " of records")
    if not service and records and isinstance(records[0], dict):
        first = records[0]
        service = CATALOGUE if "MATTHC" in first else (PROGRESS if "ThoiDiemXuLy" in first else DOSSIERS)
    if service not in SERVICES:
        raise CallError("unknown_service", f"service {shown('service', service)} is not one of {', '.join(SERVICES)}")
    if unit and not ev.usable_code(unit):
        raise CallError("bad_unit", "the unit code holds a control character or `|`")
    return service, unit, records


def _key_of(record: object) -> str:
    if not isinstance(record, dict):
        return ""
    value = record.get("MaHoSo", record.get("MATTHC", ""))
    return value[:128] if isinstance(value, str) and ev.usable_code(value) else ""


def translate_call(translator: DossierTranslator, service: str, unit: str, records: list,
                   arrival: int | None) -> CallResult:
    result = CallResult(service, unit, records=len(records))
    for index, record in enumerate(records):
        if service == DOSSIERS:
            done = translator.dossier(record, unit, arrival)
        elif service == PROGRESS:
            done = translator.progress(record, unit, arrival)
        else:
            done = catalogue.procedure(record, unit, arrival)
        checked = _checked(done)
        if checked.rejected:
            result.rejections.append(RecordRejection(index, _key_of(record), checked.reason or "", checked.detail,
                                                     scrubbed(record)))
            continue
        result.events += checked.events_encoded
        result.approximate += checked.approximate
        result.notes.update(checked.notes)
    return result


@dataclass
class _Checked:
    reason: str | None
    detail: str
    events_encoded: list[tuple[ev.EventBase, bytes]]
    approximate: int
    notes: list[str]

    @property
    def rejected(self) -> bool:
        return self.reason is not None


def _checked(done: Translated) -> _Checked:
    """Each event through the contract's decoder: a record whose event the worker would refuse is
    refused here, whole, with the decoder's reason."""
    if done.rejected:
        return _Checked(done.reason, done.detail, [], 0, done.notes)
    encoded = []
    for event in done.events:
        body = ev.encode(event)
        checked = decode(body)
        if isinstance(checked, Rejection):
            return _Checked(f"invalid_{checked.reason}", checked.describe(), [], 0, done.notes)
        encoded.append((checked, body))
    return _Checked(None, "", encoded, done.approximate, done.notes)
