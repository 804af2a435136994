"""The simulated province as its one-stop system would have synced it to the national portal.

From the simulator's events (the facts the sync format can carry: `Simulator(sync_facts_only=True)`)
this writes what a one-stop system sends: on every action the dossier's whole current
`DongBoHoSoMC` record, then a `CapNhatTienDoHoSoMC` progress record for the action; the catalogue as
LayThuTuc-shaped records; every value a string (some systems: ISO dates with milliseconds and numbers
as numbers); personal data filled with obviously fake values. Calls are batched per unit and service
the way a sync queue flushes, one call body per line with the moment it was sent (`received_at`). The
unit registry has no sync call: it stays as chiso766 `unit.upserted` lines at the top of the archive.

Written from the simulation's facts, independently of `ingest/` (which reads it back): the
equivalence test compares the two paths, so one must not be derived from the other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import msgspec

from support.simulate import Simulator

LOCAL = timezone(timedelta(hours=7))
FLUSH_RECORDS = 100
FLUSH_SECONDS = 6 * 3600
TIME_UNITS = {"hours": "Giờ", "days": "Ngày", "working_days": "Ngày làm việc", "months": "Tháng"}
_decode = msgspec.json.Decoder(dict).decode
_encode = msgspec.json.encode


def fake_personal(field: str, number: int) -> str:
    """Obviously fake applicant data: nobody's name, phone or ID."""
    return {"ChuHoSo": f"Người Giả Lập {number}", "SoDienThoai": f"0000{number:06d}",
            "Email": f"gia-lap-{number}@example.invalid", "SoGiayToChuHoSo": f"GIALAP{number:06d}",
            "TrichYeuHoSo": f"Hồ sơ giả lập số {number}", "DiaChi": "Địa chỉ giả lập"}.get(field, f"giả lập {number}")


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


