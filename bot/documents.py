"""The Tờ khai (Mẫu số 01) PDF the citizen prints, signs and brings to the social-insurance office.

The wording lives in `templates/to_khai.yaml` so an officer can review it without reading
Python; this module fills it in (jinja2) and lays it out with fpdf2: the fixed paragraphs
are line-broken and measured once per process, and each line is placed where fpdf2's `cell`
would put it but printed with its much lighter `text` (fpdf2's layout is pure Python and was
most of a document's time). The fonts are embedded once per process (bot/pdf_fonts.py). The
DejaVu fonts are bundled in `fonts/` because PDF core fonts have no Vietnamese glyphs and a
fresh server may have no system fonts at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

from bot import disk_cache
from bot.cpu import CpuPool, default_pool
from bot.crypto import Keyring
from bot.private import private_dir, write_private
from dialogs.catalog import catalog, render
from dialogs.ports import Declaration, paper_deadline, vietnam_date

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
FONTS_DIR = PACKAGE_DIR / "fonts"
FONT_FAMILY = "DejaVu"

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")

# One laid-out block of the form (plain tuples: they cross into the CPU pool's processes).
#   ("center", size, text)            a bold centred heading line (wrapped if long)
#   ("right", size, text)             a bold line at the right margin
#   ("runs", ((bold, text), ...))     one paragraph mixing bold and regular runs
#   ("para", text)                    a regular paragraph
#   ("rows", ((label, value), ...))   the label/value table, values in bold
#   ("sign", ((bold, text), ...))     centred lines in the right-hand signature column
#   ("list", heading, (item, ...))    a bold heading and dash-bulleted items
#   ("gap", millimetres)
Block = tuple[Any, ...]


def today_in_vietnam() -> date:
    return vietnam_date(datetime.now(UTC))


def _catalog() -> Mapping[str, Any]:
    # Through the one text loader (StrictUndefined: a renamed field fails loudly instead of
    # printing blank on a legal form).
    return catalog(TEMPLATES_DIR / "to_khai.yaml").data


class FormWords:
    """The catalog's sentences for one declaration: `words("key", ...)` renders one of them."""

    def __init__(self, **context: Any) -> None:
        self.context = context

    def __call__(self, key: str) -> str:
        node: Any = _catalog()
        for part in key.split("."):
            node = node[part]
        return self.render(node)

    def render(self, source: str) -> str:
        text = render(source, **self.context)
        # Keyboards emit decomposed accents too; precomposed (NFC) glyphs render reliably.
        return unicodedata.normalize("NFC", " ".join(text.split()))


