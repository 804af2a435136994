"""The monthly notice a provincial office circulates, read from the projection, as XLSX or CSV.

Sheets: units under CODE with the six groups, total, rank and movement; overdue counts and late
dossiers per agency; the late-dossier list; officers; online-service and online-payment rates.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from api.store import Page, ProjectionReader, under
from contracts.keys import late_list
from scoring.calendar import local
from scoring.periods import parse_period, period_label
from scoring.ruleset import GROUP_CODES

ONLINE_SERVICE, ONLINE_PAYMENT = "ONLINE_DOSSIER_SHARE", "PAY_DOSSIER_ONLINE"
HEADERS = {
    "vi": {"title": "THÔNG BÁO KẾT QUẢ BỘ CHỈ SỐ PHỤC VỤ NGƯỜI DÂN, DOANH NGHIỆP (QUYẾT ĐỊNH 766)",
           "units": "Xếp hạng đơn vị", "overdue": "Quá hạn theo đơn vị", "late": "Hồ sơ trễ hạn",
           "officers": "Cán bộ", "online": "Tỷ lệ trực tuyến", "rank": "Hạng", "movement": "Thay đổi hạng",
           "code": "Mã đơn vị", "unit": "Đơn vị", "peer_group": "Nhóm so sánh", "total": "Tổng điểm",
           "band": "Xếp loại", "handled": "Hồ sơ trong kỳ", "overdue_at_end": "Quá hạn chưa giải quyết cuối tháng",
           "in_progress": "Đang giải quyết trong hạn cuối tháng", "on_time": "Hoàn thành đúng hạn, trước hạn",
           "late_completed": "Hoàn thành trễ hạn trong tháng", "dossier": "Mã hồ sơ", "procedure": "Thủ tục",
           "officer": "Cán bộ", "due": "Hạn xử lý", "completed": "Ngày hoàn thành", "steps_on_time": "Bước đúng hạn",
           "steps_late": "Bước trễ hạn", "overdue_held": "Giữ hồ sơ quá hạn cuối tháng",
           "points_cost": "Điểm bị trừ", "online_service": "Tỷ lệ hồ sơ trực tuyến",
           "online_payment": "Tỷ lệ thanh toán trực tuyến", "received": "Hồ sơ tiếp nhận",
           "as_of": "Số liệu tính đến", "updated": "cập nhật lúc", "ruleset": "Bộ quy tắc", "month_end": "hết ngày",
           "annex": "Phụ lục", "provinces": "Tỉnh, thành phố", "ministries": "Bộ, ngành",
           "agencies": "Sở, ban, ngành", "communes": "Xã, phường", "none": "Không có"},
    "en": {"title": "DECISION 766 SERVICE QUALITY INDEX — MONTHLY NOTICE",
           "units": "Unit ranking", "overdue": "Overdue by unit", "late": "Late dossiers", "officers": "Officers",
           "online": "Online rates", "rank": "Rank", "movement": "Rank change", "code": "Unit code", "unit": "Unit",
           "peer_group": "Peer group", "total": "Total", "band": "Band", "handled": "Dossiers in the month",
           "overdue_at_end": "Open overdue at month end", "in_progress": "Open within due at month end",
           "on_time": "Completed on time or early", "late_completed": "Completed late this month",
           "dossier": "Dossier", "procedure": "Procedure", "officer": "Officer", "due": "Due",
           "completed": "Completed", "steps_on_time": "Steps on time", "steps_late": "Steps late",
           "overdue_held": "Overdue held at month end", "points_cost": "Points cost",
           "online_service": "Online dossier rate", "online_payment": "Online payment rate",
           "received": "Dossiers received", "as_of": "Figures as of", "updated": "updated",
           "ruleset": "Ruleset", "month_end": "end of", "annex": "Annex", "provinces": "Provinces",
           "ministries": "Ministries", "agencies": "Agencies of", "communes": "Communes of", "none": "None"},
}
ALL = Page(1, 10**9)


@dataclass
class Sheet:
    key: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    percent_columns: frozenset[int] = frozenset()
    score_columns: frozenset[int] = frozenset()
    caption: str = ""  # what the table covers (period, "as of"), above the header
    group_column: int | None = None  # the PDF starts a titled section when this column's value changes
    widths: tuple[float, ...] = ()  # relative column widths in the PDF


@dataclass
class Notice:
    """The monthly notice: a heading (province, month, as of, ruleset) and its tables."""

    lang: str
    unit_code: str
    unit_name: str
    month_label: str  # "Tháng 10/2026"
    as_of_text: str  # "hết ngày 31/10/2026 (cập nhật lúc 02/11/2026 08:00)"
    ruleset: str
    sheets: list[Sheet]

    @property
    def heading(self) -> list[str]:
        labels = HEADERS[self.lang]
        return [labels["title"], f"{self.unit_name} ({self.unit_code}) — {self.month_label}",
                f"{labels['as_of']} {self.as_of_text} · {labels['ruleset']} {self.ruleset}"]


def vietnamese_datetime(text: str | None) -> str | None:
    """An ISO instant as Vietnamese offices write it: 02/10/2026 17:00 (Vietnam time)."""
    if not text:
        return None
    return local(int(datetime.fromisoformat(text).timestamp())).strftime("%d/%m/%Y %H:%M")


def peer_group_name(peer_group: str, units: dict[str, dict], lang: str) -> str:
    """"Sở, ban, ngành tỉnh Mẫu Sơn", as the portal names a province's agencies."""
    labels = HEADERS[lang]
    kind, _, parent = peer_group.partition(":")
    if not parent:
        return labels.get(kind, kind)
    name = units.get(parent, {}).get("name", parent)
    if lang == "vi":
        return f"{labels.get(kind, kind)} {name[:1].lower()}{name[1:]}"
    return f"{labels.get(kind, kind)} {name}"


