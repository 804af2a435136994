"""The monthly notice as a print-ready PDF: A4 landscape, Vietnamese set in DejaVu Sans (embedded and
subset, from Debian's fonts-dejavu-core), the heading on the first page, tables whose header repeats
on every page, a page number in each footer. fpdf2 writes it (pure Python)."""

from __future__ import annotations

import os
from pathlib import Path

from api.export import Notice, Sheet

FONT_DIR = Path(os.environ.get("CHISO766_FONT_DIR", "/usr/share/fonts/truetype/dejavu"))
REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
BAND_COLOURS = {"Xuất sắc": (0, 110, 60), "Excellent": (0, 110, 60), "Tốt": (40, 140, 60), "Good": (40, 140, 60),
                "Khá": (150, 120, 0), "Fair": (150, 120, 0), "Trung bình": (190, 90, 0), "Average": (190, 90, 0),
                "Yếu": (180, 30, 30), "Weak": (180, 30, 30)}


class FontsMissing(RuntimeError):
    pass


def _fonts() -> tuple[Path, Path]:
    regular, bold = FONT_DIR / REGULAR, FONT_DIR / BOLD
    if not regular.exists() or not bold.exists():
        raise FontsMissing(f"the PDF needs DejaVu Sans ({regular}, {bold}): apt-get install fonts-dejavu-core "
                           "(bash deploy/setup-system.sh does), or set CHISO766_FONT_DIR")
    return regular, bold


def vietnamese_number(value: object, percent: bool = False, score: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) or percent or score:
        number = float(value) * (100 if percent else 1)
        text = f"{number:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
        return text + (" %" if percent else "")
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")
    return str(value)


def write_pdf(notice: Notice, path: Path) -> None:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    regular, bold = _fonts()
    labels_page = "Trang" if notice.lang == "vi" else "Page"

    class NoticePdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("DejaVu", "", 7)
            self.set_text_color(90, 90, 90)
            self.cell(0, 5, f"{notice.heading[1]} · {labels_page} {self.page_no()}/{{nb}}", align="C")

    pdf = NoticePdf(orientation="landscape", unit="mm", format="A4")
    pdf.set_title(f"{notice.heading[0]} — {notice.heading[1]}")
    pdf.set_author("chiso766")
    pdf.set_creator("chiso766")
    pdf.set_lang("vi-VN" if notice.lang == "vi" else "en")
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_margins(10, 10, 10)
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    pdf.multi_cell(0, 7, notice.heading[0], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 12)
    pdf.multi_cell(0, 7, notice.heading[1], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(0, 6, notice.heading[2], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for number, sheet in enumerate(notice.sheets):
        if number > 0:
            pdf.add_page()
        _table(pdf, sheet, FontFace)
    pdf.output(str(path))


def _table(pdf, sheet: Sheet, font_face) -> None:
    title = sheet.caption or sheet.title
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
    shown = [index for index in range(len(sheet.columns)) if index != sheet.group_column]
    widths = [sheet.widths[index] if sheet.widths else 1 for index in shown]
    sections: list[tuple[str | None, list[list]]] = []
    for row in sheet.rows:
        group = row[sheet.group_column] if sheet.group_column is not None else None
        if not sections or sections[-1][0] != group:
            sections.append((group, []))
        sections[-1][1].append(row)
    if not sections:
        sections = [(None, [])]
    for group, rows in sections:
        if group is not None:
            pdf.set_font("DejaVu", "B", 9)
            pdf.ln(1)
            pdf.multi_cell(0, 5, str(group), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 7)
        heading = font_face(emphasis="BOLD", fill_color=(225, 232, 240))
        with pdf.table(col_widths=widths, headings_style=heading, repeat_headings=1, line_height=4,
                       text_align=tuple("LEFT" if index in _text_columns(sheet) else "RIGHT" for index in shown),
                       borders_layout="SINGLE_TOP_LINE" if not rows else "ALL") as table:
            header = table.row()
            for index in shown:
                header.cell(str(sheet.columns[index]))
            for row in rows:
                cells = table.row()
                for index in shown:
                    value = row[index]
                    text = vietnamese_number(value, index in sheet.percent_columns, index in sheet.score_columns)
                    colour = BAND_COLOURS.get(value) if isinstance(value, str) else None
                    cells.cell(text, style=font_face(color=colour, emphasis="BOLD") if colour else None)
        pdf.ln(2)


def _text_columns(sheet: Sheet) -> set[int]:
    """Columns whose values are text (codes, names, dates): left-aligned."""
    text = set()
    for index in range(len(sheet.columns)):
        values = [row[index] for row in sheet.rows if row[index] is not None]
        if not values or any(isinstance(value, str) for value in values):
            text.add(index)
    return text