class PdfDocumentRenderer:
    """Renders declarations to `out_dir/to-khai-<receipt>.pdf` (mode 0600, sealed with the data
    key, no personal data in the name)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        today: Callable[[], date] = today_in_vietnam,
        cache_dir: Path | None = None,
        cpu: CpuPool | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.cpu = cpu
        # The PDF carries the whole declaration: sealed with the data key when given (always,
        # from the assistant); channels read it back through bot.crypto.open_file.
        self.keyring = keyring
        # The cut-down fonts, made once and kept (by default shared through the cache dir).
        self.cache_dir = (
            Path(cache_dir) if cache_dir else font_cache_dir(self.out_dir.parent / "cache" / "fonts")
        )
        self._today = today

    async def declaration_pdf(self, receipt: str, declaration: Declaration, agency: dict) -> Path:
        """Write the Tờ khai for one submitted declaration; rendering again replaces the file.

        The layout (CPU work) runs in the CPU pool; filling the words in and writing the
        file stay here."""
        name = _SAFE_NAME.sub("_", receipt).strip("_")
        if not name:
            raise ValueError("receipt has no usable characters for a file name")
        form = self.declaration_form(receipt, declaration, agency)
        data = await (self.cpu or default_pool()).run(layout_pdf, form, self.cache_dir)
        final = self.out_dir / f"to-khai-{name}.pdf"
        write = self.keyring.write_file if self.keyring is not None else write_private
        await asyncio.to_thread(write, final, data)
        log.info("declaration PDF written: receipt=%s kind=%s bytes=%d", receipt, declaration.kind, len(data))
        return final

    async def warm_up(self) -> None:
        """Cut the fonts (once per cache dir, kept on disk), then parse and embed them in every
        CPU worker (each process keeps its own), so the first parent to finish does not wait
        for it; harmless if it runs twice."""
        pool = self.cpu or default_pool()
        await pool.run(warm_up, self.cache_dir)
        pool.warm_up(partial(warm_up, self.cache_dir))

    def declaration_form(self, receipt: str, declaration: Declaration, agency: dict) -> list[Block]:
        """The filled-in form as layout blocks (see `Block`)."""
        today = self._today()
        words = FormWords(
            receipt=receipt,
            child=declaration.kind == "child",
            d=declaration,
            agency={key: agency.get(key) for key in ("code", "phone", "address")}
            | {"name": agency.get("name") or ""},
            today=_vn_date(today),
            deadline=paper_deadline(today),
            day=f"{today.day:02d}",
            month=f"{today.month:02d}",
            year=str(today.year),
        )
        return [*_heading(words, receipt), ("rows", tuple(_rows(words, declaration))), *_body(words)]


def _vn_date(value: date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def _heading(words: FormWords, receipt: str) -> list[Block]:
    return [
        ("right", 10.5, words("form_number")),
        ("center", 10.5, words("nation")),
        ("center", 10.5, words("motto")),
        ("gap", 2),
        ("center", 15, words("heading")),
        ("center", 10.5, words("subject")),
        ("gap", 2),
        (
            "runs",
            ((False, words("receipt")), (True, " " + receipt), (False, " " + words("declared_on"))),
            "C",
        ),
        ("gap", 1),
        ("runs", ((True, words("addressee")), (False, " " + words("agency"))), "L"),
        ("gap", 1),
    ]


def _rows(words: FormWords, d: Declaration) -> list[tuple[str, str]]:
    child = d.kind == "child"
    rows = [("child_name" if child else "name", d.full_name), ("code", d.social_insurance_code)]
    if child and d.date_of_birth:
        rows.append(("birth_date", _vn_date(d.date_of_birth)))
    if child and d.relationship:
        rows.append(("relationship", words(f"relationships.{d.relationship}")))
    if child:
        rows.append(("guardian_name", d.guardian_full_name or ""))
        rows.append(("guardian_code", d.guardian_social_insurance_code or ""))
    if d.id_kind and d.id_number:
        rows += [("id_kind", words(f"id_kinds.{d.id_kind}")), ("id_number", d.id_number)]
    elif child:
        rows.append(("papers", words("birth_certificate")))
    rows.append(("address", f"{d.address.street}, {d.address.ward}, {d.address.province}"))
    if not child:
        rows.append(("contact", d.full_name))
    rows.append(("phone", d.phone))
    if d.email:
        rows.append(("email", d.email))
    return [(words(f"labels.{key}") + ":", unicodedata.normalize("NFC", value)) for key, value in rows]


def _body(words: FormWords) -> list[Block]:
    agency = words.context["agency"]
    receiving = [(True, words("receiving_agency")), (False, " " + words("agency"))]
    if agency["phone"]:
        receiving.append((False, "\n" + words("agency_phone")))
    if agency["address"]:
        receiving.append((False, "\n" + words("agency_address")))
    signature = [(False, words("place_and_date")), (True, words("signer")), (False, words("how_to_sign"))]
    if words.context["child"]:
        signature.append((False, words("signer_of_a_child")))
    instructions = (words.render(item) for item in _catalog()["instructions"])
    return [
        ("gap", 2),
        ("para", words("nd166")),
        ("gap", 2),
        ("para", words("registers_from")),
        ("para", words("registers_at")),
        ("gap", 2),
        ("runs", tuple(receiving), "L"),
        ("gap", 2),
        ("para", words("commitment")),
        ("gap", 2),
        ("sign", tuple(signature)),
        ("gap", 14),
        ("list", words("instructions_heading"), tuple(item for item in instructions if item)),
    ]


# What a Tờ khai can contain: ASCII, Latin-1, every Vietnamese letter (precomposed, plus the
# five tone marks for the odd decomposed one), punctuation, the đồng sign. DejaVu covers
# thousands of glyphs more (Greek, Cyrillic, symbols); cut down to this set once, a font is
# small enough (about 33 KB) for every document to embed all of it, made once per process
# (bot/pdf_fonts.py). A text with a character outside this set uses the full fonts, cut
# down by fpdf2 to the glyphs that document uses.
_COVERED = frozenset(
    [
        *range(0x20, 0x7F),
        *range(0xA0, 0x100),
        *(0x102, 0x103, 0x110, 0x111, 0x128, 0x129, 0x168, 0x169, 0x1A0, 0x1A1, 0x1AF, 0x1B0),
        *(0x300, 0x301, 0x303, 0x309, 0x323),
        *range(0x1EA0, 0x1EFA),
        *range(0x2010, 0x2027),
        *(0x2030, 0x2039, 0x203A, 0x20AB, 0x20AC, 0x2116, 0x2122),
    ]
)
_PRINTABLE = frozenset(chr(code) for code in _COVERED) | set("\n\r\t")
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


def _fonts_for(form: list[Block], cache_dir: Path) -> dict[str, Any]:
    """fpdf2 fonts for the form: the small ones shared by every document of the process
    (bot/pdf_fonts.py), or, for a text they cannot print, fresh copies of the full ones."""
    from bot import pdf_fonts

    if set(_text_of(form)) <= _PRINTABLE:
        return pdf_fonts.shared_fonts(FONT_FAMILY, tuple(_small_fonts(cache_dir).items()))
    full = tuple((style, FONTS_DIR / name) for style, name in _FONT_FILES.items())
    return {style: pdf_fonts.fresh_copy(font) for style, font in _parsed_fonts(full).items()}


def _text_of(form: list[Block]) -> str:
    return repr(form)  # every string of the form is in its repr (escapes are ASCII)


def font_cache_dir(fallback: Path) -> Path:
    """Where the cut-down fonts are kept: `fonts/` in the cache dir (bot/disk_cache.py), shared
    by every data dir and process of the user (the suite makes hundreds of data dirs, each
    cut the fonts in about a second), or `fallback` when that cannot be written."""
    shared = disk_cache.cache_dir() / "fonts"
    try:
        private_dir(shared)
    except OSError:
        return fallback
    return shared if os.access(shared, os.W_OK) else fallback


@cache
def _small_fonts(cache_dir: Path) -> dict[str, Path]:
    """The bundled fonts cut down to `_COVERED`, made once per cache dir (and kept there).

    A cut is named by what makes it (the font, the characters, the options, fontTools'
    version), so whoever finds the file finds the same bytes it would cut; processes cutting
    at once each write a whole file (atomically) under the same name."""
    import fontTools
    from fontTools import subset

    fonts: dict[str, Path] = {}
    for style, name in _FONT_FILES.items():
        source = FONTS_DIR / name
        recipe = repr((sorted(_COVERED), "no-layout, no-hinting, glyph names", fontTools.version)).encode()
        digest = hashlib.sha256(source.read_bytes() + recipe).hexdigest()[:16]
        target = cache_dir / f"{source.stem}-vi-{digest}.ttf"
        if not target.is_file():
            options = subset.Options()
            # fpdf2 does no text shaping (it drops GSUB/GPOS itself) and PDF viewers ignore
            # TrueType hinting; glyph names kept spare fpdf2 deriving them on every parse.
            options.layout_features = []
            options.hinting = False
            options.glyph_names = True
            options.drop_tables += ["FFTM", "GSUB", "GPOS", "GDEF", "kern", "hdmx", "gasp"]
            font = subset.load_font(str(source), options)
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=_COVERED)
            subsetter.subset(font)
            buffer = io.BytesIO()
            font.save(buffer)
            write_private(target, buffer.getvalue())
        fonts[style] = target
    return fonts


def warm_up(cache_dir: Path) -> None:
    """What the first document would pay for: fpdf2's import, the fonts cut, parsed, embedded."""
    _fonts_for([], cache_dir)


