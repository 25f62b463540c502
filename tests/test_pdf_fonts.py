"""The Tờ khai's fonts, embedded once per process and reused by every document, still print
and read back right: each document its own words, whatever was rendered before it."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from fpdf.output import OutputProducer
from pypdf import PdfReader

from bot import pdf_fonts
from bot.cpu import CpuPool
from bot.crypto import open_file
from bot.documents import FONT_FAMILY, PdfDocumentRenderer, _small_fonts, font_cache_dir
from tests.test_documents import AGENCY, TODAY, child, individual, pdf_text


@pytest.fixture
def renderer(tmp_path: Path) -> PdfDocumentRenderer:
    return PdfDocumentRenderer(tmp_path / "documents", today=lambda: TODAY)


def embedded_fonts(path: Path) -> dict[str, int]:
    """Each font of the PDF's page: its name and the size of its embedded font program."""
    page = PdfReader(io.BytesIO(open_file(path))).pages[0]
    fonts = {}
    for font in page["/Resources"]["/Font"].values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        program = descendant["/FontDescriptor"]["/FontFile2"].get_object()
        fonts[str(font.get_object()["/BaseFont"])] = len(program.get_data())
    return fonts


async def test_declarations_after_the_first_read_back_their_own_words(renderer: PdfDocumentRenderer) -> None:
    """The second and third documents reuse the first one's font objects: a wrong glyph
    numbering would print (and extract) other letters than the declared ones."""
    first = pdf_text(await renderer.declaration_pdf("HS-1", individual(), AGENCY))
    second = pdf_text(await renderer.declaration_pdf("HS-2", child(), AGENCY))
    third = pdf_text(
        await renderer.declaration_pdf(
            "HS-3", individual(full_name="Phạm Thị Ngọc Ẩn Ỹ", email=None), {**AGENCY, "address": "Ấp Đồng Ỗ"}
        )
    )

    assert "Đỗ Thị Thu Hường" in first and "Đỗ Minh Khôi" not in first
    assert "Đỗ Minh Khôi" in second and "Mã số BHXH của người giám hộ: 7912345678" in second
    assert "Phạm Thị Ngọc Ẩn Ỹ" in third and "Địa chỉ: Ấp Đồng Ỗ" in third
    assert "Hường" not in third


async def test_both_fonts_are_embedded_in_every_document(renderer: PdfDocumentRenderer) -> None:
    paths = [
        await renderer.declaration_pdf("HS-1", individual(), AGENCY),
        await renderer.declaration_pdf("HS-2", child(), AGENCY),
    ]
    for path in paths:
        fonts = embedded_fonts(path)
        assert sorted(name.split("+")[-1] for name in fonts) == ["DejaVuSansBold", "DejaVuSansBook"]
        assert all(size > 10_000 for size in fonts.values())  # the outlines, not an empty stream


async def test_a_letter_outside_the_small_fonts_prints_and_the_next_document_too(
    renderer: PdfDocumentRenderer,
) -> None:
    """A name with a letter the cut-down fonts lack (here Greek) takes the full fonts; the
    documents around it keep the shared small ones, both correct."""
    before = pdf_text(await renderer.declaration_pdf("HS-1", individual(), AGENCY))
    odd = pdf_text(await renderer.declaration_pdf("HS-2", individual(full_name="Nguyễn Văn Ωmega"), AGENCY))
    after = pdf_text(await renderer.declaration_pdf("HS-3", child(), AGENCY))

    assert "Đỗ Thị Thu Hường" in before
    assert "Nguyễn Văn Ωmega" in odd
    assert "Đỗ Minh Khôi" in after and "Ωmega" not in after


async def test_declarations_rendered_at_the_same_time_each_keep_their_own_text(tmp_path: Path) -> None:
    pool = CpuPool.threads(4)
    renderer = PdfDocumentRenderer(tmp_path / "documents", today=lambda: TODAY, cpu=pool)
    names = ["Đỗ Thị Thu Hường", "Lê Văn Ấn", "Trần Ngọc Ỷ", "Võ Thị Ướt", "Hồ Quốc Đạt", "Bùi Ỳ Ẽ"]
    try:
        paths = await asyncio.gather(
            *(
                renderer.declaration_pdf(f"HS-{n}", individual(full_name=name), AGENCY)
                for n, name in enumerate(names)
            )
        )
    finally:
        await pool.close()
    for path, name in zip(paths, names, strict=True):
        text = pdf_text(path)
        assert name in text and all(other not in text for other in names if other != name)


