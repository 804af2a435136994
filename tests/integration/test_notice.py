"""The monthly notice, ready to publish: the PDF rendered page by page (poppler's pdftoppm) and read
back (pdftotext) finds the heading, the month and every agency; its overdue and late counts are
those of the month's end, not today's; XLSX carries the same heading; a missing folder is created."""

from __future__ import annotations

import shutil
import subprocess

import orjson
import pytest

from tests.integration.conftest import chiso766

pytestmark = pytest.mark.integration


def pdf_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"the PDF test needs {name}: bash deploy/setup-system.sh --browser installs poppler-utils")
    return found


def test_the_pdf_notice_renders_with_its_heading_month_and_every_agency(office_namespace, tmp_path):
    out = tmp_path / "not" / "yet" / "thong-bao-2026-05.pdf"  # a folder that does not exist yet
    done = chiso766("export", "--period", "Tháng 5/2026", "--unit", "H15", "--out", str(out),
                    "--namespace", office_namespace)
    assert out.exists() and out.read_bytes().startswith(b"%PDF"), done.stderr
    report = orjson.loads(chiso766("scores", "--period", "month:2026-05", "--namespace", office_namespace).stdout)
    agencies = [unit for unit in report["units"] if unit["level"] == "agency"]
    assert len(agencies) >= 10

    info = subprocess.run([pdf_tool("pdfinfo"), str(out)], capture_output=True, text=True, check=True).stdout
    assert "A4" in info or "841.89 x 595.28" in info  # A4 landscape, in points
    fonts = subprocess.run([pdf_tool("pdffonts"), str(out)], capture_output=True, text=True, check=True).stdout
    assert "DejaVuSans" in fonts and all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # embedded
    subprocess.run([pdf_tool("pdftoppm"), "-r", "60", "-png", str(out), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    pages_in_info = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert len(pages) == pages_in_info >= 2
    assert all(page.stat().st_size > 5_000 for page in pages)  # drawn, not blank
    text = subprocess.run([pdf_tool("pdftotext"), "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    first_page = text.split("\f")[0]
    assert "THÔNG BÁO KẾT QUẢ BỘ CHỈ SỐ" in first_page and "Tháng 5/2026" in first_page
    assert "Số liệu tính đến hết ngày 31/05/2026" in first_page and report["ruleset"] in first_page
    for words in ("Công khai,", "minh bạch", "Tiến độ giải", "Thanh toán", "Mức độ hài", "Tổng điểm", "Xếp loại"):
        assert words in first_page  # the six groups by name (headers wrap over lines), total, band
    for agency in agencies:
        assert agency["name"] in text, agency["name"]
    assert "Phụ lục 1" in text and "Phụ lục 4" in text


def test_the_annex_counts_overdue_and_late_as_of_each_months_end(office_namespace, tmp_path):
    from openpyxl import load_workbook

    counts = {}
    for month in ("2026-03", "2026-05"):
        xlsx = tmp_path / f"{month}.xlsx"
        chiso766("export", "--period", month, "--unit", "H15", "--out", str(xlsx), "--namespace", office_namespace)
        book = load_workbook(xlsx)
        ranking = [row for row in book["Xếp hạng đơn vị"].iter_rows(values_only=True)]
        assert ranking[0][0].startswith("THÔNG BÁO KẾT QUẢ")
        assert ranking[1][0] == f"Tỉnh Mẫu Sơn (H15) — Tháng {int(month[-2:])}/2026"
        sheet = list(book["Quá hạn theo đơn vị"].iter_rows(values_only=True))
        header = next(index for index, row in enumerate(sheet) if row[0] == "Mã đơn vị")
        counts[month] = {row[0]: row[3:5] for row in sheet[header + 1:]}
        report = orjson.loads(chiso766("scores", "--period", f"month:{month}", "--namespace", office_namespace).stdout)
        for unit in report["units"]:
            outcomes = unit["outcomes"]
            assert counts[month][unit["code"]] == (outcomes.get("overdue", 0), outcomes.get("late", 0))
    assert counts["2026-03"] != counts["2026-05"]  # each month as it stood then, not the same current lists
    assert sum(late for _, late in counts["2026-05"].values()) > 0
