"""The typed internal messages: built with their version, decoded with validation, and source ids."""

from __future__ import annotations

import msgspec
import pytest

from contracts import messages
from contracts.messages import Command, Control, SourceId, SourceKind, TallySnapshot, all_sources


def test_each_message_round_trips_with_its_version():
    tally = TallySnapshot(source="d3", seq=(1700000000000, 4), as_of=1_780_000_000,
                          entries=[("H15.01", "month:2026-09", {"d.received": 2})], replace=True, watermark="tok")
    control = Control(kind="watermark", as_of=1_780_000_000, token="tok", catalog_end=12)
    command = Command(command="rebuild")
    assert messages.decode_tally(messages.encode(tally)) == tally
    assert messages.decode_control(messages.encode(control)) == control
    assert messages.decode_command(messages.encode(command)) == command
    assert b'"version":1' in messages.encode(tally)


@pytest.mark.parametrize("body", [
    b'{"version": 2, "kind": "watermark", "as_of": 1, "token": "t"}',  # a version this code does not know
    b'{"version": 1, "kind": "stop", "as_of": 1, "token": "t"}',  # an unknown kind
    b'{"version": 1, "kind": "watermark", "token": "t"}',  # missing as_of
    b'{"version": 1, "kind": "watermark", "as_of": "soon", "token": "t"}',  # wrong type
])
def test_a_control_message_is_validated(body):
    with pytest.raises(msgspec.ValidationError):
        messages.decode_control(body)


def test_a_tally_snapshot_needs_its_sequence_number():
    with pytest.raises(msgspec.ValidationError, match="seq"):
        messages.decode_tally(b'{"version": 1, "source": "d0", "as_of": 5, "entries": []}')


def test_source_ids_parse_and_print_as_on_the_wire():
    assert SourceId.parse("d3") == SourceId(SourceKind.DOSSIER, 3) and str(SourceId(SourceKind.PETITION, 12)) == "p12"
    assert [str(source) for source in all_sources(2)] == ["d0", "d1", "p0", "p1"]
    for bad in ("", "d", "x1", "d-1", "d01", "p1a", "D1"):
        with pytest.raises(ValueError):
            SourceId.parse(bad)
