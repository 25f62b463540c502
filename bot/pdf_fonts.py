"""The Tờ khai's fonts embedded once per process instead of once per document.

fpdf2 numbers a font's glyphs in the order a document first uses them and, when it writes
the file, cuts the font down to those glyphs with fontTools and builds the font's PDF
objects (the font program, its width and Unicode tables) — about two thirds of a
document's time, spent again on every Tờ khai although the fonts never change.

Here the glyphs of the (already small, see bot/documents.py) fonts are numbered once, all
of them, in Unicode order: every document then uses the same codes, so the font objects
fpdf2 builds are the same for every document. They are built once, by fpdf2 itself
(`_record`), and each document gets copies of them (`FontReplay`), through fpdf2's public
`output(output_producer_class=...)` hook. What this leans on of fpdf2's internals stays in
this module (the producer's `_add_fonts` and `_add_pdf_obj`, `FPDF.fonts`, a font's
`glyph_ids` and `subset`, how its PDF objects link to each other): fpdf2 is pinned to 2.8.x,
tests/test_pdf_fonts.py compares the copies byte for byte with fpdf2's own output, and
should fpdf2 write fonts in a way `_recorded` does not know, it is used the usual way.

The numbered fonts are shared by every document of the process, never copied or changed
(their codes are all taken, so fpdf2 has nothing to add while laying a document out), so a
font is parsed once per process; the CPU pool's warm-up does it before the first document.
"""

from __future__ import annotations

import copy
import io
import logging
import threading
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.output import OutputProducer, PDFExtGState, PDFFont, PDFType3Font, PDFXObject
from fpdf.pattern import Pattern
from fpdf.syntax import PDFArray, PDFObject

log = logging.getLogger(__name__)

FontSet = tuple[tuple[str, Path], ...]  # (style, font file) pairs: ("", regular), ("B", bold)


class FontReplay(OutputProducer):
    """fpdf2's output, with the shared fonts' objects copied from the recording instead of
    cutting the fonts down again. Documents using any other font are written by fpdf2 as
    usual (and recorded, when `recording` is a list: see `_record`)."""

    recording: ClassVar[list[list[PDFObject]] | None] = None

    def _add_fonts(
        self,
        image_objects_per_index: dict[int, PDFXObject],
        gfxstate_objs_per_name: dict[str, PDFExtGState],
        pattern_objs_per_name: dict[str, Pattern],
    ) -> dict[int, PDFFont | PDFType3Font]:
        fonts = _fonts_of(self.fpdf)
        known = [_RECORDINGS.get(id(font), (None, [])) for font in fonts]
        if fonts and all(kept is font for (kept, _), font in zip(known, fonts, strict=True)):
            return {font.i: _replay(self, objects) for (_, objects), font in zip(known, fonts, strict=True)}
        start = len(self.pdf_objs)
        made = super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        if self.recording is not None:
            self.recording[:] = _recorded([made[font.i] for font in fonts], self.pdf_objs[start:])
        return made


# id(shared font) -> (the font, the PDF objects fpdf2 made for it, its font dictionary first).
# The font is kept here too: alive, its id cannot pass to another object.
_RECORDINGS: dict[int, tuple[Any, list[PDFObject]]] = {}
_LOCK = threading.Lock()


def _fonts_of(pdf: Any) -> list[Any]:
    return sorted(pdf.fonts.values(), key=lambda font: font.i)


def shared_fonts(family: str, fonts: FontSet) -> dict[str, Any]:
    """fpdf2's font objects for `fonts`, every glyph numbered, their PDF objects recorded.

    Give them to a document with `use_fonts`; write it with `output_producer_class=FontReplay`."""
    with _LOCK:  # documents laid out in threads: made once all the same
        shared = _shared_fonts(family, fonts)
    if any(_RECORDINGS.get(id(font), (None,))[0] is not font for font in shared.values()):
        return {style: fresh_copy(font) for style, font in shared.items()}  # fpdf2's usual way
    return shared


