"""The Tờ khai (Mẫu số 01) PDF the citizen prints, signs and brings to the social-insurance office.

The wording lives in `templates/to_khai.html.j2` so an officer can review it without reading
Python; this module only fills it in (jinja2, autoescaped: a name is data, never markup) and
lays it out with fpdf2. The DejaVu fonts are bundled in `fonts/` because PDF core fonts
have no Vietnamese glyphs and a fresh server may have no system fonts at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import jinja2

from bot.private import write_private
from dialogs.ports import Declaration

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
FONTS_DIR = PACKAGE_DIR / "fonts"
FONT_FAMILY = "DejaVu"

# Vietnam has used UTC+7 without daylight saving since 1975: a fixed offset needs no tzdata.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def today_in_vietnam() -> date:
    return datetime.now(UTC).astimezone(VIETNAM_TIME).date()


class PdfDocumentRenderer:
    """Renders declarations to `out_dir/to-khai-<receipt>.pdf` (mode 0600, no personal data in the name)."""

    def __init__(self, out_dir: Path, *, today: Callable[[], date] = today_in_vietnam) -> None:
        self.out_dir = Path(out_dir)
        self._today = today
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a renamed field must fail loudly, not print blank
            trim_blocks=True,
            lstrip_blocks=True,
        )

    async def declaration_pdf(self, receipt: str, declaration: Declaration, agency: dict) -> Path:
        """Write the Tờ khai for one submitted declaration; rendering again replaces the file."""
        return await asyncio.to_thread(self._render, receipt, declaration, agency)

    def declaration_html(self, receipt: str, declaration: Declaration, agency: dict) -> str:
        """The filled-in template (simple HTML), also usable by channels that show HTML."""
        template = self._env.get_template("to_khai.html.j2")
        html = template.render(
            receipt=receipt,
            d=declaration,
            agency={
                "code": agency.get("code"),
                "name": agency.get("name") or "",
                "phone": agency.get("phone"),
                "address": agency.get("address"),
            },
            today=self._today(),
        )
        # Keyboards emit decomposed accents too; precomposed (NFC) glyphs render reliably.
        return unicodedata.normalize("NFC", html)

    def _render(self, receipt: str, declaration: Declaration, agency: dict) -> Path:
        name = _SAFE_NAME.sub("_", receipt).strip("_")
        if not name:
            raise ValueError("receipt has no usable characters for a file name")
        html = self.declaration_html(receipt, declaration, agency)
        data = bytes(_layout(html))
        final = self.out_dir / f"to-khai-{name}.pdf"
        write_private(final, data)
        log.info("declaration PDF written: receipt=%s kind=%s bytes=%d", receipt, declaration.kind, len(data))
        return final


def _layout(html: str) -> bytearray:
    # fpdf2 takes ~0.3 s to import: only the first rendered declaration pays for it.
    from fpdf import FPDF
    from fpdf.fonts import TextStyle

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(18, 12, 18)
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_font(FONT_FAMILY, "", str(FONTS_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT_FAMILY, "B", str(FONTS_DIR / "DejaVuSans-Bold.ttf"))
    # Document metadata stays generic: PDF viewers and mail scanners show it to anyone.
    pdf.set_title("Tờ khai Mẫu số 01")
    pdf.set_creator("vssid-bot")
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=10.5)
    pdf.write_html(
        html,
        font_family=FONT_FAMILY,
        # fpdf2 tints headings and indents lists for web-like pages; a government form is plain.
        tag_styles={"li": TextStyle(l_margin=4, t_margin=1)},
        ul_bullet_char="-",
        li_prefix_color=(0, 0, 0),
    )
    return pdf.output()
