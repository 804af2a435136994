"""User-facing labels: Vietnamese by default, English on request. Domain codes stay as they are."""

from __future__ import annotations

from enum import StrEnum

# Data-quality problem labels (`chiso766 check`) live in `scoring.quality_labels`, where the API reads
# them too (it may not import the CLI); re-exported so the CLI keeps one place to look for labels.
from scoring.quality_labels import PROBLEM_LABELS, problem_label

__all__ = ["LABELS", "PROBLEM_LABELS", "Language", "peer_group_label", "problem_label"]


class Language(StrEnum):
    vi = "vi"
    en = "en"


LABELS: dict[Language, dict[str, str]] = {
    Language.vi: {
        "title": "Bảng xếp hạng chỉ số 766",
        "period": "Kỳ",
        "as_of": "Tính đến",
        "ruleset": "Bộ quy tắc",
        "rank": "Hạng",
        "code": "Mã",
        "unit": "Đơn vị",
        "total": "Tổng",
        "band": "Xếp loại",
        "received": "Hồ sơ tiếp nhận",
        "overdue": "Quá hạn",
        "late": "Trễ hạn",
        "peer_group": "Nhóm so sánh",
        "provinces": "Tỉnh, thành phố",
        "ministries": "Bộ, ngành",
        "agencies": "Sở, ban, ngành thuộc",
        "communes": "Xã, phường thuộc",
    },
    Language.en: {
        "title": "Decision 766 leaderboard",
        "period": "Period",
        "as_of": "As of",
        "ruleset": "Ruleset",
        "rank": "Rank",
        "code": "Code",
        "unit": "Unit",
        "total": "Total",
        "band": "Band",
        "received": "Received",
        "overdue": "Overdue",
        "late": "Late",
        "peer_group": "Peer group",
        "provinces": "Provinces",
        "ministries": "Ministries",
        "agencies": "Agencies of",
        "communes": "Communes of",
    },
}


def peer_group_label(peer_group: str, labels: dict[str, str]) -> str:
    kind, _, parent = peer_group.partition(":")
    return f"{labels.get(kind, kind)} {parent}".strip()

