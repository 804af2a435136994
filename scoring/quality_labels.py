"""Labels of data-quality problems, Vietnamese and English: the findings of `scoring.quality` and the
reasons an event is refused (`schemas.decode`, the workers' dead letters).

Here rather than in `cli.labels` because the API shows them too and must not import the CLI; keyed
by the plain language code so neither side needs the other's enum (`cli.labels.Language` is a
StrEnum, so its members look these up as they are).
"""

from __future__ import annotations

from collections.abc import Iterable

LANGUAGES = ("vi", "en")

PROBLEM_LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "refused_after_receipt": "Từ chối tiếp nhận (trạng thái 3) sau khi đã tiếp nhận",
        "status_after_end": "Trạng thái xử lý sau khi hồ sơ đã kết thúc",
        "ended_before_receipt": "Kết thúc trước ngày tiếp nhận",
        "never_received": "Có cập nhật nhưng chưa từng tiếp nhận",
        "no_due": "Không có hạn xử lý (không đánh giá được)",
        "due_beyond_limit": "Ngày hẹn trả vượt thời hạn luật định",
        "reappointed_twice": "Hẹn lại ngày trả quá một lần",
        "apology_late": "Thiếu thư xin lỗi hoặc gửi muộn (ít nhất 1 ngày làm việc trước hạn)",
        "unknown_procedure": "Thủ tục không có trong danh mục",
        "unknown_unit": "Đơn vị không có trong danh mục",
        "unsynced": "Chưa đồng bộ lên Cổng DVCQG",
        "future_time": "Sự kiện ghi thời điểm trong tương lai",
        "unusable_code": "Mã chứa ký tự điều khiển hoặc `|`",
        "empty_array": "Dòng là mảng rỗng",
        "bad_array": "Mảng có nhiều phần tử lỗi (gộp thành một bản ghi)",
        "not_json": "Không phải JSON",
        "not_utf8": "Không phải UTF-8",
        "oversized": "Quá lớn",
        "unknown_event_type": "Loại sự kiện không xác định",
        "missing_event_type": "Thiếu loại sự kiện",
        "missing_field": "Thiếu trường bắt buộc",
        "wrong_type": "Sai kiểu dữ liệu",
        "invalid_value": "Giá trị không hợp lệ",
        "impossible_timestamp": "Thời điểm không hợp lệ",
    },
    "en": {
        "refused_after_receipt": "Refused at reception (status 3) after being received",
        "status_after_end": "Processing status after the dossier ended",
        "ended_before_receipt": "Ended before it was received",
        "never_received": "Updates for a dossier never received",
        "no_due": "No due date (cannot be judged)",
        "due_beyond_limit": "Due date beyond the legal time limit",
        "reappointed_twice": "Return date re-appointed more than once",
        "apology_late": "Apology letter missing or late (at least 1 working day before due)",
        "unknown_procedure": "Procedure not in the catalogue",
        "unknown_unit": "Unit not in the registry",
        "unsynced": "Never synced to the national portal",
        "future_time": "Event dated in the future",
        "unusable_code": "Code holds a control character or `|`",
        "empty_array": "Empty array line",
        "bad_array": "Array with many bad elements (one summarised record)",
        "not_json": "Not JSON",
        "not_utf8": "Not UTF-8",
        "oversized": "Too large",
        "unknown_event_type": "Unknown event type",
        "missing_event_type": "Missing event type",
        "missing_field": "Missing required field",
        "wrong_type": "Wrong type",
        "invalid_value": "Invalid value",
        "impossible_timestamp": "Impossible timestamp",
    },
}


def problem_label(code: str, lang: str) -> str:
    """The label of a problem code in `lang` ("vi" or "en"); an unknown code stands for itself."""
    return PROBLEM_LABELS[lang].get(code, code)


def problem_labels(codes: Iterable[str]) -> dict[str, dict[str, str]]:
    """`{code: {"vi", "en"}}` for every known problem and each of `codes` (unknown: the code)."""
    return {code: {lang: problem_label(code, lang) for lang in LANGUAGES}
            for code in sorted({*PROBLEM_LABELS["en"], *codes})}
