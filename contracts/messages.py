"""The typed messages inside chiso766, each with a `version`, built and decoded here (decoding
validates: a wrong field, a missing one or another version raises `msgspec.ValidationError`).

- `TallySnapshot`: a source's absolute tallies, worker → projector (the `tallies` topic).
- `Control`: a watermark or rebuild request beside the events of an input partition (replay, commands
  → workers), marked by the `CONTROL_HEADER` Kafka header.
- `Command`: a request the API leaves for the workers in the `commands` Redis stream.

Sources: `SourceId` names an input partition (`d3` = dossier-events partition 3, `p1` = petition-events
partition 1); on the wire and in Redis it is that string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import msgspec

CONTROL_HEADER = "chiso766-control"  # the Kafka header that marks a control message among events


class SourceKind(StrEnum):
    DOSSIER = "d"
    PETITION = "p"


@dataclass(frozen=True, slots=True, order=True)
class SourceId:
    kind: SourceKind
    partition: int

    def __str__(self) -> str:
        return f"{self.kind}{self.partition}"

    @classmethod
    def parse(cls, text: str) -> SourceId:
        """`d3` → SourceId(DOSSIER, 3); ValueError for anything else."""
        kind, number = text[:1], text[1:]
        if kind not in ("d", "p") or not number.isdigit() or (len(number) > 1 and number[0] == "0"):
            raise ValueError(f"not a source id: {text!r} (d or p, then a partition number)")
        return cls(SourceKind(kind), int(number))


def all_sources(partitions: int) -> list[SourceId]:
    """Every input partition of a namespace: dossier partitions first, then petition partitions."""
    return [SourceId(kind, number) for kind in SourceKind for number in range(partitions)]


Seq = tuple[int, int]  # (epoch, number): epoch is when the source's scorer was (re)built, number counts up
TallyEntry = tuple[str, str, dict[str, int]]  # (owner, period, counters)


class TallySnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What one source sends after a batch: the absolute counters of every (owner, period) it
    changed — or, with `replace`, of all it has (after a restart, a rebuild)."""

    version: Literal[1] = 1
    source: str
    seq: Seq  # later snapshots of a source have larger ones: an older one arriving late is ignored
    as_of: int
    entries: list[TallyEntry] = []
    replace: bool = False
    watermark: str | None = None  # the token of a replay / rebuild this snapshot closes
    catalog_end: int = 0  # the catalogue offset the source had folded up to, for that closing


class Control(msgspec.Struct, frozen=True, kw_only=True):
    version: Literal[1] = 1
    kind: Literal["watermark", "rebuild"]
    as_of: int  # watermark: the history's latest event time (replay mode advances to it)
    token: str
    catalog_end: int = 0  # fold the catalogue up to this offset before closing


class Command(msgspec.Struct, frozen=True, kw_only=True):
    version: Literal[1] = 1
    command: Literal["rebuild"]


_encoder = msgspec.json.Encoder()
_tally_decoder = msgspec.json.Decoder(TallySnapshot)
_control_decoder = msgspec.json.Decoder(Control)
_command_decoder = msgspec.json.Decoder(Command)


def encode(message: TallySnapshot | Control | Command) -> bytes:
    return _encoder.encode(message)


def decode_tally(data: bytes) -> TallySnapshot:
    return _tally_decoder.decode(data)


def decode_control(data: bytes) -> Control:
    return _control_decoder.decode(data)


def decode_command(data: bytes) -> Command:
    return _command_decoder.decode(data)
