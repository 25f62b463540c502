"""The A4 poster a school prints and pins up: its name, a QR code of its link, three steps,
the hotline. fpdf2 with the bundled DejaVu fonts (Vietnamese glyphs), the QR by segno."""

from __future__ import annotations

import io
import re
from pathlib import Path

import segno

from bot.documents import FONT_FAMILY, FONTS_DIR
from bot.private import write_private
from bot.schools.registry import SchoolRecord
from bot.schools.texts import school_text

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
QR_SIZE_MM = 110


def _qr_png(link: str) -> io.BytesIO:
    out = io.BytesIO()
    # Error correction "M" and a wide quiet zone: a poster gets creased, faded and photographed.
    segno.make(link, error="m", micro=False).save(out, kind="png", scale=12, border=4)
    out.seek(0)
    return out


def poster_pdf(school: SchoolRecord, link: str) -> bytes:
    from fpdf import FPDF  # ~0.3 s import: only when a poster is made

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(False)
    pdf.add_font(FONT_FAMILY, "", str(FONTS_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT_FAMILY, "B", str(FONTS_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_title(school_text("poster.title"))
    pdf.set_creator("vssid-bot")
    pdf.add_page()
    width = pdf.epw

    pdf.set_font(FONT_FAMILY, "B", 30)
    pdf.cell(width, 14, school_text("poster.title"), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, "", 15)
    pdf.cell(width, 8, school_text("poster.subtitle"), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT_FAMILY, "B", 17)
    pdf.multi_cell(width, 8, school_text("poster.for_school", school=school.name), align="C")
    pdf.ln(4)

    pdf.image(_qr_png(link), x=(pdf.w - QR_SIZE_MM) / 2, w=QR_SIZE_MM, h=QR_SIZE_MM)
    pdf.ln(2)
    pdf.set_font(FONT_FAMILY, "", 11)
    pdf.multi_cell(width, 6, school_text("poster.scan"), align="C")
    pdf.set_font(FONT_FAMILY, "B", 11)
    pdf.multi_cell(width, 6, link, align="C")
    pdf.ln(4)

    pdf.set_font(FONT_FAMILY, "B", 15)
    pdf.cell(width, 8, school_text("poster.steps_title"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, "", 12.5)
    for number in (1, 2, 3):
        pdf.multi_cell(width, 6.5, f"{number}. " + school_text(f"poster.step{number}"))
        pdf.ln(1.5)
    pdf.ln(3)
    pdf.set_font(FONT_FAMILY, "B", 14)
    pdf.multi_cell(width, 7, school_text("poster.hotline"), align="C")
    if school.contact:
        pdf.set_font(FONT_FAMILY, "", 11)
        pdf.multi_cell(width, 6, school_text("poster.contact", contact=school.contact), align="C")
    return bytes(pdf.output())


def write_poster(out_dir: Path, school: SchoolRecord, link: str) -> Path:
    """`out_dir/poster-<code>.pdf`, replaced when made again (the link may have changed)."""
    name = _SAFE_NAME.sub("_", school.code)
    path = out_dir / f"poster-{name}.pdf"
    write_private(path, poster_pdf(school, link))
    return path
