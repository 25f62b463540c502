"""Synthetic cards made at run time: a chip CCCD front and a BHYT card, each with its QR, and the
phone photos a parent takes of them (the card small in a 12 MP frame, tilted, soft, glared,
saved as a low-quality JPEG).

The people are the stub backend's synthetic ones (bot/backend/people.yaml); the QR codes are
drawn by segno. Nothing here is a real card or a real person.
"""

from __future__ import annotations

import io
import random
from datetime import date
from functools import cache
from pathlib import Path

import segno
import yaml
from PIL import Image, ImageDraw, ImageFilter

from tests import imagegen

PEOPLE = Path(__file__).resolve().parent.parent / "bot" / "backend" / "people.yaml"
# ISO/IEC 7810 ID-1: 85.6 x 54 mm; drawn at 20 px/mm.
CARD_SIZE = (1712, 1080)


@cache
def people() -> dict[str, dict]:
    """The synthetic people by full name."""
    data = yaml.safe_load(PEOPLE.read_text(encoding="utf-8"))
    return {p["full_name"]: p for p in data["people"]}


def person(name: str) -> dict:
    return people()[name]


def cccd_payload(
    who: dict,
    address: str = "Số 12 Đường Số 7, Phường Tân Phong, Quận 7, TP Hồ Chí Minh",
    issued: date = date(2021, 6, 15),
    gender: str | None = None,
) -> str:
    born: date = who["date_of_birth"]
    if gender is None:
        gender = "Nữ" if int(who["id_number"][3]) % 2 else "Nam"
    return "|".join(
        [
            who["id_number"],
            "",
            who["full_name"],
            born.strftime("%d%m%Y"),
            gender,
            address,
            issued.strftime("%d%m%Y"),
        ]
    )


def bhyt_payload(
    who: dict, address: str = "Phường Tân Phong, Quận 7, TP Hồ Chí Minh", object_code: str = "HS4"
) -> str:
    """The BHYT card QR: code, hex name, birth date, gender, hex address, clinic, validity, ..., '$'."""
    born: date = who["date_of_birth"]
    code = f"{object_code}{who['social_insurance_code'][:2]}{who['social_insurance_code']}"
    fields = [
        code,
        who["full_name"].encode("utf-8").hex(),
        born.strftime("%d/%m/%Y"),
        "1",
        address.encode("utf-8").hex(),
        "79 - 024",
        "01/01/2026",
        "31/12/2026",
        "01/01/2026",
        f"{code}-01",
        "-",
        "4",
        "01/01/2030",
    ]
    return "|".join(fields) + "|$"


def qr(payload: str, scale: int) -> Image.Image:
    """The QR as a grayscale image with its 4-module quiet zone (segno, byte mode, level M)."""
    code = segno.make(payload, error="m", micro=False, boost_error=False)
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=4)
    return Image.open(io.BytesIO(out.getvalue())).convert("L")


def card(payload: str, *, kind: str = "cccd", seed: int = 7) -> Image.Image:
    """A card-sized picture with rows of text, a photo box and the QR where the card has it."""
    width, height = CARD_SIZE
    picture = imagegen.document_image(width, height, seed=seed)
    # The chip CCCD's QR is in its top right corner, about 17 mm wide; BHYT's on the left.
    side = int(width * (0.2 if kind == "cccd" else 0.24))
    code = qr(payload, 1)
    code = code.resize((side, side), Image.Resampling.NEAREST).convert("RGB")
    x = width - side - width // 30 if kind == "cccd" else width // 30
    picture.paste(code, (x, height // 14))
    return picture


def phone_photo(
    card_image: Image.Image,
    *,
    card_fraction: float = 0.5,
    angle: float = 0.0,
    blur: float = 0.0,
    glare: bool = False,
    quality: int = 60,
    size: tuple[int, int] = (4000, 3000),
    seed: int = 3,
) -> bytes:
    """The card on a table in a phone-sized photo: `card_fraction` of the frame's width, tilted
    by `angle` degrees, lens blur of `blur` px, an optional lamp reflection, JPEG `quality`."""
    rng = random.Random(seed)
    width, height = size
    table = Image.new("RGB", size, (118 + rng.randint(-20, 20), 95, 70))
    # Tilted and softened at the card's own size, then scaled: rotating and blurring 9 MP
    # instead would cost seconds per photo. The blur radius is given at the photo's scale.
    card_w = int(width * card_fraction)
    factor = card_w / card_image.width
    tilted = card_image.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    mask = Image.new("L", card_image.size, 255).rotate(angle, expand=True)
    if blur:
        tilted = tilted.filter(ImageFilter.GaussianBlur(blur / factor))
    target = (round(tilted.width * factor), round(tilted.height * factor))
    tilted = tilted.resize(target, Image.Resampling.BICUBIC)
    mask = mask.resize(target, Image.Resampling.BILINEAR)
    x = rng.randint(0, max(0, width - tilted.width))
    y = rng.randint(0, max(0, height - tilted.height))
    # Only the card's patch gets noise and glare (the table is smooth anyway).
    box = (x, y, x + tilted.width, y + tilted.height)
    patch = table.crop(box)
    patch.paste(tilted, (0, 0), mask)
    if glare:
        _add_glare(patch, (tilted.width * 2 // 3, tilted.height // 4), tilted.width // 4)
    patch = Image.blend(patch, imagegen.noise_layer(patch.size, 10), 0.06)
    table.paste(patch, box[:2])
    return imagegen.encode(table, quality=quality)


def _add_glare(image: Image.Image, centre: tuple[int, int], radius: int) -> None:
    """A lamp's soft white reflection over part of the card (over the QR's corner of a CCCD)."""
    spot = Image.radial_gradient("L").resize((radius * 2, radius * 2))
    strength = spot.point(lambda v: max(0, 200 - v * 200 // 255))  # brightest in the middle
    white = Image.new("RGB", spot.size, (255, 255, 250))
    image.paste(white, (centre[0] - radius, centre[1] - radius), strength)


def blank_card() -> Image.Image:
    """A printed card with no QR at all (older BHYT cards)."""
    picture = imagegen.document_image(*CARD_SIZE, seed=11)
    ImageDraw.Draw(picture).rectangle((60, 60, 300, 300), outline=(40, 40, 40), width=6)
    return picture
