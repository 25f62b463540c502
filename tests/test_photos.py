"""The photo a citizen sends is either kept as a clean JPEG or refused with a reason they can act on."""

from __future__ import annotations

import io
import stat
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from bot.photos import (
    PHOTO_ERROR_CODES,
    FilePhotoStore,
    parse_cccd_qr,
    read_cccd_qr,
    read_cccd_qr_async,
    sharpness,
)
from dialogs.ports import PhotoRejected
from tests import imagegen

OWNER = "telegram:5550001234"


@pytest.fixture
def store(tmp_path: Path) -> FilePhotoStore:
    return FilePhotoStore(tmp_path / "uploads")


async def refused(store: FilePhotoStore, data: bytes, kind: str = "id_front") -> PhotoRejected:
    with pytest.raises(PhotoRejected) as info:
        await store.store(OWNER, kind, data)
    assert info.value.code in PHOTO_ERROR_CODES, "every code needs a Vietnamese explanation"
    return info.value


def assert_private_jpeg(path: Path, kind: str, size: tuple[int, int]) -> None:
    assert path.is_file() and path.name.startswith(f"{kind}-") and path.suffix == ".jpg"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # other local users cannot read ID photos
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == size


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


async def test_a_sharp_id_photo_is_kept_as_a_private_jpeg(store: FilePhotoStore) -> None:
    photo = await store.store(OWNER, "id_front", imagegen.sharp_document_jpeg(1600, 1000))

    assert (photo.width, photo.height) == (1600, 1000)
    assert_private_jpeg(Path(photo.path), "id_front", (1600, 1000))
    # The owner id is personal data: it must not appear in any path.
    assert "5550001234" not in photo.path and "telegram" not in photo.path


async def test_a_noisy_eight_megapixel_phone_photo_is_accepted(store: FilePhotoStore) -> None:
    data = imagegen.encode(imagegen.phone_photo(3264, 2448), quality=88)
    photo = await store.store(OWNER, "id_back", data)
    assert (photo.width, photo.height) == (3264, 2448)


async def test_a_plain_background_portrait_is_accepted(store: FilePhotoStore) -> None:
    photo = await store.store(OWNER, "portrait", imagegen.encode(imagegen.portrait_image()))
    assert (photo.width, photo.height) == (900, 1200)


async def test_a_blurred_id_photo_is_refused_as_blurry(store: FilePhotoStore) -> None:
    rejected = await refused(store, imagegen.blurred_document_jpeg(radius=6))
    assert rejected.code == "blurry"
    assert rejected.params["score"] < rejected.params["min"]
    assert stored_files(store.root) == []


async def test_a_blurred_noisy_phone_photo_is_refused_as_blurry(store: FilePhotoStore) -> None:
    smeared = imagegen.blurred(imagegen.phone_photo(2400, 1800), 5)
    noisy = Image.blend(smeared, imagegen.noise_layer(smeared.size, 30), 0.1)
    assert (await refused(store, imagegen.encode(noisy))).code == "blurry"


def test_sharpness_separates_sharp_from_blurred_documents() -> None:
    card = imagegen.document_image()
    assert sharpness(card) > 10 * sharpness(imagegen.blurred(card, 4))


async def test_a_small_photo_is_refused_with_its_size(store: FilePhotoStore) -> None:
    rejected = await refused(store, imagegen.tiny_jpeg())
    assert rejected.code == "too_small"
    assert rejected.params == {"width": 400, "height": 300, "min": 600}


async def test_a_sharp_readable_crop_of_a_card_under_600_px_is_accepted(store: FilePhotoStore) -> None:
    """Readability, not a fixed side: a tight, crisp 804x551 crop of a card is legible."""
    photo = await store.store(OWNER, "id_front", imagegen.sharp_document_jpeg(804, 551))
    assert (photo.width, photo.height) == (804, 551)
    png = imagegen.encode(imagegen.document_image(804, 551), "PNG")  # the full-decode path too
    assert (await store.store(OWNER, "id_back", png)).height == 551


async def test_a_small_soft_crop_is_refused_as_too_small(store: FilePhotoStore) -> None:
    """Under the comfortable size a slightly soft picture is no longer legible: ask for a closer one."""
    rejected = await refused(store, imagegen.blurred_document_jpeg(804, 551, radius=2))
    assert rejected.code == "too_small" and rejected.params == {"width": 804, "height": 551, "min": 600}
    assert (await refused(store, imagegen.sharp_document_jpeg(460, 320))).code == "too_small"