def layout_pdf(form: list[Block], cache_dir: Path) -> bytes:
    """The PDF of a filled-in Tờ khai (a top-level function: it runs in worker processes)."""
    # fpdf2 takes ~0.3 s to import: only the first rendered declaration pays for it.
    from fpdf import FPDF

    from bot.pdf_fonts import FontReplay, use_fonts

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(18, 12, 18)
    pdf.set_auto_page_break(True, margin=12)
    use_fonts(pdf, FONT_FAMILY, _fonts_for(form, cache_dir))
    # Document metadata stays generic: PDF viewers and mail scanners show it to anyone.
    pdf.set_title(_document_title())
    pdf.set_creator("vssid-bot")
    pdf.add_page()
    for block in form:
        _DRAW[block[0]](pdf, *block[1:])
    return bytes(pdf.output(output_producer_class=FontReplay))


@cache
def _document_title() -> str:
    return FormWords()("document_title")


@cache
def _parsed_fonts(fonts: tuple[tuple[str, Path], ...]) -> dict[str, Any]:
    from fpdf import FPDF

    prototype = FPDF()
    for style, path in fonts:
        prototype.add_font(FONT_FAMILY, style, str(path))
    return {style: prototype.fonts[f"{FONT_FAMILY.lower()}{style}"] for style, _ in fonts}