def _rate(indicator: dict) -> float | None:
    return indicator["numerator"] / indicator["denominator"] if indicator["denominator"] else None


async def monthly_notice(projection: ProjectionReader, month: str, root: str, lang: str = "vi",
                         on_unit: Callable[[int, int], None] | None = None) -> Notice:
    """The notice of `month` for `root` and every unit below it. Overdue and late counts are the
    dossiers as they stood at the month's end (the units' `outcomes` of that month), not today's lists."""
    period = parse_period(month)
    if period.kind != "month":
        raise ValueError(f"the notice is monthly: use month:YYYY-MM or Tháng M/YYYY, not {month}")
    labels = HEADERS[lang]
    meta = await projection.meta(period.key)
    units = await projection.units(period.key)
    await projection.unit(period.key, root)  # unknown unit → NotFound
    previous = await projection.units(period.previous.key)
    members = sorted(under(units, root), key=lambda u: (u["peer_group"] != "provinces", u["peer_group"],
                                                         u["rank"] or 10**9, u["code"]))
    month_text = period.key.removeprefix("month:")
    ruleset = projection.ruleset
    group_names = [f"{ruleset.groups[code].get('name_' + lang, code)} ({float(ruleset.groups[code]['max']):g})"
                   for code in GROUP_CODES]
    as_of = int(datetime.fromisoformat(meta["as_of"]).timestamp())
    if as_of > period.end:
        as_of_text = (f"{labels['month_end']} {local(period.end).strftime('%d/%m/%Y')} ({labels['updated']} "
                      f"{local(as_of).strftime('%d/%m/%Y %H:%M')})")
    else:
        as_of_text = local(as_of).strftime("%d/%m/%Y %H:%M")

    ranking = Sheet("units", labels["units"], [labels["peer_group"], labels["rank"], labels["movement"],
                                               labels["code"], labels["unit"], *group_names, labels["total"],
                                               labels["band"]],
                    score_columns=frozenset(range(5, 12)), group_column=0,
                    widths=(0, 5, 5, 8, 26, 8, 8, 8, 8, 8, 8, 8, 9))
    overdue = Sheet("overdue", labels["overdue"], [labels["code"], labels["unit"], labels["handled"],
                                                   labels["overdue_at_end"], labels["late_completed"],
                                                   labels["in_progress"], labels["on_time"]],
                    widths=(9, 30, 10, 13, 13, 13, 13))
    late = Sheet("late", labels["late"], [labels["dossier"], labels["procedure"], labels["code"], labels["officer"],
                                          labels["due"], labels["completed"]], widths=(18, 12, 9, 14, 13, 13))
    officers = Sheet("officers", labels["officers"], [labels["code"], labels["officer"], labels["steps_on_time"],
                                                      labels["steps_late"], labels["overdue_held"],
                                                      labels["late_completed"], labels["points_cost"]],
                     score_columns=frozenset({6}), widths=(9, 15, 10, 10, 13, 13, 10))
    online = Sheet("online", labels["online"], [labels["code"], labels["unit"], labels["received"],
                                                labels["online_service"], labels["online_payment"]],
                   percent_columns=frozenset({3, 4}), widths=(9, 32, 12, 14, 14))
    for index, unit in enumerate(members, start=1):
        before = previous.get(unit["code"])
        moved = before["rank"] - unit["rank"] if before and before["rank"] and unit["rank"] else None
        band = ruleset.band(unit["total"])
        ranking.rows.append([peer_group_name(unit["peer_group"], units, lang), unit["rank"], moved, unit["code"],
                             unit["name"], *(unit["groups"].get(code, 0) for code in GROUP_CODES), unit["total"],
                             (band.vi if lang == "vi" else band.en) if band else None])
        outcomes = unit.get("outcomes", {})
        overdue.rows.append([unit["code"], unit["name"], sum(v for k, v in outcomes.items() if k != "excluded"),
                             outcomes.get("overdue", 0), outcomes.get("late", 0), outcomes.get("in_progress", 0),
                             outcomes.get("on_time", 0) + outcomes.get("early", 0)])
        for row in (await projection.dossiers(late_list(month_text), "unit", unit["code"], ALL))["dossiers"]:
            late.rows.append([row["dossier"], row["procedure"], row["unit"], row["officer"],
                              vietnamese_datetime(row["due"]), vietnamese_datetime(row["completed"])])
        for tally in sorted(await projection.officers(period.key, unit["code"]),
                            key=lambda tally: (-tally.get("points_cost", 0), tally["officer"])):
            officers.rows.append([unit["code"], tally["officer"], tally.get("steps_on_time", 0),
                                  tally.get("steps_late", 0), tally.get("overdue_held", 0),
                                  tally.get("late_completed", 0), tally.get("points_cost", 0)])
        indicators = unit["indicators"]
        online.rows.append([unit["code"], unit["name"], indicators[ONLINE_SERVICE]["denominator"],
                            _rate(indicators[ONLINE_SERVICE]), _rate(indicators[ONLINE_PAYMENT])])
        if on_unit is not None:
            on_unit(index, len(members))
    from api.reconcile import plan_sheet  # the plans to the next band, stored by `chiso766 plan … --store`

    annexes = [overdue, late, online, officers, await plan_sheet(projection, period.key, members, lang)]
    for number, sheet in enumerate(annexes, start=1):
        sheet.caption = f"{labels['annex']} {number}. {sheet.title} — {period_label(period.key, lang)}"
    root_unit = units[root]
    return Notice(lang, root, root_unit["name"], period_label(period.key, lang), as_of_text, meta["ruleset"],
                  [ranking, *annexes])


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheet programs may read as a formula