async def test_a_truncated_upload_is_refused(store: FilePhotoStore) -> None:
    assert (await refused(store, imagegen.truncated_jpeg())).code == "truncated"


async def test_text_and_pdf_bytes_are_not_images(store: FilePhotoStore) -> None:
    assert (await refused(store, imagegen.not_an_image())).code == "not_image"
    assert (await refused(store, b"")).code == "not_image"


async def test_an_iphone_heic_is_refused_with_the_format_named(store: FilePhotoStore) -> None:
    rejected = await refused(store, imagegen.heic_like())
    assert rejected.code == "unsupported_format" and rejected.params["format"] == "HEIC"


@pytest.mark.parametrize(
    ("width", "height"),
    [(50_000, 50_000), (8_000, 6_000)],  # beyond Pillow's own guard; just above our 40 MP bound
)
async def test_a_decompression_bomb_header_is_refused_before_decoding(
    store: FilePhotoStore, width: int, height: int
) -> None:
    data = imagegen.png_with_header_size(width, height)
    assert len(data) < 200  # decoding it would need gigabytes; refusing must not
    assert (await refused(store, data)).code == "too_large"


async def test_a_real_highly_compressed_giant_png_is_refused(store: FilePhotoStore) -> None:
    data = imagegen.real_png_bomb(8000, 6000)
    with Image.open(io.BytesIO(data)) as bomb:  # the fixture is a real picture of 48 MP
        assert bomb.size == (8000, 6000)
    assert len(data) < 200_000
    rejected = await refused(store, data)
    assert rejected.code == "too_large"
    assert rejected.params["width"] == 8000 and rejected.params["max_megapixels"] == 40


async def test_the_byte_bound_is_checked_first(tmp_path: Path) -> None:
    store = FilePhotoStore(tmp_path, max_bytes=50_000)
    rejected = await refused(store, imagegen.sharp_document_jpeg() + b"\0" * 50_000)
    assert rejected.code == "too_many_bytes"
    # Garbage over the bound is refused for its size, i.e. without being parsed at all.
    assert (await refused(store, b"\0" * 50_001)).code == "too_many_bytes"