def test_the_replayed_fonts_are_byte_for_byte_what_fpdf2_writes(tmp_path: Path) -> None:
    """bot/pdf_fonts.py copies fpdf2's font objects instead of letting fpdf2 make them again:
    if a new fpdf2 writes fonts differently, this says so before a citizen's form does."""
    fonts = tuple(_small_fonts(tmp_path).items())
    shared = pdf_fonts.shared_fonts(FONT_FAMILY, fonts)

    def document(fonts: dict, producer: type[OutputProducer]) -> bytes:
        pdf = FPDF()
        pdf.set_creation_date(datetime(2025, 3, 9, tzinfo=UTC))
        pdf_fonts.use_fonts(pdf, FONT_FAMILY, fonts)
        pdf.add_page()
        pdf.set_font(FONT_FAMILY, "", 12)
        pdf.cell(text="Cộng hòa xã hội chủ nghĩa Việt Nam — Độc lập, Tự do, Hạnh phúc")
        pdf.set_font(FONT_FAMILY, "B", 12)
        pdf.cell(text="TỜ KHAI Đỗ Thị Thu Hường 0912345678")
        return bytes(pdf.output(output_producer_class=producer))

    replayed = document(shared, pdf_fonts.FontReplay)
    by_fpdf2 = document({style: pdf_fonts.fresh_copy(font) for style, font in shared.items()}, OutputProducer)
    assert replayed == by_fpdf2
    assert b"/FontFile2" in replayed
    # and again: the recording is copied, never used up
    assert document(shared, pdf_fonts.FontReplay) == replayed


async def test_if_fpdf2_wrote_fonts_differently_documents_are_still_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shortcut is switched off, not broken: fpdf2 cuts the fonts for every document again."""

    def changed(fonts: object) -> list:
        raise RuntimeError("fpdf2 writes fonts in a way bot/pdf_fonts.py does not know")

    monkeypatch.setattr(pdf_fonts, "_record", changed)
    renderer = PdfDocumentRenderer(tmp_path / "documents", today=lambda: TODAY)
    first = pdf_text(await renderer.declaration_pdf("HS-1", individual(), AGENCY))
    second = pdf_text(await renderer.declaration_pdf("HS-2", child(), AGENCY))
    assert "Đỗ Thị Thu Hường" in first and "Đỗ Minh Khôi" in second and "Hường" not in second


def _cut_bytes(fonts: dict[str, Path]) -> dict[str, bytes]:
    return {style: path.read_bytes() for style, path in fonts.items()}


async def test_new_data_dirs_share_the_fonts_cut_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cut fonts are kept in the cache dir, named by what makes them: a second data dir
    (or process) finds them there and cuts nothing."""
    monkeypatch.setenv("VSSID_CACHE_DIR", str(tmp_path / "cache"))
    first = PdfDocumentRenderer(tmp_path / "one" / "documents", today=lambda: TODAY)
    second = PdfDocumentRenderer(tmp_path / "two" / "documents", today=lambda: TODAY)
    assert first.cache_dir == second.cache_dir == tmp_path / "cache" / "fonts"
    kept = _small_fonts.__wrapped__(first.cache_dir)
    made = {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in kept.values()}
    assert _small_fonts.__wrapped__(second.cache_dir) == kept
    assert "Đỗ Minh Khôi" in pdf_text(await second.declaration_pdf("HS-2", child(), AGENCY))
    # Written once: a cut written again would be a new file (written aside, then renamed).
    assert {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in kept.values()} == made
    assert not (tmp_path / "two" / "cache").exists()  # nothing cut into the data dir


def test_a_kept_cut_is_byte_for_byte_a_fresh_one_even_cut_by_several_at_once(tmp_path: Path) -> None:
    """Sharing by name is sound only if cutting is deterministic; writers racing each leave a
    whole file (written aside, then renamed)."""
    fresh = _cut_bytes(_small_fonts.__wrapped__(tmp_path / "alone"))
    results: list[dict[str, bytes]] = []
    start = threading.Barrier(4)

    def cut() -> None:
        start.wait()
        results.append(_cut_bytes(_small_fonts.__wrapped__(tmp_path / "shared")))

    threads = [threading.Thread(target=cut) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [fresh] * 4
    assert sorted(path.name for path in (tmp_path / "shared").iterdir()) == sorted(
        path.name for path in (tmp_path / "alone").iterdir()
    )  # no temporary file left behind


def test_fonts_are_kept_in_the_data_dir_when_the_cache_dir_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("VSSID_CACHE_DIR", str(tmp_path / "not-a-dir" / "cache"))
    fallback = tmp_path / "data" / "cache" / "fonts"
    assert font_cache_dir(fallback) == fallback
    renderer = PdfDocumentRenderer(tmp_path / "data" / "documents", today=lambda: TODAY)
    assert renderer.cache_dir == fallback
