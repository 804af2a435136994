"""The event contract: typed decode, clear rejections for every kind of bad input, schema drift."""

from __future__ import annotations

import orjson
import pytest

from schemas import EVENT_TYPES, Rejection, decode, decode_message, entity_key
from schemas import events as ev
from schemas.decode import MAX_EVENT_BYTES
from schemas.export import render, stale_files

VALID = {
    "event_id": "H15.01-1-1", "event_type": "dossier.received", "schema_version": 1,
    "occurred_at": "2026-09-01T09:00:00+07:00", "source": "one-stop", "dossier_code": "H15.01-1",
    "unit_code": "H15.01", "procedure_code": "P1", "channel": 2, "received_at": "2026-09-01T09:00:00+07:00",
    "due_at": "2026-09-04T09:00:00+07:00", "fee_amount": 50000,
}


def encoded(**changes) -> bytes:
    body = {**VALID, **changes}
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


def test_valid_event_decodes_to_its_type():
    event = decode(encoded())
    assert isinstance(event, ev.DossierReceived)
    assert event.channel == 2 and event.fee_amount == 50000 and event.due_at is not None
    assert entity_key(event) == "H15.01-1"


def test_every_event_type_round_trips():
    assert len(EVENT_TYPES) == 23
    petition = decode(orjson.dumps({"event_id": "p", "event_type": "petition.received",
                                    "occurred_at": "2026-09-01T09:00:00Z", "petition_id": "PA1",
                                    "unit_code": "H15", "about": "officer", "received_at": "2026-09-01T09:00:00Z",
                                    "dossier_code": "D1"}))
    assert isinstance(petition, ev.PetitionReceived) and entity_key(petition) == "PA1"
    assert decode(ev.encode(petition)) == petition


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert isinstance(decode(encoded(new_field_from_v2="x")), ev.DossierReceived)


def test_invalid_utf8_is_refused_in_any_field_the_event_has_and_ignored_with_an_unknown_field():
    # decode() leaves the UTF-8 check of a decodable message to msgspec, which checks every string it
    # decodes: if an upgrade stopped doing so, the first assertion fails.
    in_a_known_field = encoded(officer_id="CB").replace(b'"CB"', b'"C\xff"')
    byte = in_a_known_field.index(b"\xff")
    assert decode(in_a_known_field) == Rejection("not_utf8", f"byte {byte} is not valid UTF-8", None, in_a_known_field)
    in_an_unknown_field = encoded(note="x").replace(b'"note":"x"', b'"note":"\xff"')
    assert isinstance(decode(in_an_unknown_field), ev.DossierReceived)


@pytest.mark.parametrize(("raw", "reason", "path"), [
    (b"x" * (MAX_EVENT_BYTES + 1), "oversized", None),
    (b'{"event_id": "\xff\xfe"}', "not_utf8", None),
    (b"{not json", "not_json", None),
    (b"{\"event_id\": ", "not_json", None),
    (encoded(channel="online"), "wrong_type", "$.channel"),
    (encoded(channel=4), "invalid_value", "$.channel"),
    (encoded(event_type="dossier.teleported"), "unknown_event_type", "$.event_type"),
    (encoded(event_type=None), "missing_event_type", "$.event_type"),
    (encoded(unit_code=None), "missing_field", "$.unit_code"),
    (encoded(received_at="2026-02-30T09:00:00+07:00"), "impossible_timestamp", "$.received_at"),
    (encoded(received_at="2026-09-01T09:00:00"), "impossible_timestamp", "$.received_at"),
    (encoded(due_at="1899-09-01T09:00:00+07:00"), "impossible_timestamp", "$.due_at"),
    (encoded(occurred_at="yesterday"), "impossible_timestamp", "$.occurred_at"),
    (encoded(fee_amount=-5), "invalid_value", "$.fee_amount"),
    (encoded(dossier_code=""), "invalid_value", "$.dossier_code"),
    (b'"just a string"', "wrong_type", None),
])
def test_bad_input_is_rejected_with_a_clear_reason(raw, reason, path):
    result = decode(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert result.path == path
    assert result.raw == raw, "the original bytes are kept for the dead-letter topic"
    assert result.detail and reason in result.describe()


def test_status_outside_1_to_10_is_rejected():
    raw = orjson.dumps({"event_id": "s", "event_type": "dossier.status_changed", "dossier_code": "D",
                        "occurred_at": "2026-09-01T09:00:00+07:00", "status": 11})
    result = decode(raw)
    assert isinstance(result, Rejection) and result.path == "$.status"


def test_a_batch_message_rejects_only_its_bad_elements():
    batch = b"[" + encoded() + b"," + encoded(channel=9) + b"," + encoded(event_id="other") + b"]"
    results = decode_message(batch)
    assert [type(r).__name__ for r in results] == ["DossierReceived", "Rejection", "DossierReceived"]
    assert results[1].raw == encoded(channel=9)


def test_a_valid_batch_decodes_as_its_elements_do_and_bad_bytes_reject_one_element():
    elements = [encoded(), encoded(event_id="second"), encoded(event_id="third")]
    assert decode_message(b"[" + b",".join(elements) + b"]") == [decode(element) for element in elements]
    broken = encoded(event_id="cafX").replace(b"cafX", b"caf\xc3")  # a cut UTF-8 sequence
    results = decode_message(b"[" + elements[0] + b"," + broken + b"]")
    assert results[0] == decode(elements[0])
    assert isinstance(results[1], Rejection) and results[1].reason == "not_utf8"


def test_a_single_event_message_is_one_result():
    assert len(decode_message(encoded())) == 1
    assert isinstance(decode_message(b"[{]")[0], Rejection)


def test_committed_json_schema_files_match_the_models():
    assert stale_files() == [], "run: python -m schemas.export"


def test_json_schema_describes_every_event_type():
    schema = orjson.loads(render()["event.schema.json"])
    described = {definition.get("properties", {}).get("event_type", {}).get("enum", [None])[0]
                 for definition in schema["$defs"].values()}
    assert set(EVENT_TYPES) <= described
