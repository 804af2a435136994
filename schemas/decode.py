"""Bytes in, a typed event or a `Rejection` out — never an exception for bad input.

A message holds one event (a JSON object) or a batch (a JSON array of objects, as batched producers
and the portal's own sync protocol send). One bad element of a batch rejects only that element.
"""

from __future__ import annotations

import re
from collections import Counter

import msgspec
from msgspec import Struct

from schemas.events import Event, FutureCheck, encode, unusable_code

MAX_EVENT_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# More refused elements than this in one array are reported as one summarised rejection.
MAX_REJECTIONS_PER_ARRAY = 100
# How far ahead of the moment it is processed an event may be dated (clocks of source systems drift).
FUTURE_TOLERANCE_SECONDS = 600

_event_decoder = msgspec.json.Decoder(Event)
_batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_events_decoder = msgspec.json.Decoder(list[Event])
_PATH = re.compile(r" - at `(\$[^`]*)`$")


def _maybe_unusable(data: bytes) -> bool:
    """A JSON string holds a control character only escaped (after a backslash), and `|` or DEL as
    themselves: a message with none of the three holds no unusable code and is not searched
    field by field. Byte values, not one-byte strings: `int in bytes` is a plain memchr."""
    return 124 in data or 92 in data or 127 in data  # `|`, `\`, DEL


class Rejection(Struct, frozen=True):
    """Why a message (or one element of a batch) was refused, with its original bytes."""

    reason: str  # a short stable code, used as a metric label
    detail: str  # a sentence a person can act on
    path: str | None
    raw: bytes

    def describe(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.reason}{where}: {self.detail}"


def _reason_for(message: str) -> str:
    if message.startswith("Invalid value") and "$.event_type" in message:
        return "unknown_event_type"
    if "missing required field" in message:
        return "missing_field"
    if "timezone" in message or "RFC3339" in message or "is outside" in message:
        return "impossible_timestamp"
    if message.startswith("Expected") and ", got `" in message:
        return "wrong_type"
    return "invalid_value"


def _reject_validation(error: msgspec.ValidationError, raw: bytes) -> Rejection:
    message = str(error)
    match = _PATH.search(message)
    path = match.group(1) if match else None
    if "Object missing required field" in message:
        field = message.split("`")[1]
        path = f"{path or '$'}.{field}"
    if message.startswith("Object missing required field `event_type`"):
        return Rejection("missing_event_type", "an event needs an `event_type`", "$.event_type", raw)
    detail = _PATH.sub("", message)
    return Rejection(_reason_for(message), detail, path, raw)


def decode(data: bytes) -> Event | Rejection:
    """Decode one event. Bad input comes back as a `Rejection`, never as an exception."""
    if len(data) > MAX_EVENT_BYTES:
        return Rejection("oversized", f"{len(data)} bytes, the limit is {MAX_EVENT_BYTES}", None, data)
    return _decode_checked(data)


def _decode_checked(data: bytes) -> Event | Rejection:
    # No UTF-8 pass over every message (it cost more than the rest of this wrapper): msgspec checks
    # the UTF-8 of every string it decodes, so an event that decodes is valid text in every field it
    # has; invalid bytes in a field it ignores are ignored with that field. A message that fails is
    # checked for UTF-8 first, so that "not UTF-8" stays the reason given for it.
    try:
        event = _event_decoder.decode(data)
    except msgspec.ValidationError as error:
        return _not_utf8(data) or _reject_validation(error, data)
    except msgspec.DecodeError as error:
        return _not_utf8(data) or Rejection("not_json", str(error), None, data)
    except RecursionError:
        return _too_deep(data)
    if 124 in data or 92 in data or 127 in data:  # `_maybe_unusable`, inlined: it runs for every event
        return _checked_codes(event, data)
    return event


def _not_utf8(data: bytes) -> Rejection | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection("not_utf8", f"byte {error.start} is not valid UTF-8", None, data)
    return None


