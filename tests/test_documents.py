"""The Tờ khai PDF a citizen prints: their data in correct Vietnamese, the legal text, what to do next."""

from __future__ import annotations

import io
import stat
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from bot.crypto import open_file
from bot.documents import PdfDocumentRenderer, layout_pdf
from dialogs.ports import Address, Declaration

TODAY = date(2025, 3, 9)

ND166 = (
    "Theo Nghị định số 166/2016/NĐ-CP ngày 24 tháng 12 năm 2016 của Chính phủ, cơ quan/cá nhân tôi có đủ "
    "các điều kiện sử dụng phương thức giao dịch điện tử. Cơ quan/cá nhân tôi đăng ký, điều chỉnh thông tin "
    "và ngừng sử dụng phương thức giao dịch điện tử trong lĩnh vực bảo hiểm xã hội với cơ quan Bảo hiểm xã "
    "hội như sau:"
)
INDIVIDUAL_COMMITMENT = (
    "Cơ quan/cá nhân tôi cam kết hoàn toàn chịu trách nhiệm trước pháp luật về tính chính xác, trung thực "
    "của nội dung nêu trên và thực hiện giao dịch điện tử trong lĩnh vực bảo hiểm xã hội theo đúng quy định "
    "của pháp luật."
)
CHILD_COMMITMENT = (
    "Cá nhân tôi cam kết hoàn toàn chịu trách nhiệm trước pháp luật về tính chính xác, trung thực của nội "
    "dung đăng ký nêu trên và thực hiện giao dịch điện tử trong lĩnh vực bảo hiểm xã hội theo đúng quy định "
    "của pháp luật."
)
AGENCY = {"code": "07919", "name": "BHXH Quận 7", "phone": "(028) 37850110", "address": None}


def individual(**changes: object) -> Declaration:
    values: dict = {
        "social_insurance_code": "7912345678",
        "full_name": "Đỗ Thị Thu Hường",
        "id_kind": "cccd",
        "id_number": "079303001122",
        "phone": "0912345678",
        "email": "thuhuong@example.org",
        "address": Address(
            province_code=79,
            province="Thành phố Hồ Chí Minh",
            ward_code=27001,
            ward="Phường Tân Hưng",
            street="Số 12 Đường Số 7",
        ),
        "agency_code": "07919",
    }
    values.update(changes)
    return Declaration(**values)


def child() -> Declaration:
    return individual(
        kind="child",
        social_insurance_code="7998765432",
        full_name="Đỗ Minh Khôi",
        id_kind=None,
        id_number=None,
        email=None,
        date_of_birth=date(2015, 9, 5),
        relationship="con_nuoi",
        guardian_social_insurance_code="7912345678",
        guardian_full_name="Đỗ Thị Lan",
    )


def pdf_text(path: Path) -> str:
    """All text of the PDF with line breaks folded, as a reader would see it (opened the way
    the channels open a sealed one)."""
    reader = PdfReader(io.BytesIO(open_file(path)))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


@pytest.fixture
def renderer(tmp_path: Path) -> PdfDocumentRenderer:
    return PdfDocumentRenderer(tmp_path / "documents", today=lambda: TODAY)


async def test_an_individual_declaration_reads_back_in_vietnamese(renderer: PdfDocumentRenderer) -> None:
    path = await renderer.declaration_pdf("HS-2025-000123", individual(), AGENCY)
    text = pdf_text(path)

    assert "TỜ KHAI" in text and "Mẫu số 01" in text
    assert (
        "Đăng ký sử dụng, điều chỉnh thông tin và ngừng sử dụng phương thức giao dịch điện tử "
        "trong lĩnh vực bảo hiểm xã hội" in text
    )
    assert "HS-2025-000123" in text and "09/03/2025" in text
    for declared in (
        "Đỗ Thị Thu Hường",
        "7912345678",
        "Căn cước công dân (CCCD)",
        "079303001122",
        "Số 12 Đường Số 7, Phường Tân Hưng, Thành phố Hồ Chí Minh",
        "0912345678",
        "thuhuong@example.org",
    ):
        assert declared in text
    assert ND166 in text
    assert "từ ngày 09 tháng 03 năm 2025" in text
    assert INDIVIDUAL_COMMITMENT in text
    assert "Bảo hiểm xã hội Việt Nam" in text


async def test_it_names_the_agency_and_says_what_to_do_next(renderer: PdfDocumentRenderer) -> None:
    text = pdf_text(await renderer.declaration_pdf("HS-1", individual(), AGENCY))

    assert "[07919] BHXH Quận 7" in text and "(028) 37850110" in text
    assert "Người kê khai" in text and "(Ký, ghi rõ họ tên)" in text
    assert "In tờ khai này, ký và ghi rõ họ tên" in text
    assert "Trong vòng 10 ngày" in text and "bản chính CCCD/CMND/Hộ chiếu" in text
    assert "nộp tờ khai cho công ty" in text  # employees may hand it to their employer


