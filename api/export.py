"""The monthly notice a provincial office circulates, read from the projection, as XLSX or CSV.

Sheets: units under CODE with the six groups, total, rank and movement; overdue counts and late
dossiers per agency; the late-dossier list; officers; online-service and online-payment rates.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from api.store import Page, ProjectionReader, under
from contracts.keys import OPEN_LISTS, late_list
from scoring.periods import parse_period
from scoring.ruleset import GROUP_CODES

ONLINE_SERVICE, ONLINE_PAYMENT = "ONLINE_DOSSIER_SHARE", "PAY_DOSSIER_ONLINE"
HEADERS = {
    "vi": {"units": "Xếp hạng đơn vị", "overdue": "Quá hạn theo đơn vị", "late": "Hồ sơ trễ hạn",
           "officers": "Cán bộ", "online": "Tỷ lệ trực tuyến", "rank": "Hạng", "movement": "Thay đổi hạng",
           "code": "Mã đơn vị", "unit": "Đơn vị", "peer_group": "Nhóm so sánh", "total": "Tổng điểm",
           "overdue_open": "Hồ sơ đang quá hạn", "approaching": "Hồ sơ sắp đến hạn",
           "late_completed": "Hồ sơ hoàn thành trễ hạn trong tháng", "dossier": "Mã hồ sơ", "procedure": "Thủ tục",
           "officer": "Cán bộ", "due": "Hạn xử lý", "completed": "Ngày hoàn thành", "steps_on_time": "Bước đúng hạn",
           "steps_late": "Bước trễ hạn", "overdue_held": "Đang giữ hồ sơ quá hạn", "points_cost": "Điểm bị trừ",
           "online_service": "Tỷ lệ hồ sơ trực tuyến", "online_payment": "Tỷ lệ thanh toán trực tuyến",
           "received": "Hồ sơ tiếp nhận"},
    "en": {"units": "Unit ranking", "overdue": "Overdue by unit", "late": "Late dossiers", "officers": "Officers",
           "online": "Online rates", "rank": "Rank", "movement": "Rank change", "code": "Unit code", "unit": "Unit",
           "peer_group": "Peer group", "total": "Total", "overdue_open": "Open overdue dossiers",
           "approaching": "Dossiers approaching due", "late_completed": "Completed late this month",
           "dossier": "Dossier", "procedure": "Procedure", "officer": "Officer", "due": "Due",
           "completed": "Completed", "steps_on_time": "Steps on time", "steps_late": "Steps late",
           "overdue_held": "Overdue held", "points_cost": "Points cost", "online_service": "Online dossier rate",
           "online_payment": "Online payment rate", "received": "Dossiers received"},
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


def _rate(indicator: dict) -> float | None:
    return indicator["numerator"] / indicator["denominator"] if indicator["denominator"] else None


async def monthly_notice(projection: ProjectionReader, month: str, root: str, lang: str = "vi") -> list[Sheet]:
    period = parse_period(month)
    if period.kind != "month":
        raise ValueError(f"the notice is monthly: use month:YYYY-MM, not {month}")
    labels = HEADERS[lang]
    units = await projection.units(period.key)
    await projection.unit(period.key, root)  # unknown unit → NotFound
    previous = await projection.units(period.previous.key)
    members = sorted(under(units, root), key=lambda u: (u["peer_group"], u["rank"] or 10**9, u["code"]))
    month_text = period.key.removeprefix("month:")

    ranking = Sheet("units", labels["units"], [labels["peer_group"], labels["rank"], labels["movement"],
                                               labels["code"], labels["unit"], *GROUP_CODES, labels["total"]],
                    score_columns=frozenset(range(5, 12)))
    overdue = Sheet("overdue", labels["overdue"], [labels["code"], labels["unit"], labels["overdue_open"],
                                                   labels["approaching"], labels["late_completed"]])
    late = Sheet("late", labels["late"], [labels["dossier"], labels["procedure"], labels["code"], labels["officer"],
                                          labels["due"], labels["completed"]])
    officers = Sheet("officers", labels["officers"], [labels["code"], labels["officer"], labels["steps_on_time"],
                                                      labels["steps_late"], labels["overdue_held"],
                                                      labels["late_completed"], labels["points_cost"]],
                     score_columns=frozenset({6}))
    online = Sheet("online", labels["online"], [labels["code"], labels["unit"], labels["received"],
                                                labels["online_service"], labels["online_payment"]],
                   percent_columns=frozenset({3, 4}))
    for unit in members:
        before = previous.get(unit["code"])
        moved = before["rank"] - unit["rank"] if before and before["rank"] and unit["rank"] else None
        ranking.rows.append([unit["peer_group"], unit["rank"], moved, unit["code"], unit["name"],
                             *(unit["groups"].get(code, 0) for code in GROUP_CODES), unit["total"]])
        counts = [await projection.list_size(which, "unit", unit["code"])
                  for which in (*OPEN_LISTS, late_list(month_text))]
        overdue.rows.append([unit["code"], unit["name"], *counts])
        for row in (await projection.dossiers(late_list(month_text), "unit", unit["code"], ALL))["dossiers"]:
            late.rows.append([row["dossier"], row["procedure"], row["unit"], row["officer"], row["due"],
                              row["completed"]])
        for tally in await projection.officers(period.key, unit["code"]):
            officers.rows.append([unit["code"], tally["officer"], tally.get("steps_on_time", 0),
                                  tally.get("steps_late", 0), tally.get("overdue_held", 0),
                                  tally.get("late_completed", 0), tally.get("points_cost", 0)])
        indicators = unit["indicators"]
        online.rows.append([unit["code"], unit["name"], indicators[ONLINE_SERVICE]["denominator"],
                            _rate(indicators[ONLINE_SERVICE]), _rate(indicators[ONLINE_PAYMENT])])
    from api.reconcile import plan_sheet  # the plans to the next band, stored by `chiso766 plan … --store`

    return [ranking, overdue, late, officers, online, await plan_sheet(projection, period.key, members, lang)]


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


def write_xlsx(sheets: list[Sheet], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        page = book.create_sheet(re.sub(r"[\[\]:*?/\\]", "-", sheet.title)[:31])
        if sheet.caption:
            _append(page, [sheet.caption])
        _append(page, sheet.columns)
        header = page.max_row
        for cell in page[header]:
            cell.font = Font(bold=True)
        for row in sheet.rows:
            _append(page, row)
        for index in range(len(sheet.columns)):
            letter = get_column_letter(index + 1)
            number_format = "0.00%" if index in sheet.percent_columns else (
                "0.00" if index in sheet.score_columns else None)
            if number_format:
                for cell in page[letter][header:]:
                    cell.number_format = number_format
            width = max([len(str(sheet.columns[index]))] + [len(str(row[index] or "")) for row in sheet.rows[:500]])
            page.column_dimensions[letter].width = min(60, width + 2)
        page.freeze_panes = f"A{header + 1}"
        if sheet.rows:
            page.auto_filter.ref = f"A{header}:{get_column_letter(len(sheet.columns))}{page.max_row}"
    book.save(path)


def write_csv(sheets: list[Sheet], path: Path) -> None:
    """One file, a titled section per table (UTF-8 with BOM so spreadsheet programs read Vietnamese)."""
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        for index, sheet in enumerate(sheets):
            if index:
                writer.writerow([])
            writer.writerow([f"# {sheet.title}" + (f" — {sheet.caption}" if sheet.caption else "")])
            writer.writerow(sheet.columns)
            writer.writerows([csv_text(value) for value in row] for row in sheet.rows)