class SyncWriter:
    def __init__(self, seed: int, personal: Callable[[str, int], str] = fake_personal):
        self.rng = random.Random(seed ^ 0x5EED)  # its own draws: the simulation's stay as they are
        self.personal = personal
        self.items: list[tuple[int, int, str, str, bytes]] = []
        self.pending: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        self.lines: list[tuple[int, int, bytes]] = []

    # --- loose values, as integrators send them --------------------------------------------------

    def _date(self, epoch: int | None, iso_style: bool) -> str:
        if epoch is None:
            return ""
        moment = datetime.fromtimestamp(epoch, LOCAL)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000") if iso_style else moment.strftime("%Y%m%d%H%M%S")

    # --- calls -----------------------------------------------------------------------------------

    def _queue(self, at: int, service: str, unit: str, record: dict) -> None:
        """A record to send: kept with the moment of its action, batched in `finish` in time order."""
        self.items.append((at, len(self.items), service, unit, _encode(record)))

    def _batch(self, at: int, service: str, unit: str, record: bytes) -> None:
        key = (service, unit)
        queue = self.pending.setdefault(key, [])
        if queue and (len(queue) >= FLUSH_RECORDS or at - queue[0][0] > FLUSH_SECONDS):
            self._flush(key)
            queue = self.pending.setdefault(key, [])
        queue.append((at, record))

    def _flush(self, key: tuple[str, str]) -> None:
        queue = self.pending.pop(key, [])
        if not queue:
            return
        service, unit = key
        sent = queue[-1][0] + 5
        head = {"received_at": datetime.fromtimestamp(sent, LOCAL).isoformat(), "session": "sim-session",
                "madonvi": unit, "service": service}
        if service == "DongBoHoSoMC":
            head["isUpdating"] = "True"
        body = _encode(head)[:-1] + b',"data":[' + b",".join(record for _, record in queue) + b"]}"
        self.lines.append((sent, len(self.lines), body))

    # --- the catalogue ---------------------------------------------------------------------------

    def procedure(self, event: dict, province: str) -> None:
        limits = event.get("time_limits", [])
        fee = 50000 if event.get("fee_bearing") else 0
        ways = []
        for channel in (1, 2, 3) if event.get("online_level", "none") != "none" else (1, 3):
            periods = [{"THOIGIANGIAIQUYET": str(limit["value"]), "DONVITINH": TIME_UNITS[limit["unit"]],
                        "PHILEPHI": [{"MAPHILEPHI": "LP1", "SOTIEN": str(fee), "DONVI": "VNĐ"}] if fee else []}
                       for limit in limits]
            ways.append({"KENH": str(channel), "THOIGIAN": periods})
        record = {
            "MATTHC": event["procedure_code"], "TENTTHC": event["name"], "TRANGTHAI": "1",
            "MUCDO": "4" if event.get("online_level") == "full" else "3",
            "LINHVUCTHUCHIEN": [{"MALINHVUC": "LV01", "TENLINHVUC": "Lĩnh vực giả lập"}],
            "CACHTHUCTHUCHIEN": ways,
            "KETQUATHUCHIEN": [{"MAKETQUA": "KQ1", "TENKETQUA": "Giấy chứng nhận"}] if event.get(
                "returns_document", True) else [],
            "COQUANTHUCHIEN": [{"MADONVI": code, "TENDONVI": code} for code in event["handled_by"]],
            "COQUANCOTHAMQUYEN": [{"MADONVI": event["authority_unit"], "TENDONVI": province}],
            "DOITUONGTHUCHIEN": [{"MADOITUONG": "1" if event.get("for_citizens", True) else "2"}],
            "NGAYBANHANH": event.get("decision_date", "").replace("-", "") + "000000" if event.get(
                "decision_date") else "",
            "NGAYHIEULUC": event.get("legal_effective_date", "").replace("-", "") + "000000" if event.get(
                "legal_effective_date") else "",
            "NGAYCONGKHAI": self._date(_epoch(event["published_at"]), False) if event.get("published_at") else "",
            "SOPHANNOIDUNG": str(event.get("content_parts_present", 0)),
        }
        self._queue(_epoch(event["occurred_at"]), "LayThuTuc", event["authority_unit"], record)

    # --- dossiers --------------------------------------------------------------------------------

    def dossier(self, code: str, events: list[dict], number: int) -> None:
        rng = self.rng
        iso_style = rng.random() < 0.25  # the newer API variant: ISO dates, some numbers as numbers
        unit = code.rsplit("-", 1)[0]

        def value(number_value: int) -> object:
            return number_value if iso_style else str(number_value)

        record: dict = {
            "MaHoSo": code, "MaTTHC": "", "TenTTHC": "", "KenhThucHien": value(1), "LoaiDoiTuong": "1",
            "NgayNopHoSo": "", "NgayTiepNhan": "", "NgayHenTra": "", "NgayKetThucXuLy": "", "NgayTra": "",
            "NgayTuChoi": "", "TrangThaiHoSo": "1", "DonViXuLy": unit, "NoiNopHoSo": "2",
            "HoSoCoThanhPhanSoHoa": "0", "TaiKhoanDuocXacThucVoiVNeID": "0", "DuocThanhToanTrucTuyen": "0",
            "DSKetNoiCSDL": [], "TaiLieuNop": [], "DanhSachLePhi": [], "DanhSachHoSoBoSung": [],
            "DanhSachGiayToKetQua": [], "DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": self.personal(
                "SoGiayToChuHoSo", number)}], "ThongTinKhac": self.personal("ThongTinKhac", number),
            "GhiChu": self.personal("GhiChu", number), "ExtraFieldFromANewerVersion": {"x": "y"},
        }
        for field in ("ChuHoSo", "SoDienThoai", "Email", "SoGiayToChuHoSo", "TrichYeuHoSo"):
            record[field] = self.personal(field, number)
        documents = [{"TepDinhKemId": f"{code}-T{index}", "MaThanhPhanHoSo": f"TP{index}", "DuocSoHoa": "0",
                      "DuocTaiSuDung": "0", "DuocLayTuKhoDMQG": "0", "MaKetQuaThayThe": "", "IsDeleted": "False",
                      "TenTepDinhKem": self.personal("TenTepDinhKem", number),
                      "DuongDanTaiTepTin": f"https://example.invalid/{self.personal('DuongDanTaiTepTin', number)}"}
                     for index in (1, 2)]
        by_time: dict[int, list[dict]] = {}
        for event in events:
            by_time.setdefault(_epoch(event["occurred_at"]), []).append(event)
        for at in sorted(by_time):
            progress = [self._apply(record, documents, event, at, iso_style, number) for event in by_time[at]]
            self._queue(at, "DongBoHoSoMC", unit, record)  # encoded now: later actions change `record`
            for step in progress:
                if step is not None:
                    self._queue(at, "CapNhatTienDoHoSoMC", unit, step)

    def _apply(self, record: dict, documents: list[dict], event: dict, at: int, iso_style: bool,
               number: int) -> dict | None:
        kind = event["event_type"]
        date = lambda epoch: self._date(epoch, iso_style)  # noqa: E731
        status: int | None = None
        officer = event.get("officer_id")
        if kind == "dossier.status_changed":
            status = event["status"]
            record["TrangThaiHoSo"] = str(status)
            if status == 1:
                record["NgayNopHoSo"], record["KenhThucHien"] = date(at), "2"
            elif status == 3:
                record["NgayTuChoi"] = date(at)
            elif status == 9:
                record["NgayKetThucXuLy"] = date(at)
            elif status == 10:
                record["NgayTra"] = date(at)
        elif kind == "dossier.received":
            status = 2
            record.update(MaTTHC=event["procedure_code"], TenTTHC=event["procedure_code"],
                          KenhThucHien=str(event["channel"]), NgayTiepNhan=date(at), TrangThaiHoSo="2",
                          NgayHenTra=date(_epoch(event["due_at"])) if event.get("due_at") else "",
                          TaiLieuNop=documents)
            if not record["NgayNopHoSo"]:
                record["NgayNopHoSo"] = date(at)
            if event.get("fee_amount"):
                record["DanhSachLePhi"] = [{"MaPhiLePhi": "LP1", "TenPhiLePhi": "Lệ phí", "HinhThucThu": "1",
                                            "Gia": str(event["fee_amount"]), "LoaiPhiLePhi": "1"}]
        elif kind == "dossier.digitisation_recorded":
            if event.get("components_digitised"):
                record["HoSoCoThanhPhanSoHoa"] = "1"
                for document in record["TaiLieuNop"]:
                    document["DuocSoHoa"] = "1"
            if event.get("reused_digitised_data"):
                record["TaiLieuNop"][0]["DuocTaiSuDung"] = "2"
            if event.get("personal_storage_linked"):
                record["TaiLieuNop"][1]["DuocLayTuKhoDMQG"] = "1"
            if event.get("population_data_used"):
                record["DSKetNoiCSDL"] = [{"MaCSDL": "CSDLQGDC"}]
                record["TaiKhoanDuocXacThucVoiVNeID"] = "True"
            if event.get("result_digitised"):
                for result in record["DanhSachGiayToKetQua"]:
                    result["DuongDanTepTinKetQua"] = f"https://example.invalid/kq/{record['MaHoSo']}.pdf"
        elif kind == "dossier.supplement_requested":
            status = 5
            record["TrangThaiHoSo"] = "5"
            record["DanhSachHoSoBoSung"].append({"HoSoBoSungId": f"BS{len(record['DanhSachHoSoBoSung']) + 1}",
                                                 "NgayBoSung": date(at), "NgayTiepNhanBoSung": "",
                                                 "TrangThaiBoSung": "1", "NoiDungBoSung": self.personal(
                                                     "NoiDungBoSung", number)})
        elif kind == "dossier.supplement_received":
            record["TrangThaiHoSo"] = "4"
            for supplement in record["DanhSachHoSoBoSung"]:
                if not supplement["NgayTiepNhanBoSung"]:
                    supplement["NgayTiepNhanBoSung"], supplement["TrangThaiBoSung"] = date(at), "2"
        elif kind == "dossier.payment_made":
            record["DuocThanhToanTrucTuyen"] = self.rng.choice(["1", "2"])
        elif kind == "dossier.due_reappointed":
            record["NgayHenTra"] = date(_epoch(event["new_due_at"]))
        elif kind == "dossier.result_issued":
            if event.get("returns_document"):
                record["DanhSachGiayToKetQua"] = [{"GiayToId": "KQ1", "MaGiayToKetQua": "KQ1",
                                                   "MaThanhPhanHoSo": "TP1", "TenGiayTo": self.personal(
                                                       "TenGiayTo", number), "DuongDanTepTinKetQua": ""}]
        elif kind == "dossier.processing_step":
            return {"MaHoSo": record["MaHoSo"], "NguoiXuLy": f"Cán bộ {officer}", "ChucDanh": "Chuyên viên",
                    "ThoiDiemXuLy": date(at), "PhongBanXuLy": event.get("department", ""),
                    "NoiDungXuLy": f"{self.personal('NoiDungXuLy', number)} {event['step_id']}", "TrangThai": "4",
                    "NgayBatDau": date(_epoch(event["started_at"])),
                    "NgayKetThucTheoQuyDinh": date(_epoch(event["step_due_at"]))}
        if status is None or status == 2:
            return None
        return {"MaHoSo": record["MaHoSo"], "NguoiXuLy": f"Cán bộ {officer}" if officer else "",
                "ChucDanh": "", "ThoiDiemXuLy": date(at), "PhongBanXuLy": "", "TrangThai": str(status),
                "NoiDungXuLy": self.personal("NoiDungXuLy", number), "NgayBatDau": "", "NgayKetThucTheoQuyDinh": ""}

    def finish(self) -> Iterator[bytes]:
        self.items.sort()
        for at, _, service, unit, record in self.items:
            self._batch(at, service, unit, record)
        self.items = []
        for key in list(self.pending):
            self._flush(key)
        self.lines.sort()
        for _, _, body in self.lines:
            yield body


def sync_archive(seed: int, dossiers: int, province: str = "H15", personal: Callable[[str, int], str] = fake_personal,
                 **simulation) -> Iterator[bytes]:
    """The archive of sync calls of `Simulator(seed, dossiers, province, ..., sync_facts_only=True)`:
    the unit registry as chiso766 lines first, then one call body per line in the order sent."""
    simulator = Simulator(seed, dossiers, province, sync_facts_only=True, **simulation)
    writer = SyncWriter(seed, personal)
    dossier_events: dict[str, list[dict]] = {}
    for line in simulator.events():
        event = _decode(line)
        kind = event["event_type"]
        if kind == "unit.upserted":
            yield line
        elif kind == "procedure.upserted":
            writer.procedure(event, province)
        elif "dossier_code" in event:
            dossier_events.setdefault(event["dossier_code"], []).append(event)
    for number, (code, events) in enumerate(dossier_events.items(), start=1):
        writer.dossier(code, events, number)
    yield from writer.finish()
