"""Labels of `portal`, `reconcile` and `plan`: Vietnamese by default, English with `--lang en`.

Kept apart from `cli.labels` (the leaderboard's) so the three commands' words live in one place.
Domain codes (indicator and group codes, unit codes, periods) stay as they are.
"""

from __future__ import annotations

from cli.labels import Language

TEXT: dict[Language, dict[str, str]] = {
    Language.vi: {
        # portal check / rank
        "unit": "Đơn vị", "what": "Loại", "code": "Mã", "published": "Công bố", "recomputed": "Tính lại",
        "rank": "Hạng", "name": "Tên đơn vị", "total": "Tổng", "published_rank": "Hạng công bố",
        "units_n": "đơn vị", "recomputed_n": "đã tính lại", "ruleset": "bộ quy tắc",
        "differ": "{n} số công bố khác với bộ quy tắc",
        "all_reproduced": "mọi số công bố đều tính lại đúng",
        "readable_reproduced": "mọi số đọc được đều tính lại đúng, nhưng {unusable}",
        "unusable": "{n} giá trị công bố không dùng được (xem cảnh báo ở trên)",
        "ranks_title": "{kind} {date}: hạng tính lại từ điểm công bố",
        "ranks_differ": "{n} hạng khác với hạng công bố",
        "note": "ghi chú",
        # reconcile
        "reconcile_title": "Đối soát với Cổng DVCQG",
        "published_kind": "bản công bố",
        "unit_line": "{code} {name}: Cổng {published:.2f}, hệ thống {ours:.2f}, chênh {points:+.2f} điểm",
        "indicator": "Chỉ tiêu", "published_nd": "Tử/mẫu Cổng", "ours_nd": "Tử/mẫu hệ thống",
        "ours": "Hệ thống", "points": "Chênh lệch", "group": "nhóm",
        "dossiers_n": "hồ sơ", "no_points": "không điểm", "candidates": " (ứng viên, chưa tính)",
        "page": "trang", "unexplained": "chưa giải thích được từ dữ liệu của hệ thống",
        "all_explained": "mọi điểm chênh lệch đều được giải thích", "no_gap": "hai bên khớp: không có chênh lệch",
        "only_published": "chỉ có trên Cổng", "only_ours": "chỉ có trong hệ thống",
        "yes": "có", "no": "không",
        # plan
        "plan_head": "{unit} {name} — {target} trong {period} (nhóm so sánh {peer_group}), dự kiến đến {projected}",
        "baseline": "nếu không ai làm gì: {total:.2f}, hạng {rank}; cần đạt: {needed:.2f}",
        "actions_title": "{n} việc cần làm (trong {candidates} việc có thể)",
        "action": "Việc", "dossier": "Hồ sơ", "due": "Hạn", "officer": "Cán bộ", "by": "Làm trước",
        "after": "sau kế hoạch: {total:.2f}, hạng {rank}{ties}", "tied": " (đồng hạng với {codes})",
    },
    Language.en: {
        "unit": "unit", "what": "what", "code": "code", "published": "published", "recomputed": "recomputed",
        "rank": "#", "name": "unit", "total": "total", "published_rank": "published #",
        "units_n": "units", "recomputed_n": "recomputed", "ruleset": "ruleset",
        "differ": "{n} published numbers differ from the ruleset",
        "all_reproduced": "every published number is reproduced",
        "readable_reproduced": "every number that could be read is reproduced, but {unusable}",
        "unusable": "{n} published value{s} could not be used (warnings above)",
        "ranks_title": "{kind} {date}: ranks recomputed from the published scores",
        "ranks_differ": "{n} ranks differ from the published ones",
        "note": "note",
        "reconcile_title": "Reconciliation with the national portal",
        "published_kind": "published",
        "unit_line": "{code} {name}: published {published:.2f}, ours {ours:.2f}, {points:+.2f} points",
        "indicator": "indicator", "published_nd": "published n/d", "ours_nd": "ours n/d",
        "ours": "ours", "points": "points", "group": "group",
        "dossiers_n": "dossiers", "no_points": "no points", "candidates": " (candidates, not counted)",
        "page": "page", "unexplained": "not explained by our data",
        "all_explained": "every point of the gap is explained", "no_gap": "the two sides agree: no gap",
        "only_published": "only in the publication", "only_ours": "only in our scores",
        "yes": "yes", "no": "no",
        "plan_head": "{unit} {name} — {target} in {period} (peer group {peer_group}), projected to {projected}",
        "baseline": "baseline (nobody acts): {total:.2f}, rank {rank}; needed: {needed:.2f}",
        "actions_title": "{n} actions (of {candidates} possible)",
        "action": "action", "dossier": "dossier", "due": "due", "officer": "officer", "by": "by",
        "after": "after the plan: {total:.2f}, rank {rank}{ties}", "tied": " (tied with {codes})",
    },
}