@cache
def _shared_fonts(family: str, fonts: FontSet) -> dict[str, Any]:
    prototype = FPDF()
    for style, path in fonts:
        prototype.add_font(family, style, str(path))
    shared: dict[str, Any] = {style: prototype.fonts[f"{family.lower()}{style}"] for style, _ in fonts}
    for font in shared.values():
        for code in sorted(font.glyph_ids):  # every glyph the font maps, in Unicode order
            font.subset.pick(code)
    try:
        recorded = _record(shared.values())
    except RuntimeError:  # a newer fpdf2 (tests/test_pdf_fonts.py says so): slower, still right
        log.exception("PDF fonts are cut down for every document again")
        return shared
    for font, objects in zip(shared.values(), recorded, strict=True):
        _RECORDINGS[id(font)] = (font, objects)
    return shared


def use_fonts(pdf: Any, family: str, fonts: dict[str, Any]) -> None:
    """Make `fonts` (from `shared_fonts` or fresh copies) `family`'s styles in `pdf`."""
    for style, font in fonts.items():
        pdf.fonts[f"{family.lower()}{style}"] = font


def fresh_copy(font: Any) -> Any:
    """A font fpdf2 may cut down and close while writing one document (the usual way)."""
    clone = copy.deepcopy(font)
    clone.ttfont = TTFont(io.BytesIO(Path(font.ttffile).read_bytes()), recalcTimestamp=False, lazy=True)
    # The outlines are the bundled fonts' own, bounding boxes included: recomputing them means
    # decoding every embedded glyph again.
    clone.ttfont.recalcBBoxes = False
    clone.desc = copy.copy(font.desc)  # fpdf2 names and numbers it while writing
    return clone


def _record(fonts: Iterable[Any]) -> list[list[PDFObject]]:
    """fpdf2's own PDF objects for `fonts` (written once into a blank document)."""
    pdf = FPDF()
    use_fonts(pdf, "recorded", {str(n): fresh_copy(font) for n, font in enumerate(fonts)})
    pdf.add_page()

    class Recorder(FontReplay):
        recording: ClassVar[list[list[PDFObject]] | None] = []

    pdf.output(output_producer_class=Recorder)
    return Recorder.recording or []


def _recorded(font_dicts: list[PDFObject], written: Sequence[object]) -> list[list[PDFObject]]:
    """Each font's objects, checked to be exactly the objects fpdf2 wrote for the fonts."""
    recorded = [_replayable(font_dict) for font_dict in font_dicts]
    reachable = [obj for objects in recorded for obj in objects]
    if len(reachable) != len(written) or any(all(obj is not w for w in written) for obj in reachable):
        raise RuntimeError("fpdf2 writes fonts in a way bot/pdf_fonts.py does not know")
    return recorded


def _replayable(font_dict: PDFObject) -> list[PDFObject]:
    """The objects of one font, its dictionary first, as fpdf2 2.8 links them: attributes
    holding the objects themselves or PDF arrays of them."""
    mine = [font_dict]
    for obj in mine:  # grows while walking: everything reachable from the font dictionary
        for value in vars(obj).values():
            for linked in value if isinstance(value, PDFArray) else [value]:
                if isinstance(linked, PDFObject) and all(linked is not seen for seen in mine):
                    mine.append(linked)
    return mine


def _replay(producer: OutputProducer, objects: list[PDFObject]) -> Any:
    """Copies of one font's recorded objects, linked to each other, added to this document."""
    copies = {id(obj): copy.copy(obj) for obj in objects}
    for clone in copies.values():
        for key, value in vars(clone).items():
            if isinstance(value, PDFArray):
                setattr(clone, key, PDFArray([copies.get(id(item), item) for item in value]))
            elif id(value) in copies:
                setattr(clone, key, copies[id(value)])
        producer._add_pdf_obj(clone, "fonts")
    return copies[id(objects[0])]