async def test_unknown_agency_phone_and_address_are_left_out_not_invented(
    renderer: PdfDocumentRenderer,
) -> None:
    bare = {"code": "079", "name": "BHXH Thành phố Hồ Chí Minh", "phone": None, "address": None}
    text = pdf_text(await renderer.declaration_pdf("HS-2", individual(email=None), bare))
    assert "[079] BHXH Thành phố Hồ Chí Minh" in text
    assert "Số điện thoại:" not in text and "None" not in text
    assert "Địa chỉ thư điện tử" not in text  # no email given, no empty line for it

    with_address = {**bare, "address": "Số 117C Nguyễn Đình Chính"}
    assert "Địa chỉ: Số 117C Nguyễn Đình Chính" in pdf_text(
        await renderer.declaration_pdf("HS-3", individual(), with_address)
    )


async def test_markup_in_a_name_is_printed_literally(renderer: PdfDocumentRenderer) -> None:
    text = pdf_text(
        await renderer.declaration_pdf("HS-4", individual(full_name="Lê <b>Văn</b> & An"), AGENCY)
    )
    assert "Lê <b>Văn</b> & An" in text
    assert "&amp;" not in text


async def test_a_child_declaration_carries_the_guardian_and_the_child_commitment(
    renderer: PdfDocumentRenderer,
) -> None:
    text = pdf_text(await renderer.declaration_pdf("HS-5", child(), AGENCY))

    assert "Đỗ Minh Khôi" in text and "7998765432" in text
    assert "05/09/2015" in text
    assert "Con nuôi" in text
    assert "Mã số BHXH của người giám hộ: 7912345678" in text
    assert "Họ và tên cha, mẹ hoặc người giám hộ: Đỗ Thị Lan" in text
    assert "Giấy khai sinh" in text
    assert CHILD_COMMITMENT in text and INDIVIDUAL_COMMITMENT not in text
    assert "cha, mẹ hoặc người giám hộ" in text
    assert "Trong vòng 10 ngày" in text
    assert "nộp tờ khai cho công ty" not in text  # the employer path is for employees


async def test_the_file_is_private_and_named_by_receipt_only(
    renderer: PdfDocumentRenderer, tmp_path: Path
) -> None:
    path = await renderer.declaration_pdf("HS/2025/000123", individual(), AGENCY)

    assert path.parent == tmp_path / "documents"
    assert path.name == "to-khai-HS_2025_000123.pdf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"DejaVuSans" in data  # the bundled font is embedded: prints the same everywhere
    metadata = PdfReader(path).metadata or {}
    assert metadata.get("/Title") == "Tờ khai Mẫu số 01"  # viewers show metadata: nothing personal
    assert not any("Hường" in str(value) or "0912345678" in str(value) for value in metadata.values())

    again = await renderer.declaration_pdf("HS/2025/000123", individual(full_name="Đỗ Thị Thu Hà"), AGENCY)
    assert again == path and "Đỗ Thị Thu Hà" in pdf_text(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


async def test_a_receipt_without_usable_characters_is_refused(renderer: PdfDocumentRenderer) -> None:
    with pytest.raises(ValueError):
        await renderer.declaration_pdf("../..", individual(), AGENCY)


@pytest.mark.parametrize("kind", ["individual", "child"])
async def test_the_longest_declaration_still_prints_on_one_sheet(
    renderer: PdfDocumentRenderer, kind: str
) -> None:
    declaration = (
        child()
        if kind == "child"
        else individual(
            full_name="Nguyễn Thị Phương Thảo Nguyên", email="a.very.long.email.address@example.org"
        )
    )
    agency = {
        **AGENCY,
        "address": "Tòa nhà số 5, khu tái định cư, phố Phú Kiều, phường Phúc Kiến, Thành phố Hà Nội",
    }
    path = await renderer.declaration_pdf("HS-6", declaration, agency)
    assert len(PdfReader(path).pages) == 1


def test_a_form_longer_than_a_sheet_goes_on_to_the_next_one(renderer: PdfDocumentRenderer) -> None:
    """Nothing runs off the bottom of the paper: the layout turns the page like a printer would."""
    form = renderer.declaration_form("HS-7", individual(), AGENCY)
    reader = PdfReader(io.BytesIO(layout_pdf(form * 3, renderer.cache_dir)))

    assert len(reader.pages) == 3
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert text.count(ND166) == 3 and text.count(INDIVIDUAL_COMMITMENT) == 3
    assert text.count("Trong vòng 10 ngày") == 3  # the last lines of each copy too