LINE = 5.2  # mm: 10.5 pt text at about 1.4 line spacing, as the paper form
SIZE = 10.5


def _lines(pdf: Any, text: str, width: float, bold: bool, size: float) -> list[tuple[str, float]]:
    """`text` broken into lines `width` wide, each with its width; the form's fixed sentences
    are broken and measured only once."""
    key = (text, round(width, 2), bold, size)
    lines = _LINE_CACHE.get(key)
    if lines is None:
        pdf.set_font(FONT_FAMILY, "B" if bold else "", size)
        if pdf.get_string_width(text) <= width:
            broken = [text]
        else:
            broken = pdf.multi_cell(width, LINE, text, dry_run=True, output="LINES")
        lines = [(line, pdf.get_string_width(line)) for line in broken]
        if len(_LINE_CACHE) < 512:  # names and addresses vary: keep the cache small
            _LINE_CACHE[key] = lines
    return lines


_LINE_CACHE: dict[tuple[str, float, bool, float], list[tuple[str, float]]] = {}


def _write_lines(
    pdf: Any, text: str, *, x: float, width: float, bold: bool = False, size: float = SIZE, align: str = "L"
) -> None:
    height = LINE * size / SIZE
    lines = _lines(pdf, text, width, bold, size)
    pdf.set_font(FONT_FAMILY, "B" if bold else "", size)
    for line, line_width in lines:
        _put(pdf, line, x=x, width=width, text_width=line_width, height=height, align=align)
        pdf.set_y(pdf.y + height)


def _put(
    pdf: Any, text: str, *, x: float, width: float, text_width: float, height: float, align: str
) -> None:
    """One line in a box `width` wide and `height` high at (x, pdf.y), where fpdf2's `cell`
    would print it, through its much lighter `text` (the form has no borders or links)."""
    if pdf.will_page_break(height):
        pdf.add_page()
    dx = {"L": pdf.c_margin, "C": (width - text_width) / 2, "R": width - pdf.c_margin - text_width}[align]
    if text:
        pdf.text(x + dx, pdf.y + 0.5 * height + 0.3 * pdf.font_size, text)


