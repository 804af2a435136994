"""Personal data in what a source sends: the fields INGEST.md §4 says are dropped at the edge, never
stored, never logged — and what may be kept of a message that carries them.

`scrub` serves the dead letters, which keep a refused message for people to look at: only with these
fields removed, wherever they sit in the JSON, and only when the message parses as JSON at all (a
message that does not may hold anything anywhere: of it only its size, hash and source offsets stay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# INGEST.md §4, by group. Names compare case-insensitively, at any depth (DinhDanhCHS[].SoDinhDanh too).
APPLICANT = ("ChuHoSo", "SoDienThoai", "Email", "Fax", "MaDoiTuong", "SoGiayToChuHoSo", "SoDinhDanh",
             "DinhDanhCHS", "ThongTinKhac")
FREE_TEXT = ("TrichYeuHoSo", "GhiChu", "ThongTinTra", "NoiDungXuLy", "NoiDungBoSung", "ThongTinTiepNhan")
DOCUMENTS = ("TenTepDinhKem", "TenGiayTo", "DuongDanTaiTepTin", "DuongDanTepTinKetQua")  # names and file URLs
OFFICIALS = ("NguoiXuLy", "NguoiYeuCauBoSung", "NguoiTiepNhanBoSung")  # names: an officer is a pseudonymous id
# The same kind of field under English names, as a producer of chiso766's own events might add them
# (the schema has none: an unknown field is ignored by the decoder, but a refused message keeps it).
ENGLISH = ("applicant", "applicant_name", "citizen", "citizen_name", "full_name", "phone", "phone_number",
           "id_number", "national_id", "address", "email", "birth_date")
PERSONAL_FIELDS = frozenset(name.lower() for name in (*APPLICANT, *FREE_TEXT, *DOCUMENTS, *OFFICIALS, *ENGLISH))


@dataclass(frozen=True)
class Scrubbed:
    data: bytes | None  # the message without personal fields; None when it is not JSON (nothing may be kept)
    removed: tuple[str, ...]  # the field names taken out, sorted, each once


def scrub(raw: bytes) -> Scrubbed:
    """`raw` without the personal-data fields. Unchanged bytes when it has none; re-serialised
    compact JSON when some were removed; `data=None` when it does not parse (not UTF-8, not JSON,
    nested deeper than the parser follows)."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return Scrubbed(None, ())
    removed: set[str] = set()
    stack = [document]
    while stack:  # iterative: a document nested 900 deep parses, and must not overflow the walk
        node = stack.pop()
        if isinstance(node, dict):
            for key in [key for key in node if key.lower() in PERSONAL_FIELDS]:
                removed.add(key)
                del node[key]
            stack.extend(value for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            stack.extend(value for value in node if isinstance(value, dict | list))
    if not removed:
        return Scrubbed(raw, ())
    try:
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    except RecursionError:
        return Scrubbed(None, tuple(sorted(removed)))
    return Scrubbed(data, tuple(sorted(removed)))