def _xlsx_text(value: object) -> object:
    """Text a worksheet can hold: characters XML forbids (control characters) become U+FFFD."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def csv_text(value: object) -> object:
    """A CSV cell that no spreadsheet runs: text starting like a formula gets a leading apostrophe
    (OWASP's advice for CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _append(page, values: list) -> None:
    """A row whose text stays text: a caption, title, name or code like "=HYPERLINK(…)" is never a formula."""
    page.append([_xlsx_text(value) for value in values])
    for cell in page[page.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"


def write_xlsx(sheets: list[Sheet], path: Path, heading: list[str] = ()) -> None:
    """One worksheet per table; `heading` (the notice's title, unit and month, as of, ruleset) on top of
    the first."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for number, sheet in enumerate(sheets):
        page = book.create_sheet(re.sub(r"[\[\]:*?/\\]", "-", sheet.title)[:31])
        if number == 0 and heading:
            for line in heading:
                _append(page, [line])
                page.cell(page.max_row, 1).font = Font(bold=True, size=13 if page.max_row == 1 else 11)
            page.append([])
        if sheet.caption:
            _append(page, [sheet.caption])
            page.cell(page.max_row, 1).font = Font(bold=True)
        _append(page, sheet.columns)
        header = page.max_row
        for cell in page[header]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in sheet.rows:
            _append(page, row)
        for index in range(len(sheet.columns)):
            letter = get_column_letter(index + 1)
            number_format = "0.00%" if index in sheet.percent_columns else (
                "0.00" if index in sheet.score_columns else None)
            if number_format:
                for cell in page[letter][header:]:
                    cell.number_format = number_format
            width = max([min(18, len(str(sheet.columns[index])))]
                        + [len(str(row[index] or "")) for row in sheet.rows[:500]])
            page.column_dimensions[letter].width = min(60, width + 2)
        page.freeze_panes = f"A{header + 1}"
        if sheet.rows:
            page.auto_filter.ref = f"A{header}:{get_column_letter(len(sheet.columns))}{page.max_row}"
    book.save(path)


def write_csv(sheets: list[Sheet], path: Path, heading: list[str] = ()) -> None:
    """One file, a titled section per table (UTF-8 with BOM so spreadsheet programs read Vietnamese)."""
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        if heading:
            writer.writerows([csv_text(line)] for line in heading)
            writer.writerow([])
        for index, sheet in enumerate(sheets):
            if index:
                writer.writerow([])
            writer.writerow([f"# {sheet.title}" + (f" — {sheet.caption}" if sheet.caption else "")])
            writer.writerow(sheet.columns)
            writer.writerows([csv_text(value) for value in row] for row in sheet.rows)