async def test_orientation_is_applied_and_gps_and_all_metadata_are_dropped(store: FilePhotoStore) -> None:
    # Landscape pixels with a red mark at the top-left; EXIF 6 says "rotate 90° clockwise to view",
    # which is how phones store portrait shots.
    raw = imagegen.document_image(1200, 800)
    raw.paste((255, 0, 0), (0, 0, 60, 60))
    data = imagegen.jpeg_with_exif(raw, orientation=6, gps=True)
    with Image.open(io.BytesIO(data)) as original:  # the fixture really carries what we strip
        assert original.getexif().get_ifd(imagegen.GPS_IFD)

    photo = await store.store(OWNER, "id_front", data)

    assert (photo.width, photo.height) == (800, 1200)
    stored_bytes = read_bytes(photo.path)
    with Image.open(photo.path) as image:
        assert image.size == (800, 1200)
        red, green, _ = image.getpixel((image.width - 20, 20))  # the mark is now top-right
        assert red > 200 and green < 60
        assert len(image.getexif()) == 0
        assert not {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"} & set(image.info)
    assert b"SyntheticPhone" not in stored_bytes and b"xmpmeta" not in stored_bytes
    assert b"Exif\0\0" not in stored_bytes


async def test_transparent_png_becomes_white_paper_not_black(store: FilePhotoStore) -> None:
    card = imagegen.document_image(1000, 800).convert("RGBA")
    card.paste((0, 0, 0, 0), (0, 0, 1000, 30))  # a fully transparent strip along the top
    photo = await store.store(OWNER, "id_back", imagegen.encode(card, "PNG"))
    with Image.open(photo.path) as image:
        assert min(image.getpixel((500, 10))) > 240


async def test_cmyk_jpeg_is_stored_as_rgb(store: FilePhotoStore) -> None:
    data = imagegen.encode(imagegen.document_image().convert("CMYK"), "JPEG", quality=92)
    photo = await store.store(OWNER, "id_front", data)
    with Image.open(photo.path) as image:
        assert image.mode == "RGB"


async def test_delete_owner_removes_only_that_owners_photos(store: FilePhotoStore) -> None:
    jpeg = imagegen.sharp_document_jpeg()
    mine = await store.store(OWNER, "id_front", jpeg)
    await store.store(OWNER, "id_back", jpeg)
    other = await store.store("telegram:5550009999", "portrait", jpeg)
    assert Path(other.path).parent != Path(mine.path).parent

    assert await store.delete_owner(OWNER) == 2
    assert stored_files(store.root) == [Path(other.path)]
    assert await store.delete_owner(OWNER) == 0


async def test_directory_names_survive_a_restart(tmp_path: Path) -> None:
    await FilePhotoStore(tmp_path).store(OWNER, "portrait", imagegen.sharp_document_jpeg())
    assert len(stored_files(tmp_path)) == 1
    again = FilePhotoStore(tmp_path)  # a new process: the keyed owner hash must be the same
    assert await again.delete_owner(OWNER) == 1
    assert stored_files(tmp_path) == []


async def test_unknown_kind_names_are_a_programming_error(store: FilePhotoStore) -> None:
    with pytest.raises(ValueError):
        await store.store(OWNER, "../etc/passwd", imagegen.sharp_document_jpeg())


# -- CCCD QR -----------------------------------------------------------------------------------

QR_TEXT = "079203001122|271234567|Trần Thị Bích Ngọc|01022003|Nữ|Số 12 Đường Số 7, Phường Tân Hưng, TP Hồ Chí Minh|15062021"


async def test_cccd_qr_is_read_from_a_stored_card_photo(store: FilePhotoStore) -> None:
    data = imagegen.encode(imagegen.card_with_qr(QR_TEXT), quality=90)
    photo = await store.store(OWNER, "id_front", data)

    card = await read_cccd_qr_async(photo.path)

    assert card == {
        "id_number": "079203001122",
        "old_id_number": "271234567",
        "full_name": "Trần Thị Bích Ngọc",
        "date_of_birth": date(2003, 2, 1),
        "gender": "Nữ",
        "address": "Số 12 Đường Số 7, Phường Tân Hưng, TP Hồ Chí Minh",
        "issue_date": date(2021, 6, 15),
    }


async def test_a_photo_without_cccd_qr_gives_none(store: FilePhotoStore) -> None:
    plain = await store.store(OWNER, "id_front", imagegen.sharp_document_jpeg())
    assert read_cccd_qr(plain.path) is None
    other_qr = imagegen.encode(imagegen.card_with_qr("https://example.org/not-a-card"), quality=90)
    assert read_cccd_qr((await store.store(OWNER, "id_front", other_qr)).path) is None


def test_cccd_qr_without_old_number_and_odd_dates() -> None:
    card = parse_cccd_qr("001303009988||Lê Văn Phúc|3113|Nam|Hà Nội|20072022")
    assert card is not None
    assert card["old_id_number"] is None and card["date_of_birth"] is None
    assert card["issue_date"] == date(2022, 7, 20)
    assert parse_cccd_qr("12345|x|y") is None


async def test_an_upright_phone_jpeg_loses_its_metadata_but_not_a_pixel(store: FilePhotoStore) -> None:
    raw = imagegen.phone_photo(2400, 1800)
    data = imagegen.jpeg_with_exif(raw, orientation=1, gps=True)
    with Image.open(io.BytesIO(data)) as original:
        assert original.getexif().get_ifd(imagegen.GPS_IFD)
        pixels = original.convert("RGB").tobytes()

    photo = await store.store(OWNER, "id_back", data + b"trailing bytes after the image")

    assert (photo.width, photo.height) == (2400, 1800)
    stored_bytes = read_bytes(photo.path)
    assert b"Exif\0\0" not in stored_bytes and b"xmpmeta" not in stored_bytes
    assert b"SyntheticPhone" not in stored_bytes and b"trailing bytes" not in stored_bytes
    with Image.open(photo.path) as image:
        assert not {"exif", "xmp", "icc_profile"} & set(image.info)
        assert image.convert("RGB").tobytes() == pixels  # the same picture, not a re-encoded one
