"""Values as real integrators send them: every value a string or a number, flags as "0"/"1",
"True"/"False" or numbers, dates as `yyyyMMddHHmmss` in Asia/Ho_Chi_Minh or ISO 8601 with or
without milliseconds and offset, and `""` (or null) for a value that is missing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from ingest.privacy import KEPT_FIELDS

VIETNAM = timezone(timedelta(hours=7), "ICT")
_COMPACT = re.compile(r"^\d{14}$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d+(\.0+)?$")
_TRUE = frozenset({"1", "true", "yes", "y", "có"})
_FALSE = frozenset({"0", "false", "no", "n", "không", ""})
# Envelope fields an error may quote besides a record's kept fields: none of them is personal data.
_QUOTABLE = KEPT_FIELDS | {"service", "madonvi", "MaDinhDanhDV", "received_at", "maTTHC"}
_KINDS = {list: "a list", dict: "an object", str: "a string", bool: "a boolean"}


def shown(field: str, value: object) -> str:
    """How an error names a bad value: quoted (cut to 40 characters) only when it is a single value
    of a field that is not personal (privacy.KEPT_FIELDS); otherwise only its kind, so no answer,
    dead letter or log line ever carries a name, a number or free text an applicant wrote."""
    if field in _QUOTABLE and isinstance(value, str | int | float) and not isinstance(value, bool):
        quoted = repr(value)
        return quoted if len(quoted) <= 40 else quoted[:37] + "..."
    kind = _KINDS.get(type(value), "a number" if isinstance(value, int | float) else "a value")
    return f"({kind})"


class LooseValueError(ValueError):
    """A value that cannot be read as what its field holds; `field` names it for the answer."""

    def __init__(self, field: str, value: object, expected: str):
        super().__init__(f"`{field}` {shown(field, value)} is not {expected}")
        self.field = field


def missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(record: dict, field: str) -> str:
    """A code or name: strings as they are (trimmed), numbers as their decimal text."""
    value = record.get(field)
    if missing(value):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | float):
        return str(value).strip()
    raise LooseValueError(field, value, "a string or a number")


def integer(record: dict, field: str, default: int | None = None) -> int | None:
    value = record.get(field)
    if missing(value):
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip().split(".")[0])
    raise LooseValueError(field, value, "a whole number")


def flag(record: dict, field: str) -> bool:
    """0/1, "0"/"1", "True"/"False", true/false; missing is false. A number above 1 (a code such as
    DuocTaiSuDung 2) is true."""
    value = record.get(field)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        if _INTEGER.match(lowered):
            return int(lowered.split(".")[0]) != 0
    raise LooseValueError(field, value, "a flag (0/1, True/False)")


def instant(record: dict, field: str) -> int | None:
    """Epoch seconds of a date field, None when it is missing. A date without an offset is local
    time in Asia/Ho_Chi_Minh (UTC+7, no daylight saving)."""
    value = record.get(field)
    if missing(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise LooseValueError(field, value, "a date (yyyyMMddHHmmss or ISO 8601)")
    raw = value.strip()
    try:
        if _COMPACT.match(raw):
            moment = datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=VIETNAM)
        elif _DATE_ONLY.match(raw):
            moment = datetime.fromisoformat(raw).replace(tzinfo=VIETNAM)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=VIETNAM)
    except ValueError:
        raise LooseValueError(field, value, "a date (yyyyMMddHHmmss or ISO 8601)") from None
    if not 2000 <= moment.astimezone(UTC).year <= 2100:
        raise LooseValueError(field, value, "a date between 2000 and 2100")
    return int(moment.timestamp())


def items(record: dict, field: str) -> list[dict]:
    """A list of objects; missing, "" or null is empty. Elements that are not objects are skipped
    by the caller's count, never by an exception."""
    value = record.get(field)
    if missing(value):
        return []
    if not isinstance(value, list):
        raise LooseValueError(field, value, "a list")
    return [item for item in value if isinstance(item, dict)]


def local_iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, VIETNAM).isoformat()


def local_datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, VIETNAM)
