"""Personal data stops here (INGEST.md §4). What leaves the edge is built from an allow-list of codes,
flags and dates; nothing else of a record is ever copied — not into events, dead letters, answers or
logs. Officers' names become stable pseudonymous ids: a keyed hash (HMAC-SHA-256) whose key is the
deployment's secret, so the same officer gets the same id across calls and restarts, and nobody
without the key can test a guessed name against an id."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

# Fields of a record that are not personal: codes, flags, dates, amounts. Everything else is dropped.
KEPT_FIELDS = frozenset({
    "MaHoSo", "MaTTHC", "TenTTHC", "MaLinhVuc", "TenLinhVuc", "KenhThucHien", "LoaiDoiTuong", "NgayNopHoSo",
    "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra", "NgayTuChoi", "TrangThaiHoSo", "HinhThuc",
    "DonViXuLy", "NoiNopHoSo", "HoSoCoThanhPhanSoHoa", "TaiKhoanDuocXacThucVoiVNeID", "DuocThanhToanTrucTuyen",
    "ThoiDiemXuLy", "TrangThai", "NgayBatDau", "NgayKetThucTheoQuyDinh", "PhongBanXuLy", "ChucDanh", "LoaiDinhDanh",
    "MaCSDL", "TepDinhKemId", "MaThanhPhanHoSo", "DuocSoHoa", "DuocTaiSuDung", "DuocLayTuKhoDMQG",
    "MaKetQuaThayThe", "IsDeleted", "MaPhiLePhi", "TenPhiLePhi", "HinhThucThu", "Gia", "LoaiPhiLePhi",
    "HoSoBoSungId", "NgayBoSung", "NgayTiepNhanBoSung", "TrangThaiBoSung", "NgayHenTraTruoc", "NgayHenTraMoi",
    "GiayToId", "MaGiayToKetQua",
    # catalogue records (public information, no personal data in them)
    "MATTHC", "TENTTHC", "MALINHVUC", "TENLINHVUC", "KENH", "THOIGIANGIAIQUYET", "DONVITINH", "MAPHILEPHI",
    "SOTIEN", "DONVI", "MAKETQUA", "TENKETQUA", "MADONVI", "TENDONVI", "TRANGTHAI", "MADOITUONG", "MUCDO",
    "NGAYBANHANH", "NGAYHIEULUC", "NGAYCONGKHAI", "SOPHANNOIDUNG",
})
KEPT_LISTS = frozenset({"DSKetNoiCSDL", "TaiLieuNop", "DanhSachLePhi", "DanhSachHoSoBoSung", "DanhSachGiayToKetQua",
                        "LINHVUCTHUCHIEN", "CACHTHUCTHUCHIEN", "THOIGIAN", "PHILEPHI", "KETQUATHUCHIEN",
                        "COQUANTHUCHIEN", "COQUANCOTHAMQUYEN", "DOITUONGTHUCHIEN"})
# Named for the README and the tests: INGEST.md §4's list. None of them is in KEPT_FIELDS.
PERSONAL_FIELDS = ("ChuHoSo", "SoDienThoai", "Email", "Fax", "MaDoiTuong", "SoGiayToChuHoSo", "DinhDanhCHS",
                   "ThongTinKhac", "TrichYeuHoSo", "GhiChu", "ThongTinTra", "NoiDungXuLy", "NoiDungBoSung",
                   "ThongTinTiepNhan", "TenTepDinhKem", "TenGiayTo", "DuongDanTaiTepTin", "DuongDanTepTinKetQua",
                   "NguoiXuLy", "NguoiYeuCauBoSung", "NguoiTiepNhanBoSung")
MAX_KEPT_TEXT = 200
MAX_KEPT_ITEMS = 50


def scrubbed(record: object, depth: int = 0) -> object:
    """A record with only its allow-listed fields (for a dead letter a person can act on): codes,
    flags and dates, strings cut to 200 characters, lists to 50 items, nesting to 3 levels."""
    if not isinstance(record, dict) or depth > 3:
        return None
    kept: dict[str, object] = {}
    for name, value in record.items():
        if name in KEPT_LISTS and isinstance(value, list):
            kept[name] = [scrubbed(item, depth + 1) for item in value[:MAX_KEPT_ITEMS]]
        elif name in KEPT_FIELDS and (value is None or isinstance(value, bool | int | float)):
            kept[name] = value
        elif name in KEPT_FIELDS and isinstance(value, str):
            kept[name] = value[:MAX_KEPT_TEXT]
    return kept


def _normalised(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


class Pseudonymiser:
    """Officer name → `CB-` and 20 hex digits of HMAC-SHA-256(secret, normalised name). Case, spacing
    and Unicode composition do not change the id."""

    __slots__ = ("_key", "_memo")

    def __init__(self, secret: str | bytes):
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the pseudonym secret must be at least 16 bytes")
        self._key = key
        self._memo: dict[str, str] = {}

    def officer(self, name: str) -> str | None:
        if not name.strip():
            return None
        known = self._memo.get(name)
        if known is None:
            digest = hmac.new(self._key, b"officer\x00" + _normalised(name).encode(), hashlib.sha256).hexdigest()
            known = f"CB-{digest[:20]}"
            if len(self._memo) < 100_000:
                self._memo[name] = known
        return known

    def token(self, *parts: str) -> str:
        """A short keyed digest of free text that must not leave the edge but still tells records
        apart (a progress step's NoiDungXuLy in its dedupe key)."""
        data = "\x1f".join(parts).encode()
        return hmac.new(self._key, b"token\x00" + data, hashlib.sha256).hexdigest()[:12]