def _checked_codes(event: Event, data: bytes) -> Event | Rejection:
    found = unusable_code(event)
    if found is None:
        return event
    name, code = found
    return Rejection("unusable_code", f"`{name}` {code!r} holds a control character or `|`, which chiso766 uses"
                     " to build keys", f"$.{name}", data)


def _too_deep(data: bytes) -> Rejection:
    return Rejection("not_json", "JSON nested deeper than a decoder can follow; no event is nested", None, data)


def decode_message(data: bytes, not_after: int | FutureCheck | None = None) -> list[Event | Rejection]:
    """Decode a Kafka message: one event, or a JSON array of events decoded one by one. With
    `not_after` (epoch seconds: the moment of processing plus a tolerance; or a `FutureCheck` of it,
    shared by the messages of a batch), an event dated later is rejected as `future_time`: one typo
    dated 2099 must not move every dossier's clock."""
    items = _decode_message(data)
    if not_after is None:
        return items
    check = not_after if isinstance(not_after, FutureCheck) else FutureCheck(not_after)
    found = check.first_future_field
    for index, item in enumerate(items):
        if item.__class__ is not Rejection and found(item) is not None:  # type: ignore[arg-type]
            items[index] = _future_rejection(item, check)  # type: ignore[arg-type]
    return items


def _future_rejection(event: Event, check: FutureCheck) -> Rejection:
    name = check.first_future_field(event)
    value = getattr(event, str(name))
    return Rejection("future_time", f"`{name}` {value.isoformat()} is later than the moment it was processed"
                     f" ({check.limit.isoformat()}, tolerance included)", f"$.{name}", encode(event))


def _decode_message(data: bytes) -> list[Event | Rejection]:
    if len(data) > MAX_MESSAGE_BYTES:
        return [Rejection("oversized", f"{len(data)} bytes, the limit is {MAX_MESSAGE_BYTES}", None, data)]
    if data[:1] != b"[" and data.lstrip()[:1] != b"[":
        return [decode(data)]
    try:
        elements = _batch_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        return [Rejection("not_json", f"batch is not a JSON array of objects: {error}", None, data)]
    except RecursionError:
        return [_too_deep(data)]
    if not elements:
        return [Rejection("empty_array", "the message is an empty JSON array: no event in it", None, data)]
    if all(len(element) <= MAX_EVENT_BYTES for element in elements):
        try:  # the usual case, a batch of valid events, in one pass
            events = _events_decoder.decode(data)
            if not _maybe_unusable(data) or all(unusable_code(event) is None for event in events):
                return events
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass  # decoded one by one below, so that only the bad elements are rejected
    return _one_by_one(elements, data)


def _one_by_one(elements: list[msgspec.Raw], data: bytes) -> list[Event | Rejection]:
    """Each element alone, so that only the bad ones are refused. An array with many bad elements is
    one summarised rejection (by reason, with the first examples) beside its valid events:
    200,000 `{}` must not become 200,000 dead letters, nor 200,000 rejections held in memory."""
    items: list[Event | Rejection] = []
    reasons: Counter[str] = Counter()
    examples: list[Rejection] = []
    for element in elements:
        item = decode(bytes(element))
        if isinstance(item, Rejection):
            reasons[item.reason] += 1
            if len(examples) <= MAX_REJECTIONS_PER_ARRAY:
                examples.append(item)
                items.append(item)
        else:
            items.append(item)
    refused = sum(reasons.values())
    if refused <= MAX_REJECTIONS_PER_ARRAY:
        return items
    first = "; ".join(rejection.describe() for rejection in examples[:3])
    summary = Rejection("bad_array", f"{refused:,} of {len(elements):,} elements refused ("
                        + ", ".join(f"{reason} {count:,}" for reason, count in reasons.most_common())
                        + f"); first: {first}", None, data)
    return [item for item in items if not isinstance(item, Rejection)] + [summary]
