"""Reading a card's QR in phone photos (bot/cardscan.py): the real decoding path, on synthetic
cards pasted small, tilted, soft, glared and saved as low-quality JPEGs (tests/cardgen.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.cardscan import read_card_qr, read_card_qr_async
from bot.photos import FilePhotoStore
from dialogs.ports import PhotoRejected
from knowledge.cards import BhytCard, CccdCard
from tests import cardgen, imagegen

HUNG = cardgen.person("Đặng Văn Hùng")
KHANG = cardgen.person("Lê Minh Khang")


@pytest.fixture(scope="module")
def cccd_card() -> Image.Image:
    return cardgen.card(cardgen.cccd_payload(HUNG))


@pytest.fixture(scope="module")
def bhyt_card() -> Image.Image:
    return cardgen.card(cardgen.bhyt_payload(KHANG), kind="bhyt")


# The envelope a parent's phone photo is held to: the card a third of the frame or more,
# tilted up to 30 degrees either way, lens blur up to about a third of a QR module, a lamp's
# reflection, JPEG quality 60, 12 MP. (A module is 4.2 px when the card is 30 % of 4000 px.)
CCCD_PHOTOS = [
    pytest.param(0.3, -30, 1.5, True, id="small-tilted-left-soft-glare"),
    pytest.param(0.3, 30, 0.0, False, id="small-tilted-right"),
    pytest.param(0.45, 18, 2.0, True, id="medium-soft-glare"),
    pytest.param(0.7, -12, 3.5, True, id="large-blurred-glare"),
    pytest.param(0.9, 0, 4.0, False, id="filling-the-frame-blurred"),
]


@pytest.mark.parametrize(("fraction", "angle", "blur", "glare"), CCCD_PHOTOS)
def test_the_cccd_qr_is_read_in_a_phone_photo(cccd_card, fraction, angle, blur, glare) -> None:
    photo = cardgen.phone_photo(cccd_card, card_fraction=fraction, angle=angle, blur=blur, glare=glare)
    read = read_card_qr(photo)
    assert isinstance(read.card, CccdCard)
    assert read.card.id_number == HUNG["id_number"]
    assert read.card.full_name == "Đặng Văn Hùng"


@pytest.mark.parametrize(
    ("fraction", "angle", "blur"), [(0.3, 25, 1.5), (0.6, -30, 3.0)], ids=["small-tilted", "tilted-blurred"]
)
def test_the_bhyt_qr_is_read_in_a_phone_photo(bhyt_card, fraction, angle, blur) -> None:
    photo = cardgen.phone_photo(bhyt_card, card_fraction=fraction, angle=angle, blur=blur, glare=True, seed=9)
    read = read_card_qr(photo)
    assert isinstance(read.card, BhytCard)
    assert (read.card.social_insurance_code, read.card.full_name) == ("7999000201", "Lê Minh Khang")


async def test_a_messenger_sized_photo_is_read_too(cccd_card) -> None:
    """Telegram and Zalo shrink photos to about 1280 px: the QR is then read at that size."""
    photo = cardgen.phone_photo(
        cccd_card, card_fraction=0.55, angle=-20, blur=0.8, size=(1280, 960), quality=75
    )
    read = await read_card_qr_async(photo)
    assert isinstance(read.card, CccdCard)


def test_a_card_without_qr_and_another_qr_are_told_apart() -> None:
    blank = read_card_qr(cardgen.phone_photo(cardgen.blank_card(), card_fraction=0.6, angle=5))
    assert blank.card is None and not blank.found_qr
    link = cardgen.card("https://example.org/khong-phai-the")
    other = read_card_qr(cardgen.phone_photo(link, card_fraction=0.6, angle=-8))
    assert other.card is None and other.other_qr and other.error is None


def test_a_card_whose_qr_is_malformed_reports_why() -> None:
    bad_hex = "HS4797999000201|c328|03/09/2015|1|48|01 - 001|01/01/2026|$"
    read = read_card_qr(cardgen.phone_photo(cardgen.card(bad_hex, kind="bhyt"), card_fraction=0.6, angle=12))
    assert read.card is None and read.error is not None
    assert (read.error.kind, read.error.code) == ("bhyt", "bad_hex")


async def test_the_id_front_photo_carries_its_qr_and_a_bhyt_photo_is_read_without_being_kept(
    tmp_path: Path, cccd_card, bhyt_card
) -> None:
    store = FilePhotoStore(tmp_path / "uploads")
    front = await store.store("u1", "id_front", cardgen.phone_photo(cccd_card, card_fraction=0.5, angle=10))
    assert front.id_number_on_card == HUNG["id_number"]
    assert front.qr_texts == [cardgen.cccd_payload(HUNG)]

    texts = await store.read_qr(cardgen.phone_photo(bhyt_card, card_fraction=0.5, angle=-10))
    assert texts == [cardgen.bhyt_payload(KHANG)]
    assert [p.name for p in (tmp_path / "uploads").rglob("*.jpg")] == [Path(front.path).name]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (imagegen.not_an_image(), "not_image"),
        (imagegen.tiny_jpeg(), "too_small"),
        (imagegen.png_with_header_size(20_000, 20_000), "too_large"),
        (imagegen.truncated_jpeg(), "truncated"),
    ],
    ids=["pdf", "tiny", "bomb-header", "truncated"],
)
async def test_a_card_photo_that_is_no_usable_picture_is_refused(
    tmp_path: Path, data: bytes, code: str
) -> None:
    store = FilePhotoStore(tmp_path / "uploads")
    with pytest.raises(PhotoRejected) as caught:
        await store.read_qr(data)
    assert caught.value.code == code


def test_a_card_photo_never_costs_a_full_size_decode() -> None:
    """The reader asks libjpeg for a reduced decode: a 12 MP JPEG is read at 2000 x 1500."""
    from bot.cardscan import _working_image

    photo = imagegen.encode(Image.new("RGB", (4000, 3000), (200, 200, 200)), quality=60)
    assert _working_image(photo).size == (2000, 1500)
    assert _working_image(Image.open(io.BytesIO(photo))).size == (2000, 1500)