def _draw_center(pdf: Any, size: float, text: str) -> None:
    _write_lines(pdf, text, x=pdf.l_margin, width=pdf.epw, bold=True, size=size, align="C")


def _draw_right(pdf: Any, size: float, text: str) -> None:
    _write_lines(pdf, text, x=pdf.l_margin, width=pdf.epw, bold=True, size=size, align="R")


def _draw_para(pdf: Any, text: str) -> None:
    _write_lines(pdf, text, x=pdf.l_margin, width=pdf.epw)


def _draw_runs(pdf: Any, runs: tuple[tuple[bool, str], ...], align: str) -> None:
    """Bold and regular runs in one paragraph; a run starting with a newline starts a line."""
    lines: list[list[tuple[bool, str]]] = [[]]
    for bold, text in runs:
        if text.startswith("\n"):
            lines.append([])
            text = text[1:]
        lines[-1].append((bold, text))
    for line in lines:
        widths = []
        for bold, text in line:
            pdf.set_font(FONT_FAMILY, "B" if bold else "", SIZE)
            widths.append(pdf.get_string_width(text))
        if sum(widths) > pdf.epw:  # too long for one line (a long agency name): let fpdf2 wrap it
            pdf.set_x(pdf.l_margin)
            for bold, text in line:
                pdf.set_font(FONT_FAMILY, "B" if bold else "", SIZE)
                pdf.write(LINE, text)
            pdf.ln(LINE)
            continue
        x = pdf.l_margin + {"C": (pdf.epw - sum(widths)) / 2, "L": 0}[align]
        for (bold, text), width in zip(line, widths, strict=True):
            pdf.set_font(FONT_FAMILY, "B" if bold else "", SIZE)
            _put(pdf, text, x=x, width=width, text_width=width, height=LINE, align="L")
            x += width
        pdf.ln(LINE)


def _draw_rows(pdf: Any, rows: tuple[tuple[str, str], ...]) -> None:
    label_width, value_x = pdf.epw * 0.38, pdf.l_margin + pdf.epw * 0.38
    for label, value in rows:
        top = pdf.get_y()
        _write_lines(pdf, label, x=pdf.l_margin, width=label_width)
        below_label = pdf.get_y()
        pdf.set_y(top)
        _write_lines(pdf, value, x=value_x, width=pdf.epw - label_width, bold=True)
        pdf.set_y(max(below_label, pdf.get_y()))


def _draw_sign(pdf: Any, lines: tuple[tuple[bool, str], ...]) -> None:
    x = pdf.l_margin + pdf.epw * 0.45
    for bold, text in lines:
        _write_lines(pdf, text, x=x, width=pdf.epw * 0.55, bold=bold, align="C")


def _draw_list(pdf: Any, heading: str, items: tuple[str, ...]) -> None:
    _write_lines(pdf, heading, x=pdf.l_margin, width=pdf.epw, bold=True)
    indent = 4
    for item in items:
        pdf.set_y(pdf.get_y() + 1)
        pdf.set_font(FONT_FAMILY, "", SIZE)
        _put(pdf, "-", x=pdf.l_margin, width=indent, text_width=0, height=LINE, align="L")
        _write_lines(pdf, item, x=pdf.l_margin + indent, width=pdf.epw - indent)


def _draw_gap(pdf: Any, millimetres: float) -> None:
    pdf.set_y(pdf.get_y() + millimetres)


_DRAW: dict[str, Callable[..., None]] = {
    "center": _draw_center,
    "right": _draw_right,
    "para": _draw_para,
    "runs": _draw_runs,
    "rows": _draw_rows,
    "sign": _draw_sign,
    "list": _draw_list,
    "gap": _draw_gap,
}
