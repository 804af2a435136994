"""The DVCQG sync translation (ingest/): loose values, deterministic ids, order independence,
re-appointed dues, supplements, units, personal data."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import loose
from ingest.archive import ArchiveImport
from ingest.calls import DOSSIERS, PROGRESS, CallError, envelope, translate_call
from ingest.dvcqg import DossierTranslator
from ingest.privacy import PERSONAL_FIELDS, Pseudonymiser
from ingest.secret import DEMO_SECRET, MissingSecret, pseudonym_secret
from schemas import events as ev
from scoring.lifecycle import reappointments, reduce

MARK = "ZZMARKERZZ"
translator = DossierTranslator(Pseudonymiser(DEMO_SECRET))


def record(**fields) -> dict:
    base = {"MaHoSo": "H15.01-260105-0001", "MaTTHC": "1.000123", "KenhThucHien": "2", "TrangThaiHoSo": "2",
            "NgayNopHoSo": "20260105080000", "NgayTiepNhan": "20260105090000", "NgayHenTra": "20260112170000",
            "NgayKetThucXuLy": "", "NgayTra": "", "NgayTuChoi": "", "DanhSachHoSoBoSung": [],
            "DanhSachLePhi": [{"MaPhiLePhi": "LP", "Gia": "50000", "HinhThucThu": "1"}],
            "ChuHoSo": MARK, "SoDienThoai": MARK, "Email": MARK, "TrichYeuHoSo": MARK,
            "DinhDanhCHS": [{"SoDinhDanh": MARK}], "SomethingNew": {"nested": True}}
    return {**base, **fields}


def events_of(records: list[tuple[str, dict, int | None]]) -> set[bytes]:
    out = set()
    for service, body, arrival in records:
        result = translate_call(translator, service, "", [body], arrival)
        assert not result.rejections, result.rejections
        out |= {encoded for _, encoded in result.events}
    return out


@pytest.mark.parametrize(("raw", "expected"), [
    ("20260312093000", "2026-03-12T09:30:00+07:00"), (20260312093000, "2026-03-12T09:30:00+07:00"),
    ("2026-03-12T09:30:00.123", "2026-03-12T09:30:00+07:00"), ("2026-03-12T02:30:00Z", "2026-03-12T09:30:00+07:00"),
    ("2026-03-12T09:30:00+07:00", "2026-03-12T09:30:00+07:00"), ("2026-03-12", "2026-03-12T00:00:00+07:00")])
def test_dates_in_every_shape_integrators_send(raw, expected):
    assert loose.local_iso(loose.instant({"d": raw}, "d")) == expected


@pytest.mark.parametrize("raw", ["", None, "   "])
def test_empty_dates_are_missing(raw):
    assert loose.instant({"d": raw}, "d") is None


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("0", False), ("True", True), ("False", False),
                                               (1, True), (0, False), (True, True), ("", False), (None, False),
                                               ("2", True)])
def test_flags(raw, expected):
    assert loose.flag({"f": raw}, "f") is expected


def test_a_bad_value_refuses_the_record_with_its_field():
    result = translate_call(translator, DOSSIERS, "", [record(NgayHenTra="31/02/2026")], None)
    assert [r.reason for r in result.rejections] == ["bad_value"]
    assert "NgayHenTra" in result.rejections[0].detail and not result.events


def test_a_record_sent_five_times_gives_the_same_events():
    once = translate_call(translator, DOSSIERS, "H15.01", [record()], 1)
    five = translate_call(translator, DOSSIERS, "H15.01", [record()] * 5, 1)
    assert {b for _, b in five.events} == {b for _, b in once.events}
    assert len(five.events) == 5 * len(once.events)


def test_the_unit_comes_from_the_envelope_the_query_or_the_code_and_else_the_record_is_refused():
    hinted = translate_call(translator, DOSSIERS, "H15.09", [record()], 1)
    assert {e.unit_code for e, _ in hinted.events if isinstance(e, ev.DossierReceived)} == {"H15.09"}
    by_prefix = translate_call(translator, DOSSIERS, "", [record()], 1)
    assert {e.unit_code for e, _ in by_prefix.events if isinstance(e, ev.DossierReceived)} == {"H15.01"}
    refused = translate_call(translator, DOSSIERS, "", [record(MaHoSo="NOPREFIX")], 1)
    assert [r.reason for r in refused.rejections] == ["unit_unknown"]


@pytest.mark.parametrize("data", [{"a": 1}, {"MaHoSo": MARK}, "x", 1, None])
def test_an_envelope_whose_data_is_not_an_array_is_a_malformed_call(data):
    with pytest.raises(CallError) as refused:
        envelope({"session": "s", "madonvi": "H15", "service": DOSSIERS, "data": data})
    assert refused.value.reason == "bad_envelope" and "not a JSON array" in refused.value.detail
    assert MARK not in refused.value.detail


def test_envelope_and_bare_array():
    assert envelope({"session": "s", "madonvi": "H15", "service": PROGRESS, "data": [{}]})[:2] == (PROGRESS, "H15")
    assert envelope([record()], DOSSIERS, "H15.02")[:2] == (DOSSIERS, "H15.02")
    with pytest.raises(CallError):
        envelope({"service": "XoaHoSo", "data": []})


def lifecycle(records: list[tuple[str, dict, int | None]]):
    state = None
    for body in sorted(events_of(records)):
        event = ev.EVENT_TYPES[orjson.loads(body)["event_type"]]
        decoded = __import__("schemas").decode(body)
        assert isinstance(decoded, event)
        state = reduce(state, decoded)
    return state


def test_a_changed_due_is_a_reappointment_and_the_earliest_records_due_the_original():
    first = record()
    later = record(TrangThaiHoSo="9", NgayHenTra="20260115170000", NgayKetThucXuLy="20260114100000")
    for order in ([first, later], [later, first], [later, first, later]):
        state = lifecycle([(DOSSIERS, body, None) for body in order])
        assert loose.local_iso(state.due_at) == "2026-01-12T17:00:00+07:00"
        assert [loose.local_iso(d) for d in reappointments(state)] == ["2026-01-15T17:00:00+07:00"]
    unchanged = lifecycle([(DOSSIERS, first, None), (DOSSIERS, record(TrangThaiHoSo="4"), None)])
    assert reappointments(unchanged) == ()


def test_a_supplement_in_the_list_and_as_progress_status_5_is_one_request():
    supplement = {"HoSoBoSungId": "1", "NgayBoSung": "20260107100000", "NgayTiepNhanBoSung": "20260109100000"}
    step = {"MaHoSo": "H15.01-260105-0001", "TrangThai": "5", "ThoiDiemXuLy": "2026-01-07T10:00:00.000",
            "NguoiXuLy": MARK, "NoiDungXuLy": MARK}
    state = lifecycle([(DOSSIERS, record(TrangThaiHoSo="5", DanhSachHoSoBoSung=[supplement]), None),
                       (PROGRESS, step, None), (PROGRESS, {**step, "ThoiDiemXuLy": "20260107100500"}, None)])
    from scoring.lifecycle import supplement_requests
    assert len(supplement_requests(state)) == 1 and len(state.supplement_receipts) == 1


def test_times_come_from_the_record_else_progress_else_arrival_marked_approximate():
    withdrawn = translate_call(translator, DOSSIERS, "", [record(TrangThaiHoSo="7")], 1767600000)
    approximate = [e for e, _ in withdrawn.events if e.source.endswith("~arrival")]
    assert withdrawn.approximate == len(approximate) == 1 and approximate[0].status == 7
    without_arrival = translate_call(translator, DOSSIERS, "", [record(TrangThaiHoSo="7")], None)
    assert without_arrival.notes["status_time_unknown"] == 1 and without_arrival.approximate == 0


def test_fees_payment_digitisation_and_results_map_to_their_indicators():
    body = record(TrangThaiHoSo="10", NgayKetThucXuLy="20260110100000", NgayTra="20260111100000",
                  DuocThanhToanTrucTuyen=2, HoSoCoThanhPhanSoHoa="1", DSKetNoiCSDL=[{"MaCSDL": "CSDLQGDC"}],
                  TaiLieuNop=[{"DuocSoHoa": "1", "DuocTaiSuDung": "1", "DuocLayTuKhoDMQG": "True",
                               "TenTepDinhKem": MARK, "DuongDanTaiTepTin": MARK}],
                  DanhSachGiayToKetQua=[{"TenGiayTo": MARK, "DuongDanTepTinKetQua": "https://x/" + MARK}])
    state = lifecycle([(DOSSIERS, body, None)])
    from scoring import lifecycle as lc
    for bit in (lc.PAID_ONLINE, lc.COMPONENTS_DIGITISED, lc.REUSED_DATA, lc.PERSONAL_STORAGE, lc.POPULATION_DATA,
                lc.RESULT_ELECTRONIC, lc.RESULT_DIGITISED, lc.SYNCED):
        assert state.flags & bit, bit
    assert state.fee == 50000 and set(state.status_at) == {1, 2, 9, 10}


BAD = {"MaHoSo": "H15-1", "TrangThaiHoSo": "99", "ChuHoSo": MARK, "GhiChu": MARK}


def test_personal_data_never_leaves_and_officers_become_keyed_pseudonyms():
    body = record(**{name: MARK for name in PERSONAL_FIELDS if name not in ("DinhDanhCHS",)})
    step = {"MaHoSo": "H15.01-260105-0001", "TrangThai": "4", "ThoiDiemXuLy": "20260106100000",
            "NguoiXuLy": "Nguyễn Văn " + MARK, "NoiDungXuLy": MARK, "NgayBatDau": "20260105100000",
            "NgayKetThucTheoQuyDinh": "20260107100000"}
    calls = [translate_call(translator, DOSSIERS, "", [body, BAD], 1),
             translate_call(translator, PROGRESS, "", [step, {"MaHoSo": "X", "TrangThai": "4", "ChuHoSo": MARK}], 1)]
    leaked = [b for call in calls for _, b in call.events if MARK.encode() in b]
    assert not leaked
    for call in calls:
        assert call.rejections and MARK not in orjson.dumps([r.record for r in call.rejections]).decode()
    officers = {e.officer_id for e, _ in calls[1].events if isinstance(e, ev.ProcessingStep)}
    other_key = DossierTranslator(Pseudonymiser("another-deployment-secret")).progress(step)
    assert officers == {translator.pseudonyms.officer("  nguyễn  VĂN " + MARK)}
    assert officers != {e.officer_id for e in other_key.events if isinstance(e, ev.ProcessingStep)}


def test_the_secret_is_required_outside_the_demo():
    with pytest.raises(MissingSecret):
        pseudonym_secret({})
    assert pseudonym_secret({}, demo=True) == DEMO_SECRET
    assert pseudonym_secret({"CHISO766_PSEUDONYM_SECRET": "x" * 32}) == "x" * 32


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffled_and_duplicated_records_give_the_same_events(rng: random.Random):
    from support.dvcqg_sim import sync_archive

    lines = list(sync_archive(11, 40, days=40))
    noisy = lines + [rng.choice(lines) for _ in range(len(lines) // 3)]
    rng.shuffle(noisy)
    expected, actual = ArchiveImport(translator), ArchiveImport(translator)
    want = {body for line in lines for body in expected.line(line)}
    got = {body for line in noisy for body in actual.line(line)}
    assert got == want and not actual.stats.rejected


def test_the_gateway_and_the_workers_name_topics_alike():
    from contracts import topics
    from streams import config

    assert (topics.DOSSIER_TOPIC, topics.PETITION_TOPIC, topics.CATALOG_TOPIC, topics.DEAD_LETTER_TOPIC) == (
        config.DOSSIER_TOPIC, config.PETITION_TOPIC, config.CATALOG_TOPIC, config.DEAD_LETTER_TOPIC)


def test_every_event_type_has_one_home_topic_named_by_its_prefix():
    """The gateway publishes to it and a worker reroutes anything found elsewhere: one rule for both."""
    from datetime import UTC, datetime

    from contracts.topics import CATALOG_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC, TOPIC_OF_ENTITY

    moment = datetime(2026, 11, 30, tzinfo=UTC)

    def concrete(cls):
        for sub in cls.__subclasses__():
            if sub.__struct_config__.tag != sub.__name__:  # a tagged event type, not an abstract base
                yield sub
            yield from concrete(sub)

    by_prefix = {"dossier": DOSSIER_TOPIC, "petition": PETITION_TOPIC, "unit": CATALOG_TOPIC,
                 "procedure": CATALOG_TOPIC}
    types = set(concrete(ev.EventBase))
    assert len(types) == 23  # every event type of schemas.events
    for event_type in types:
        tag = event_type.__struct_config__.tag
        # Struct init checks no field types; the base's __post_init__ reads the event's time.
        event = event_type(**{**dict.fromkeys(event_type.__struct_fields__), "occurred_at": moment})
        assert TOPIC_OF_ENTITY[ev.entity_kind(event)] == by_prefix[tag.split(".")[0]], tag


WRONG_SHAPES = ([MARK], {"x": MARK}, [{"y": [MARK]}], True)


@pytest.mark.parametrize("shape", WRONG_SHAPES, ids=["list", "object", "nested", "bool"])
def test_no_error_echoes_a_personal_fields_value(shape):
    """A personal-data field of the wrong type is named in the answer, its value never shown: not in
    the detail, the dead letter's record or the import's examples (INGEST.md §4)."""
    planted = [({name: shape}, name) for name in PERSONAL_FIELDS]
    calls = []
    for fields, _ in planted:
        dossier = record(**fields)
        dossier["TaiLieuNop"] = [{"TepDinhKemId": "1", "TenTepDinhKem": shape, "DuongDanTaiTepTin": shape}]
        dossier["DanhSachGiayToKetQua"] = [{"GiayToId": "1", "TenGiayTo": shape, "DuongDanTepTinKetQua": shape}]
        dossier["NgayKetThucXuLy"] = "20260107100000"
        step = {"MaHoSo": "H16.01-261130-7201", "ThoiDiemXuLy": "20261130100000", "TrangThai": "4",
                "NgayBatDau": "20261130090000", "NgayKetThucTheoQuyDinh": "20261201090000", **fields}
        calls.append(translate_call(translator, DOSSIERS, "H15.01", [dossier], 1))
        calls.append(translate_call(translator, PROGRESS, "H16.01", [step], 1))
    # Kept fields of the wrong shape carry no personal data by name, but may hold it by mistake.
    calls.append(translate_call(translator, DOSSIERS, "", [record(TrangThaiHoSo=[MARK], KenhThucHien={"a": MARK})], 1))
    calls.append(translate_call(translator, PROGRESS, "", [{"MaHoSo": [MARK], "TrangThai": {"x": MARK}}], 1))
    rejections = [rejection for call in calls for rejection in call.rejections]
    assert rejections and all(rejection.detail for rejection in rejections)
    shown = orjson.dumps([[r.as_json(), r.record] for r in rejections]).decode()
    assert MARK not in shown
    assert MARK not in b"".join(body for call in calls for _, body in call.events).decode()
    if shape == [MARK]:  # the field is named, and the kind of value it wrongly holds
        assert "`NguoiXuLy` (a list) is not a string or a number" in {r.detail for r in rejections}
    importer = ArchiveImport(translator)
    for fields, _ in planted:
        importer.line(orjson.dumps({"madonvi": "H15.01", "service": PROGRESS, "data": [
            {"MaHoSo": "H15.01-1", "ThoiDiemXuLy": "20261130100000", "TrangThai": "4", **fields}]}))
    assert MARK not in " ".join(importer.stats.examples)
    assert importer.stats.examples or shape is True  # a boolean is a readable (if odd) value


def test_wrong_values_of_kept_fields_are_still_shown_for_the_integrator():
    result = translate_call(translator, DOSSIERS, "", [record(NgayHenTra="31/02/2026")], None)
    assert "'31/02/2026'" in result.rejections[0].detail
