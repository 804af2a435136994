"""An archive of sync calls → chiso766 event lines, for `chiso766 import`.

A line holds one call body (the envelope, or a bare array of records), or one record, as a province
dumps its sync queue or log; an optional top-level `received_at` (ISO or yyyyMMddHHmmss) says when
the call was sent, the arrival time that stands in for a time a record does not state. A line that is
already a chiso766 event (it has `event_type`: the unit registry, which has no sync call) is checked
and kept. Resends give identical events; each is written once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from ingest.calls import CallError, envelope, translate_call
from ingest.dvcqg import DossierTranslator
from ingest.loose import LooseValueError, instant
from schemas import Rejection, decode
from schemas import events as ev

_json = msgspec.json.Decoder()


@dataclass
class ImportStats:
    lines: int = 0
    calls: int = 0
    records: int = 0
    events: int = 0  # written
    duplicates: int = 0  # identical events of resent records, written once
    native: int = 0  # chiso766 event lines kept as they are
    approximate: int = 0  # events timed by a call's arrival
    rejected: Counter = field(default_factory=Counter)  # records (or lines) by reason
    notes: Counter = field(default_factory=Counter)  # facts left out of records that were taken
    examples: list[str] = field(default_factory=list)

    def reject(self, line: int, reason: str, detail: str, count: int = 1) -> None:
        self.rejected[reason] += count
        if len(self.examples) < 20:
            self.examples.append(f"line {line}: {reason}: {detail}")


class ArchiveImport:
    def __init__(self, translator: DossierTranslator):
        self.translator = translator
        self.stats = ImportStats()
        self._seen: set[bytes] = set()

    def _keep(self, body: bytes) -> bool:
        digest = hashlib.blake2b(body, digest_size=16).digest()
        if digest in self._seen:
            self.stats.duplicates += 1
            return False
        self._seen.add(digest)
        self.stats.events += 1
        return True

    def line(self, raw: bytes) -> list[bytes]:
        """The new event lines of one archive line."""
        stats = self.stats
        stats.lines += 1
        raw = raw.strip().removeprefix(b"\xef\xbb\xbf")
        if not raw:
            return []
        try:
            body = _json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            stats.reject(stats.lines, "not_json", "the line is not JSON")
            return []
        if isinstance(body, dict) and "event_type" in body:
            event = decode(raw)
            if isinstance(event, Rejection):
                stats.reject(stats.lines, event.reason, event.describe())
                return []
            stats.native += 1
            body_bytes = ev.encode(event)
            return [body_bytes] if self._keep(body_bytes) else []
        try:
            arrival = instant(body, "received_at") if isinstance(body, dict) else None
            service, unit, records = envelope(body)
        except CallError as error:
            stats.reject(stats.lines, error.reason, error.detail)
            return []
        except LooseValueError as error:
            stats.reject(stats.lines, "bad_value", str(error))
            return []
        stats.calls += 1
        result = translate_call(self.translator, service, unit, records, arrival)
        stats.records += result.records
        stats.approximate += result.approximate
        stats.notes.update(result.notes)
        for rejection in result.rejections:
            stats.reject(stats.lines, rejection.reason, f"record {rejection.index} ({rejection.dossier_code}):"
                         f" {rejection.detail}")
        return [body_bytes for _, body_bytes in result.events if self._keep(body_bytes)]
