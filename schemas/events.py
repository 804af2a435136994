"""The event contract: every message chiso766 consumes, as typed msgspec structs.

Every event carries `event_id`, `event_type` (the union tag), `schema_version`, `occurred_at`
(RFC 3339 with an offset), `source` (the producing system) and its entity key: `dossier_code`,
`petition_id`, `procedure_code` or `unit_code`. Unknown fields are ignored so producers can add
fields without breaking consumers; unknown event types are rejected.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION = 1
# Instants must fall in the years the working calendar knows holidays for (the `holidays` package
# computes Vietnam's lunar holidays up to 2100); anything outside is a typo in a source system.
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100
MAX_MONEY = 10**15  # VND: above any real fee, below what msgpack state encoding can hold
# A legal time limit longer than ten years is a data error, and a bound keeps every due date
# computable within the calendar's years.
MAX_TIME_LIMIT = {"hours": 20_000, "days": 3_650, "working_days": 2_500, "months": 120}
# Codes become parts of table keys, officer owners (`UNIT|OFFICER`) and Redis keys: the characters
# those use as separators, and control characters, cannot be part of a code.
CODE_SEPARATORS = ("|",)

Timestamp = Annotated[datetime, Meta(tz=True, description="RFC 3339 timestamp with a UTC offset")]
Code = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=512)]
Channel = Annotated[Literal[1, 2, 3], Meta(description="KenhThucHien: 1 in person, 2 online, 3 postal")]
Status = Annotated[int, Meta(ge=1, le=10, description="TrangThaiHoSo 1-10 (DOMAIN.md §3)")]
# TrangThaiHoSo, the portal's dossier status codes (DOMAIN.md §3): plain ints, as events carry them.
SUBMITTED = 1  # online, not yet accepted
RECEIVED = 2  # NgayTiepNhan, due date NgayHenTra issued
REFUSED_AT_RECEPTION = 3
PROCESSING = 4
SUPPLEMENT_REQUESTED = 5
OBLIGATION_REQUESTED = 6  # financial obligation
WITHDRAWN = 7  # by the applicant
STOPPED = 8  # processing stopped
PROCESSED = 9  # result ready
RETURNED = 10  # result returned
Money = Annotated[int, Meta(ge=0, le=MAX_MONEY, description="VND")]


class ImpossibleTimestamp(ValueError):
    pass


def _check_years(event: Struct, fields: tuple[str, ...]) -> None:
    for name in fields:
        value = getattr(event, name)
        if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ImpossibleTimestamp(
                f"`{name}` year {value.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR} - at `$.{name}`"
            )


_UNUSABLE = re.compile(r"[\x00-\x1f\x7f|]")


def usable_code(code: str) -> bool:
    """False for a code holding an ASCII control character or `|`."""
    return _UNUSABLE.search(code) is None


def unusable_code(event: Struct) -> tuple[str, str] | None:
    """The first (field, code) of an event that holds an ASCII control character or `|`: the
    separators of table keys and officer owners (`UNIT|OFFICER`). None when every code is usable."""
    for name in event.__code_fields__:  # type: ignore[attr-defined]
        value = getattr(event, name)
        if value is None:
            continue
        for code in (value,) if value.__class__ is str else value:
            if not usable_code(code):
                return name, code
    return None


class EventBase(Struct, kw_only=True, tag_field="event_type", omit_defaults=True, gc=False):
    event_id: Code
    schema_version: Annotated[int, Meta(ge=1, le=SCHEMA_VERSION)] = SCHEMA_VERSION
    occurred_at: Timestamp
    source: Code = "unknown"

    __timestamp_fields__: ClassVar[tuple[str, ...]] = ()
    __code_fields__: ClassVar[tuple[str, ...]] = ()
    # Instants that state something that already happened (not dues): none may lie in the future.
    __fact_fields__: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        # msgspec already refused impossible calendar dates; this refuses implausible years.
        if not EARLIEST_YEAR <= self.occurred_at.year <= LATEST_YEAR:
            _check_years(self, ("occurred_at",))
        # `_check_years`, inlined for the usual event whose years are fine: it runs for every event.
        for name in self.__timestamp_fields__:
            value = getattr(self, name)
            if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
                _check_years(self, (name,))


class TimeLimit(Struct, kw_only=True, omit_defaults=True, gc=False):
    """A procedure's legal time limit for one channel (or all channels when `channel` is absent)."""

    value: Annotated[float, Meta(gt=0, le=20_000)]
    unit: Literal["hours", "days", "working_days", "months"]
    channel: Channel | None = None

    def __post_init__(self) -> None:
        if self.value > MAX_TIME_LIMIT[self.unit]:
            raise ValueError(f"a time limit of {self.value:g} {self.unit} is over the {MAX_TIME_LIMIT[self.unit]:,}"
                             f" {self.unit} (ten years) a procedure can have - at `$.value`")


# --- dossier events (key: dossier_code) ---------------------------------------------------------


