"""Test images made at run time (the repository never holds image files).

Every helper returns encoded bytes, as a chat channel would hand them to the photo store.
The pictures are synthetic: no real person, card or document.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# EXIF tag numbers (TIFF/EXIF spec): Orientation lives in IFD0, GPS data in its own IFD.
ORIENTATION = 0x0112
GPS_IFD = 0x8825
GPS_LATITUDE_REF, GPS_LATITUDE = 1, 2
GPS_LONGITUDE_REF, GPS_LONGITUDE = 3, 4

_FONT_PATH = str(Path(__file__).resolve().parent.parent / "bot" / "fonts" / "DejaVuSans.ttf")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(_FONT_PATH, size)
    except OSError:  # fonts missing: Pillow's own scalable default font still draws text
        return ImageFont.load_default(size)


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def document_image(width: int = 1600, height: int = 1000, *, seed: int = 1) -> Image.Image:
    """A card/form-like picture: a frame, ruled lines, a photo box and rows of dark text."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (236, 240, 232))
    draw = ImageDraw.Draw(image)
    margin = width // 20
    draw.rectangle((margin, margin, width - margin, height - margin), outline=(40, 60, 120), width=4)
    draw.rectangle(
        (margin * 2, margin * 3, margin * 2 + width // 5, margin * 3 + height // 3), fill=(150, 160, 175)
    )
    text_x = margin * 3 + width // 5
    font = _font(max(12, height // 28))
    words = [
        "CĂN",
        "CƯỚC",
        "CÔNG",
        "DÂN",
        "Họ",
        "và",
        "tên",
        "Ngày",
        "sinh",
        "Quê",
        "quán",
        "Số",
        "Nơi",
        "thường",
        "trú",
    ]
    y = margin * 3
    while y < height - margin * 2:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 6)))
        draw.text((text_x, y), line, fill=(20, 20, 30), font=font)
        draw.line(
            (text_x, y + height // 22, width - margin * 2, y + height // 22), fill=(120, 130, 150), width=1
        )
        y += height // 14
    return image


def blurred(image: Image.Image, radius: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def phone_photo(width: int = 4000, height: int = 3000, *, seed: int = 2, noise: int = 6) -> Image.Image:
    """What a phone sends: the card smaller than the frame, on a shaded table, with sensor noise.

    The scene is drawn at 2/3 scale and enlarged (the slight softness of a phone lens); the
    noise is a tiled patch, which is as good as fresh noise for a sharpness check and much
    cheaper to make at 12 MP.
    """
    small = (width * 2 // 3, height * 2 // 3)
    table = Image.linear_gradient("L").resize(small).convert("RGB")
    table = Image.blend(table, Image.new("RGB", small, (120, 90, 60)), 0.6)
    card = document_image(int(small[0] * 0.6), int(small[1] * 0.6), seed=seed)
    table.paste(card, (int(small[0] * 0.2), int(small[1] * 0.2)))
    photo = table.resize((width, height), Image.Resampling.BICUBIC)
    return Image.blend(photo, noise_layer((width, height), noise), 0.08)


def noise_layer(size: tuple[int, int], sigma: int, tile: int = 509) -> Image.Image:
    patch = Image.effect_noise((tile, tile), sigma).convert("RGB")
    layer = Image.new("RGB", size)
    for x in range(0, size[0], tile):
        for y in range(0, size[1], tile):
            layer.paste(patch, (x, y))
    return layer


def portrait_image(width: int = 900, height: int = 1200, *, noise: int = 8) -> Image.Image:
    """A 3x4-style portrait: plain background, a face-like oval with features, a collar."""
    image = Image.new("RGB", (width, height), (205, 215, 230))
    draw = ImageDraw.Draw(image)
    cx, cy = width // 2, height * 2 // 5
    draw.ellipse((cx - width // 4, cy - height // 4, cx + width // 4, cy + height // 5), fill=(225, 185, 160))
    draw.ellipse((cx - width // 4, cy - height // 4, cx + width // 4, cy - height // 10), fill=(35, 30, 30))
    for dx in (-width // 10, width // 10):
        draw.ellipse((cx + dx - 18, cy - 10, cx + dx + 18, cy + 12), fill=(40, 35, 35))
    draw.line(
        (cx - width // 12, cy + height // 10, cx + width // 12, cy + height // 10),
        fill=(150, 70, 70),
        width=6,
    )
    draw.polygon(
        [(0, height), (width, height), (width * 3 // 4, height * 3 // 4), (width // 4, height * 3 // 4)],
        fill=(30, 40, 80),
    )
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    return Image.blend(image, noise_layer((width, height), noise), 0.06)


def sharp_document_jpeg(width: int = 1600, height: int = 1000) -> bytes:
    return encode(document_image(width, height), quality=92)


def blurred_document_jpeg(width: int = 1600, height: int = 1000, radius: float = 6) -> bytes:
    return encode(blurred(document_image(width, height), radius), quality=92)


def tiny_jpeg() -> bytes:
    return encode(document_image(400, 300))


def truncated_jpeg() -> bytes:
    data = sharp_document_jpeg()
    return data[: len(data) // 2]


def _png(width: int, height: int, idat: bytes, color_type: int = 2) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_with_header_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is a few bytes.

    A decoder that trusted the header would allocate width*height*3 bytes: the classic
    decompression bomb. Checks must refuse it from the header alone.
    """
    return _png(width, height, zlib.compress(b"\x00" * 64))


def real_png_bomb(width: int = 8000, height: int = 6000) -> bytes:
    """A complete, decodable all-black grayscale PNG of width x height: a few dozen kilobytes."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one byte per pixel
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return _png(width, height, idat, color_type=0)


def jpeg_with_exif(image: Image.Image, *, orientation: int, gps: bool = True) -> bytes:
    """A JPEG carrying an orientation tag and (by default) a GPS position, like a phone photo."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "SyntheticPhone"  # Make
    if gps:
        exif[GPS_IFD] = {
            GPS_LATITUDE_REF: "N",
            GPS_LATITUDE: (10.0, 43.0, 30.0),
            GPS_LONGITUDE_REF: "E",
            GPS_LONGITUDE: (106.0, 43.0, 12.0),
        }
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    return encode(image, quality=92, exif=exif, xmp=xmp)


def not_an_image() -> bytes:
    return b"%PDF-1.4\n% this is not a picture\n" + b"x" * 2000


def heic_like() -> bytes:
    """The start of an iPhone HEIC file (ftyp box) that Pillow cannot open without a plugin."""
    body = b"heic" + b"\x00\x00\x00\x00" + b"mif1heic"
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 512


def qr_image(text: str, scale: int = 6) -> Image.Image:
    """A QR code (zxing-cpp's writer) as a grayscale Pillow image."""
    import zxingcpp

    matrix = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode).to_image(scale=scale)
    height, width = matrix.shape
    return Image.frombytes("L", (width, height), bytes(memoryview(matrix)))


def card_with_qr(text: str, width: int = 1600, height: int = 1000) -> Image.Image:
    """A chip-CCCD-like front: the card picture with a QR in its top-right corner."""
    card = document_image(width, height, seed=7)
    qr = qr_image(text)
    card.paste(qr.convert("RGB"), (width - qr.width - width // 12, height // 12))
    return card
