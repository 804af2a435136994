"""The pipeline's Faust-free parts: what a partition folds and sends on, and how a history becomes messages."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from contracts.messages import SourceId
from schemas import decode_message
from schemas import events as ev
from scoring.alerts import AlertPolicy
from scoring.directory import Directory
from streams.config import CATALOG_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC
from streams.partitioning import partition_for
from streams.scorer import RawMessage, SourceScorer, rerouted_messages
from tests.builders import code_in, received, unit, when

PARTITIONS = 4


def array(*events: ev.EventBase) -> bytes:
    return b"[" + b",".join(ev.encode(event) for event in events) + b"]"


def test_a_partition_folds_its_own_dossiers_and_sends_every_other_event_to_its_topic(ruleset, calendar):
    taken: set[str] = set()
    own, other, third = code_in(0, taken), code_in(2, taken), code_in(2, taken)
    petition = ev.PetitionReceived(event_id="pk-1", occurred_at=when("2026-09-01 10:00"), source="test",
                                   petition_id="PK-1", unit_code="H15.01", about="other",
                                   received_at=when("2026-09-01 10:00"))
    catalogue = unit("H15.01", "agency")
    message = array(received(own, "2026-09-01 09:00", "2026-09-05 17:00"),
                    received(other, "2026-09-01 09:05", "2026-09-05 17:00"), petition, catalogue,
                    received(third, "2026-09-01 09:10", "2026-09-05 17:00"))
    scorer = SourceScorer(SourceId.parse("d0"), PARTITIONS, ruleset, calendar, Directory(), AlertPolicy(), 900)

    result = scorer.process([RawMessage(own.encode(), message, "ns.dossier-events", 0, 7)], None)

    assert result.events == 1 and set(scorer.engine.dossiers) == {own}
    assert [(topic, key) for topic, key, _ in result.reroute] == [
        (DOSSIER_TOPIC, other), (PETITION_TOPIC, "PK-1"), (CATALOG_TOPIC, "H15.01"), (DOSSIER_TOPIC, third)]
    sent = rerouted_messages(result.reroute, PARTITIONS)
    assert [(message.topic, message.partition, message.key) for message in sent] == [
        (DOSSIER_TOPIC, 2, other.encode()), (PETITION_TOPIC, partition_for("PK-1", PARTITIONS), b"PK-1"),
        (CATALOG_TOPIC, 0, b"H15.01")]
    dossier_array = decode_message(sent[0].value)
    assert [event.dossier_code for event in dossier_array] == [other, third]  # one message, in order


def test_a_history_becomes_arrays_per_topic_partition_and_a_paced_one_flushes_them_on_time():
    from streams.replay import HistoryCount, history_messages

    taken: set[str] = set()
    codes = [code_in(partition, taken) for partition in (0, 1, 0, 1, 0)]
    lines = [ev.encode(received(code, "2026-09-01 09:00", "2026-09-05 17:00")) for code in codes]
    lines.insert(2, b"{broken")

    count = HistoryCount()
    messages = list(history_messages(lines, PARTITIONS, count, batch_events=2))
    assert (count.lines, count.events, count.malformed) == (6, 5, 1)
    arrays = [(m.topic, m.partition, [e.dossier_code for e in decode_message(m.value)]) for m in messages
              if m.key is not None]
    assert arrays == [(DOSSIER_TOPIC, 0, codes[0:3:2]), (DOSSIER_TOPIC, 1, codes[1:4:2]),
                      (DOSSIER_TOPIC, 0, [codes[4]])]  # full arrays first, the rest at the end
    assert [m.value for m in messages if m.key is None] == [b"{broken"]  # sent as it is, for dead-letter

    paced = list(history_messages(lines, PARTITIONS, HistoryCount(), batch_events=100, flush_every=3))
    pauses = [index for index, message in enumerate(paced) if message is None]
    assert len(pauses) == 2  # after lines 3 and 6, each after the arrays filled so far
    assert all(paced[index - 1] is not None for index in pauses)
    assert sorted(e.dossier_code for m in paced if m is not None and m.key is not None
                  for e in decode_message(m.value)) == sorted(codes)


def test_a_worker_partition_refuses_events_from_the_future_and_keeps_the_rest(ruleset, calendar):
    taken: set[str] = set()
    own, typo_code = code_in(1, taken), code_in(1, taken)
    typo = ev.DossierStatusChanged(event_id="typo", occurred_at=when("2099-09-03 09:00"), dossier_code=typo_code,
                                   status=9)
    message = array(received(own, "2026-09-01 09:00", "2026-09-05 17:00"), typo)
    scorer = SourceScorer(SourceId.parse("d1"), PARTITIONS, ruleset, calendar, Directory(), AlertPolicy(), 900)

    result = scorer.process([RawMessage(own.encode(), message, "ns.dossier-events", 1, 3)], None,
                            not_after=int(when("2026-09-02 09:00").timestamp()))

    assert result.events == 1 and set(scorer.engine.dossiers) == {own}
    [letter] = result.dead_letters
    assert letter.rejection.reason == "future_time" and (letter.partition, letter.offset) == (1, 3)
    assert result.as_of == int(when("2026-09-01 09:00").timestamp()), "the partition's clock did not jump to 2099"


def test_an_event_that_raises_is_a_dead_letter_and_the_rest_of_its_batch_counts(ruleset, calendar, monkeypatch):
    from scoring import lifecycle

    taken: set[str] = set()
    good, poison = code_in(2, taken), code_in(2, taken)
    reducer = lifecycle.REDUCERS[ev.DossierReceived]

    def explode_on_poison(state, event, at):
        if event.dossier_code == poison:
            raise RuntimeError("a bug this event found")
        reducer(state, event, at)

    monkeypatch.setitem(lifecycle.REDUCERS, ev.DossierReceived, explode_on_poison)
    message = array(received(good, "2026-09-01 09:00", "2026-09-05 17:00"),
                    received(poison, "2026-09-01 09:05", "2026-09-05 17:00"))
    scorer = SourceScorer(SourceId.parse("d2"), PARTITIONS, ruleset, calendar, Directory(), AlertPolicy(), 900)
    result = scorer.process([RawMessage(good.encode(), message, "ns.dossier-events", 2, 5)], None)

    [letter] = result.dead_letters
    assert letter.rejection.reason == "processing_error" and "a bug this event found" in letter.rejection.detail
    assert result.events == 1
    clean = SourceScorer(SourceId.parse("d2"), PARTITIONS, ruleset, calendar, Directory(), AlertPolicy(), 900)
    clean.process([RawMessage(good.encode(), array(received(good, "2026-09-01 09:00", "2026-09-05 17:00")),
                              "ns.dossier-events", 2, 5)], None)
    assert scorer.engine.pairs == clean.engine.pairs, "the tallies are those of the good event alone"


def test_a_dead_letter_record_is_bounded_and_points_at_its_original():
    from schemas import Rejection
    from streams.scorer import DEAD_LETTER_RAW_BYTES, DeadLetter

    huge = b"[" + b",".join([b'{"dossier_code":"D-1"}'] * 800_000) + b"]"  # 17 MB of JSON
    letter = DeadLetter(Rejection("oversized", "too big", None, huge), "ns.dossier-events", 3, 42).as_json()
    assert len(letter["raw"]) == DEAD_LETTER_RAW_BYTES and letter["raw_bytes"] == len(huge)
    assert letter["raw_truncated"] and letter["raw_sha256"] == hashlib.sha256(huge).hexdigest()
    assert (letter["partition"], letter["offset"]) == (3, 42)
    not_json = DeadLetter(Rejection("oversized", "too big", None, b"x" * 15_000_000), "t", 0, 1).as_json()
    assert "raw" not in not_json and not_json["raw_bytes"] == 15_000_000 and len(not_json["raw_sha256"]) == 64


SYNC_RECORD = {  # a DongBoHoSoMC record as INGEST.md §2 and §4 describe it, with every personal field
    "MaHoSo": "000.12.30.H99-250312-00417", "MaTTHC": "1.001234", "KenhThucHien": "2", "LoaiDoiTuong": "1",
    "ChuHoSo": "Nguyễn Văn An", "SoDienThoai": "0912345678", "Email": "an@example.vn", "Fax": "024000",
    "MaDoiTuong": "001099012345", "SoGiayToChuHoSo": "001099012345", "ThongTinKhac": "Số 5 Hàng Bài",
    "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001099012345"}],
    "TrichYeuHoSo": "Cấp đổi giấy phép lái xe cho Nguyễn Văn An", "GhiChu": "gọi 0912345678",
    "TaiLieuNop": [{"TepDinhKemId": "7", "DuocSoHoa": "1", "TenTepDinhKem": "cccd-nguyen-van-an.pdf",
                    "DuongDanTaiTepTin": "https://one-stop.example/files/cccd-nguyen-van-an.pdf"}],
    "DanhSachGiayToKetQua": [{"GiayToId": "9", "TenGiayTo": "GPLX Nguyễn Văn An",
                              "DuongDanTepTinKetQua": "https://one-stop.example/r/9.pdf"}],
    "TienDo": [{"NguoiXuLy": "Trần Thị Bình", "NoiDungXuLy": "Đã gọi cho ông An", "TrangThai": "4"}],
    "nested": {"deeper": [{"email": "an@example.vn", "ThongTinTiepNhan": "qua điện thoại"}]},
}
PERSONAL_VALUES = ("Nguyễn Văn An", "0912345678", "an@example.vn", "001099012345", "Hàng Bài", "Trần Thị Bình",
                   "cccd-nguyen", "one-stop.example", "ông An", "điện thoại", "024000")


@pytest.mark.parametrize("raw", [orjson.dumps(SYNC_RECORD), orjson.dumps([SYNC_RECORD, {"event_type": "x"}]),
                                 orjson.dumps(SYNC_RECORD, option=orjson.OPT_INDENT_2)])
def test_a_dead_letter_keeps_no_personal_data(raw):
    from schemas import Rejection
    from streams.scorer import DeadLetter

    rejection = Rejection("missing_event_type", "an event needs an `event_type`", None, raw)
    letter = DeadLetter(rejection, "t", 2, 7).as_json()
    kept = orjson.dumps(letter).decode()
    assert not [value for value in PERSONAL_VALUES if value in kept]
    assert {"ChuHoSo", "SoDienThoai", "DinhDanhCHS", "TrichYeuHoSo", "TenTepDinhKem", "DuongDanTaiTepTin",
            "NguoiXuLy", "email"} <= set(letter["raw_removed"])
    kept_record = orjson.loads(letter["raw"])
    record = kept_record[0] if isinstance(kept_record, list) else kept_record
    assert record["MaHoSo"] == SYNC_RECORD["MaHoSo"] and record["LoaiDoiTuong"] == "1"  # codes and flags stay
    assert record["TaiLieuNop"] == [{"TepDinhKemId": "7", "DuocSoHoa": "1"}]
    assert letter["raw_sha256"] == hashlib.sha256(raw).hexdigest() and (letter["partition"], letter["offset"]) == (2, 7)


def test_a_dead_letter_of_clean_json_keeps_its_bytes_and_of_broken_json_only_its_hash():
    from schemas import Rejection
    from streams.scorer import DeadLetter

    clean = b'{"event_type": "dossier.teleported",  "event_id": "x"}'
    letter = DeadLetter(Rejection("unknown_event_type", "?", None, clean), "t", 0, 1).as_json()
    assert letter["raw"] == clean.decode() and "raw_removed" not in letter
    broken = rb'{"ChuHoSo": "Nguy\u1ec5n V\u0103n An", "SoDienThoai": "0912345678"'  # cut off: not JSON
    letter = DeadLetter(Rejection("not_json", "truncated", None, broken), "t", 0, 2).as_json()
    assert "raw" not in letter and "0912345678" not in orjson.dumps(letter).decode()
    assert letter["raw_bytes"] == len(broken) and letter["raw_sha256"] == hashlib.sha256(broken).hexdigest()
    deep = b"[" * 5000 + b"]" * 5000
    assert "raw" not in DeadLetter(Rejection("not_json", "deep", None, deep), "t", 0, 3).as_json()


def test_a_tally_book_skips_and_reports_a_key_it_cannot_read(ruleset, calendar):
    from streams.tally_book import TallyBook

    book = TallyBook(ruleset, calendar, Directory())
    good = b'{"version": 1, "counters": {"received": 2}, "seq": [1, 1]}'
    book.load([("d0\x1fH15\x1fyear:2026", good), ("d0\x1fH15\x1fx\x1fyear:2026", good),
               ("d1\x1fH15\x1fyear:2026", b"{")])
    assert book.unreadable == ["d0\x1fH15\x1fx\x1fyear:2026", "d1\x1fH15\x1fyear:2026"]
    assert book.owners("year:2026") == {"H15": {"received": 2}}