class DossierEvent(EventBase, kw_only=True):
    dossier_code: Code
    __code_fields__ = ("dossier_code",)


class DossierReceived(DossierEvent, kw_only=True, tag="dossier.received"):
    """Status 2: received; NgayTiepNhan and NgayHenTra issued."""

    unit_code: Code
    procedure_code: Code
    channel: Channel
    received_at: Timestamp
    due_at: Timestamp | None = None
    time_limit: TimeLimit | None = None
    fee_amount: Money = 0
    officer_id: Code | None = None
    __timestamp_fields__ = ("received_at", "due_at")
    __fact_fields__ = ("received_at",)
    __code_fields__ = ("dossier_code", "unit_code", "procedure_code", "officer_id")


class DossierStatusChanged(DossierEvent, kw_only=True, tag="dossier.status_changed"):
    status: Status
    officer_id: Code | None = None
    __code_fields__ = ("dossier_code", "officer_id")


class SupplementRequested(DossierEvent, kw_only=True, tag="dossier.supplement_requested"):
    reason: Text = ""


class SupplementReceived(DossierEvent, kw_only=True, tag="dossier.supplement_received"):
    pass


class FinancialObligationRequested(DossierEvent, kw_only=True, tag="dossier.financial_obligation_requested"):
    amount: Money = 0


class PaymentMade(DossierEvent, kw_only=True, tag="dossier.payment_made"):
    amount: Money
    online: bool


class DigitisationRecorded(DossierEvent, kw_only=True, tag="dossier.digitisation_recorded"):
    """Flags only ever switch on: a later event cannot un-digitise a dossier."""

    components_digitised: bool = False
    result_digitised: bool = False
    reused_digitised_data: bool = False
    personal_storage_linked: bool = False
    population_data_used: bool = False


class ResultIssued(DossierEvent, kw_only=True, tag="dossier.result_issued"):
    electronic: bool
    returns_document: bool = True


class PortalSyncAcknowledged(DossierEvent, kw_only=True, tag="dossier.portal_sync_acknowledged"):
    pass


class DossierRated(DossierEvent, kw_only=True, tag="dossier.rated"):
    rating: Literal["very_satisfied", "satisfied", "not_satisfied"]


class ProcessingStep(DossierEvent, kw_only=True, tag="dossier.processing_step"):
    """One step of the processing log (tiến trình); sent when a step starts and again when it ends."""

    step_id: Code
    officer_id: Code
    department: Text = ""
    started_at: Timestamp
    step_due_at: Timestamp
    completed_at: Timestamp | None = None
    __timestamp_fields__ = ("started_at", "step_due_at", "completed_at")
    __fact_fields__ = ("started_at", "completed_at")
    __code_fields__ = ("dossier_code", "step_id", "officer_id")


class DueReappointed(DossierEvent, kw_only=True, tag="dossier.due_reappointed"):
    """A new return date after an apology letter; scoring keeps the original (DOMAIN.md §3.6)."""

    new_due_at: Timestamp
    apology_sent_at: Timestamp | None = None
    __timestamp_fields__ = ("new_due_at", "apology_sent_at")
    __fact_fields__ = ("apology_sent_at",)


class PetitionLinked(DossierEvent, kw_only=True, tag="dossier.petition_linked"):
    petition_id: Code
    __code_fields__ = ("dossier_code", "petition_id")


# --- petition (PAKN) events (key: petition_id) --------------------------------------------------


class PetitionEvent(EventBase, kw_only=True):
    petition_id: Code
    __code_fields__ = ("petition_id",)


class PetitionReceived(PetitionEvent, kw_only=True, tag="petition.received"):
    unit_code: Code
    about: Literal["procedure", "officer", "other"]
    received_at: Timestamp
    dossier_code: Code | None = None
    __timestamp_fields__ = ("received_at",)
    __fact_fields__ = ("received_at",)
    __code_fields__ = ("petition_id", "unit_code", "dossier_code")


class PetitionAnswered(PetitionEvent, kw_only=True, tag="petition.answered"):
    pass


class PetitionRated(PetitionEvent, kw_only=True, tag="petition.rated"):
    satisfied: bool


class PetitionReraised(PetitionEvent, kw_only=True, tag="petition.reraised"):
    pass


class PetitionRefused(PetitionEvent, kw_only=True, tag="petition.refused"):
    """Refused (not taken up): due within 2 working days of receipt; the petition ends here."""


class PetitionSupplementRequested(PetitionEvent, kw_only=True, tag="petition.supplement_requested"):
    """The petitioner is asked for more: the first request is due within 5 working days of receipt."""


class PetitionAwaitingPublication(PetitionEvent, kw_only=True, tag="petition.awaiting_publication"):
    """Answered and waiting to be published: publication is due within 2 working days."""


class PetitionPublished(PetitionEvent, kw_only=True, tag="petition.published"):
    pass


# --- catalogue events (key: procedure_code / unit_code) -----------------------------------------


