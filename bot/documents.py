"""The Tờ khai (Mẫu số 01) PDF the citizen prints, signs and brings to the social-insurance office.

The wording lives in `templates/to_khai.html.j2` so an officer can review it without reading
Python; this module only fills it in (jinja2, autoescaped: a name is data, never markup) and
lays it out with fpdf2. The DejaVu fonts are bundled in `fonts/` because PDF core fonts
have no Vietnamese glyphs and a fresh server may have no system fonts at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import jinja2

from bot.cpu import CpuPool, default_pool
from bot.private import write_private
from dialogs.ports import Declaration, paper_deadline

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

    def __init__(
        self,
        out_dir: Path,
        *,
        today: Callable[[], date] = today_in_vietnam,
        cache_dir: Path | None = None,
        cpu: CpuPool | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.cpu = cpu
        # The cut-down fonts, made once and kept (by default beside the documents' folder).
        self.cache_dir = Path(cache_dir) if cache_dir else self.out_dir.parent / "cache" / "fonts"
        self._today = today
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a renamed field must fail loudly, not print blank
            trim_blocks=True,
            lstrip_blocks=True,
        )

    async def declaration_pdf(self, receipt: str, declaration: Declaration, agency: dict) -> Path:
        """Write the Tờ khai for one submitted declaration; rendering again replaces the file.

        The layout (CPU work) runs in the CPU pool; filling the template and writing the
        file stay here."""
        name = _SAFE_NAME.sub("_", receipt).strip("_")
        if not name:
            raise ValueError("receipt has no usable characters for a file name")
        html = self.declaration_html(receipt, declaration, agency)
        data = await (self.cpu or default_pool()).run(layout_pdf, html, self.cache_dir)
        final = self.out_dir / f"to-khai-{name}.pdf"
        await asyncio.to_thread(write_private, final, data)
        log.info("declaration PDF written: receipt=%s kind=%s bytes=%d", receipt, declaration.kind, len(data))
        return final

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
            deadline=paper_deadline(self._today()),
        )
        # Keyboards emit decomposed accents too; precomposed (NFC) glyphs render reliably.
        return unicodedata.normalize("NFC", html)


# What a Tờ khai can contain: Latin with every Vietnamese letter, punctuation, the đồng
# sign. DejaVu covers thousands of glyphs more (Greek, Cyrillic, symbols); subsetting those
# away once makes each document's own subsetting (fpdf2 embeds only the glyphs it used)
# about ten times cheaper. A text with a character outside this set uses the full fonts.
_COVERED = frozenset(
    [
        *range(0x20, 0x7F),
        *range(0xA0, 0x250),
        *range(0x300, 0x370),
        *range(0x1EA0, 0x1F00),
        *range(0x2010, 0x2027),
        *(0x2030, 0x2039, 0x203A, 0x20AB, 0x20AC, 0x2116, 0x2122),
    ]
)
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


def _fonts_for(html: str, cache_dir: Path) -> dict[str, Path]:
    if all(ord(ch) in _COVERED or ch in "\n\r\t" for ch in html):
        return _small_fonts(cache_dir)
    return {style: FONTS_DIR / name for style, name in _FONT_FILES.items()}


@cache
def _small_fonts(cache_dir: Path) -> dict[str, Path]:
    """The bundled fonts cut down to `_COVERED`, made once per cache dir (and kept there)."""
    from fontTools import subset

    fonts: dict[str, Path] = {}
    for style, name in _FONT_FILES.items():
        source = FONTS_DIR / name
        digest = hashlib.sha256(source.read_bytes() + repr(sorted(_COVERED)).encode()).hexdigest()[:16]
        target = cache_dir / f"{source.stem}-vi-{digest}.ttf"
        if not target.is_file():
            options = subset.Options()
            options.layout_features = ["*"]
            options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing a PDF needs
            font = subset.load_font(str(source), options)
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=_COVERED)
            subsetter.subset(font)
            buffer = io.BytesIO()
            font.save(buffer)
            write_private(target, buffer.getvalue())
        fonts[style] = target
    return fonts


def layout_pdf(html: str, cache_dir: Path) -> bytes:
    """The PDF of a filled-in Tờ khai (a top-level function: it runs in worker processes)."""
    return bytes(_layout(html, cache_dir))


def _layout(html: str, cache_dir: Path) -> bytearray:
    # fpdf2 takes ~0.3 s to import: only the first rendered declaration pays for it.
    from fpdf import FPDF
    from fpdf.fonts import TextStyle

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(18, 12, 18)
    pdf.set_auto_page_break(True, margin=12)
    for style, path in _fonts_for(html, cache_dir).items():
        pdf.add_font(FONT_FAMILY, style, str(path))
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