class ProcedureUpserted(EventBase, kw_only=True, tag="procedure.upserted"):
    procedure_code: Code
    name: Text
    authority_unit: Code
    handled_by: list[Code]
    time_limits: list[TimeLimit] = []
    online_level: Literal["none", "partial", "full"] = "none"
    fee_bearing: bool = False
    for_citizens: bool = True
    returns_document: bool = True
    decision_date: date | None = None
    legal_effective_date: date | None = None
    published_at: Timestamp | None = None
    content_parts_present: Annotated[int, Meta(ge=0, le=7)] = 0
    __timestamp_fields__ = ("published_at", "decision_date", "legal_effective_date")
    __fact_fields__ = ("published_at",)
    __code_fields__ = ("procedure_code", "authority_unit", "handled_by")


HourMinute = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class UnitUpserted(EventBase, kw_only=True, tag="unit.upserted"):
    unit_code: Code
    name: Text
    name_en: Text = ""
    level: Literal["province", "ministry", "agency", "commune"]
    parent: Code | None = None
    peer_group: Code | None = None
    offers_e_certified_copy: bool = False
    working_hours: list[tuple[HourMinute, HourMinute]] | None = None
    receipt_cutoff: HourMinute | None = None
    __code_fields__ = ("unit_code", "parent", "peer_group")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.working_hours is not None:
            previous_end = "00:00"
            for start, end in self.working_hours:
                if not previous_end <= start < end:
                    raise ValueError(f"working hours must be ordered, non-overlapping windows that end after"
                                     f" they start, got {self.working_hours} - at `$.working_hours`")
                previous_end = end


DossierEvents = (
    DossierReceived
    | DossierStatusChanged
    | SupplementRequested
    | SupplementReceived
    | FinancialObligationRequested
    | PaymentMade
    | DigitisationRecorded
    | ResultIssued
    | PortalSyncAcknowledged
    | DossierRated
    | ProcessingStep
    | DueReappointed
    | PetitionLinked
)
PetitionEvents = (
    PetitionReceived
    | PetitionAnswered
    | PetitionRated
    | PetitionReraised
    | PetitionRefused
    | PetitionSupplementRequested
    | PetitionAwaitingPublication
    | PetitionPublished
)
CatalogEvents = ProcedureUpserted | UnitUpserted
Event = DossierEvents | PetitionEvents | CatalogEvents

EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (*DossierEvents.__args__, *PetitionEvents.__args__, *CatalogEvents.__args__)
}



class FutureCheck:
    """Finds the first instant of an event that lies after `not_after` (epoch seconds): `occurred_at`
    or a fact field. The limit is kept as a datetime in each zone the events use (decoded events
    share one tzinfo object per offset): two datetimes of one tzinfo object compare field by field,
    while any other pair calls utcoffset() on both — which made this check cost more than the rest
    of decoding an event. Make one per batch, not one per message."""

    MAX_ZONES = 64

    def __init__(self, not_after: int):
        self.not_after = not_after
        self.limit = datetime.fromtimestamp(not_after, UTC)
        self._limits: dict[object, datetime] = {}

    def _limit(self, zone: tzinfo | None) -> datetime:
        limit = self._limits.get(zone)
        if limit is None:
            if len(self._limits) >= self.MAX_ZONES:
                self._limits.clear()
            limit = self._limits[zone] = datetime.fromtimestamp(self.not_after, zone)
        return limit

    def first_future_field(self, event: EventBase) -> str | None:
        occurred = event.occurred_at
        zone = occurred.tzinfo
        limit = self._limits.get(zone) or self._limit(zone)
        if occurred > limit:
            return "occurred_at"
        for name in event.__fact_fields__:
            value = getattr(event, name)
            if value is not None and value > (limit if value.tzinfo is zone else self._limit(value.tzinfo)):
                return name
        return None


def record_version(event: EventBase, at: int) -> tuple[int, str]:
    """The last-writer-wins version of a record (a receipt, a unit, a procedure): its time, then its
    event id, then a checksum of its content — so two different records sent under one event id at
    one instant (a source's bug) resolve the same way whichever arrives first."""
    return at, f"{event.event_id}#{zlib.crc32(encode(event)):08x}"


def entity_kind(event: EventBase) -> Literal["dossier", "petition", "catalogue"]:
    """What an event is about, which decides the topic it belongs on (contracts.topics.TOPIC_OF_ENTITY)."""
    if isinstance(event, DossierEvent):
        return "dossier"
    if isinstance(event, PetitionEvent):
        return "petition"
    return "catalogue"


def entity_key(event: EventBase) -> str:
    """The Kafka message key: dossier code, petition id, procedure code or unit code."""
    if isinstance(event, DossierEvent):
        return event.dossier_code
    if isinstance(event, PetitionEvent):
        return event.petition_id
    if isinstance(event, ProcedureUpserted):
        return event.procedure_code
    if isinstance(event, UnitUpserted):
        return event.unit_code
    raise TypeError(f"{type(event).__name__} has no entity key")


encode = msgspec.json.Encoder().encode
