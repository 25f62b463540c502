"""Photo checks and storage: the portrait and ID pictures a citizen sends during registration.

An upload is untrusted bytes from a chat. Before anything is kept we make sure it is a
picture an officer can actually use (decodes completely, big enough, sharp enough) and we
refuse anything that could hurt the server (huge byte counts, decompression bombs, exotic
formats with risky decoders). What we keep is a fresh JPEG with the orientation applied
and every piece of metadata dropped: phone photos carry GPS positions, device serials and
timestamps that the social-insurance office does not need.

All Pillow work runs in the CPU pool (`bot.cpu`: worker processes under `vssid-bot run`):
decoding a photo takes milliseconds to tens of them and must not stall the event loop, nor
the threads the I/O calls use.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cpu import CpuPool, default_pool
from bot.crypto import Keyring, open_file
from bot.jpeg import strip_metadata
from bot.private import private_dir, write_private
from dialogs.ports import PhotoRejected, StoredPhoto
from knowledge.cards import cccd_fields

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

log = logging.getLogger(__name__)

# Every code PhotoRejected can carry; the dialog texts must explain each one (with an example
# of a good photo). Params: too_many_bytes(size_mb, max_mb); too_large(max_megapixels,
# width/height when the header could be read); too_small(width, height, min);
# blurry(score, min); unsupported_format(format).
PHOTO_ERROR_CODES: tuple[str, ...] = (
    "too_many_bytes",
    "not_image",
    "unsupported_format",
    "too_large",
    "truncated",
    "too_small",
    "blurry",
)

# Formats a phone or messenger realistically sends. Pillow can open many more (EPS even
# runs Ghostscript), and each extra decoder is attack surface for untrusted uploads.
# (Multi-picture JPEGs from some phones come through the JPEG opener as MPO.)
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# Sharpness = variance of the Laplacian of a grayscale copy scaled to 800 px on its long
# side, after a 3x3 median filter. Scaling (box filter) and the median take out sensor noise
# that would otherwise pass for detail; 800 px keeps the smallest accepted photo
# (600 x 800) at its native scale. Measured on tests/imagegen.py pictures:
#   synthetic card 1600x1000 sharp: 637; Gaussian blur r=1: 441, r=2: 117, r=3: 27,
#   r=4: 7.5, r=6: 1.4 (the same card at 4000x3000, radii x2.5: 489 / 362 / 110 / 27 / 7.7 / 1.4)
#   phone-like 12 MP photo (card on a table, lens softness, sensor noise): 249
#   the same blurred r=8 with strong noise added on top: 6.4
#   smooth synthetic 3x4 portrait (a worst case: few edges) with mild noise: 30;
#   blurred r=4: 0.8; blurred r=4 then strong noise: 11.7
# 15 refuses what is visibly smeared while leaving a wide margin for plain-background
# portraits; an officer looks at every photo anyway, so a borderline case should pass.
DEFAULT_MIN_SHARPNESS = 15.0
_SHARPNESS_SIDE = 800
# Below the comfortable short side (600 px) a photo is judged on readability: a tight crop of
# a card (85.6 x 54 mm) at 804 x 551 has ~9 px per mm, which keeps its 2 mm letters legible
# when the picture is crisp. Such a photo must be well above the blur bar (a sharp synthetic
# card scores several hundred); under READABLE_MIN_SIDE nothing is legible enough.
READABLE_MIN_SIDE = 480
READABLE_SMALL_SHARPNESS = 100.0

# Photos whose QR code is read as they are stored (the chip CCCD's front).
QR_PHOTO_KINDS = ("id_front",)
_KIND = re.compile(r"^[a-z][a-z_]{0,31}$")
_OWNER_KEY_FILE = ".owner-key"


class FilePhotoStore:
    """Checks uploads and keeps them as metadata-free JPEGs under `root/<owner hash>/`."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        min_short_side: int = 600,
        min_sharpness: float = DEFAULT_MIN_SHARPNESS,
        jpeg_quality: int = 90,
        cpu: CpuPool | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.root = Path(root)
        self.cpu = cpu
        # Photos of ID cards are sealed at rest with the data key (bot/crypto.py) when given
        # (always, from the assistant); without one (unit tests of the checks) they stay plain.
        self.keyring = keyring
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.min_short_side = min_short_side
        self.min_sharpness = min_sharpness
        self.jpeg_quality = jpeg_quality
        self._owner_key: bytes | None = None
        self._key_lock = threading.Lock()

    async def store(self, owner: str, kind: str, data: bytes) -> StoredPhoto:
        """Check and store one photo; raises PhotoRejected(code, **params) when it cannot be used."""
        if not _KIND.match(kind):
            raise ValueError(f"photo kind must be a short lowercase name, got {kind!r}")
        self._check_byte_count(kind, data)
        return await self._cpu().run(self._check_and_store, owner, kind, data)

    async def read_qr(self, data: bytes) -> list[str]:
        """The QR texts in a photo that is not kept (a BHYT card): the same checks as `store`
        on the header, then the card reader's own reduced decode; raises PhotoRejected."""
        self._check_byte_count("qr", data)
        return await self._cpu().run(self._read_qr, data)

    def _check_byte_count(self, kind: str, data: bytes) -> None:
        # The byte bound comes first and costs nothing: an oversized upload is never parsed.
        if len(data) > self.max_bytes:
            log.info("photo refused: kind=%s code=too_many_bytes bytes=%d", kind, len(data))
            raise PhotoRejected(
                "too_many_bytes",
                size_mb=round(len(data) / 2**20, 1),
                max_mb=round(self.max_bytes / 2**20, 1),
            )

    def _cpu(self) -> CpuPool:
        return self.cpu or default_pool()

    def __getstate__(self) -> dict:
        # What a worker process needs to check and store: the settings, not the pool or lock.
        return {**self.__dict__, "cpu": None, "_key_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _key_lock=threading.Lock())

    async def delete_owner(self, owner: str) -> int:
        """Remove every photo of one owner (cancelled registration, retention). Returns files removed."""
        return await asyncio.to_thread(self._delete_owner, owner)

    async def delete_owner_before(self, owner: str, before: float) -> int:
        """Remove one owner's photos written at or before `before` (epoch seconds): retention."""
        return await asyncio.to_thread(self._delete_owner_before, owner, before)

    def _delete_owner_before(self, owner: str, before: float) -> int:
        directory = self.root / self._owner_dir_name(owner)
        if not directory.is_dir():
            return 0
        old = [p for p in directory.iterdir() if p.suffix == ".jpg" and p.stat().st_mtime <= before]
        for path in old:
            path.unlink()
        log.info("photos purged: owner=%s files=%d", self._owner_tag(owner), len(old))
        return len(old)

    # -- worker-thread side ---------------------------------------------------------------

    def _check_and_store(self, owner: str, kind: str, data: bytes) -> StoredPhoto:
        try:
            stripped = self._check_jpeg_as_is(data)
            if stripped is None:
                image = self.decode(data)
        except PhotoRejected as rejected:
            log.info("photo refused: owner=%s kind=%s code=%s", self._owner_tag(owner), kind, rejected.code)
            raise
        if stripped is not None:
            jpeg, size = stripped
            path = self._write_bytes(owner, kind, jpeg)
            qr_source: bytes | Image.Image = jpeg  # the card reader decodes it at its own size
        else:
            clean = _plain_rgb(_upright(image))
            size, qr_source = clean.size, clean
            path = self._write(owner, kind, clean)
        log.info("photo stored: owner=%s kind=%s %dx%d", self._owner_tag(owner), kind, *size)
        # The chip CCCD carries its facts in a QR code on the front: the form can be filled from
        # it, and a typed number checked against it.
        texts = read_qr_texts(qr_source) if kind in QR_PHOTO_KINDS else []
        card = next(filter(None, map(cccd_fields, texts)), None)
        return StoredPhoto(
            path=str(path),
            width=size[0],
            height=size[1],
            id_number_on_card=card.id_number if card else None,
            qr_texts=texts,
        )

    def _check_jpeg_as_is(self, data: bytes) -> tuple[bytes, tuple[int, int]] | None:
        """The fast path for an upright colour JPEG (most phone photos): the same checks on a
        copy decoded at reduced size (JPEG DCT scaling reads every byte of the file, so a
        truncated upload still fails), and the file kept as it came minus its metadata
        (`bot.jpeg`). None: not such a JPEG, use `decode`."""
        probe = self._open_checked(data)
        if probe.format not in ("JPEG", "MPO") or probe.mode != "RGB" or _orientation(probe) != 1:
            return None
        stripped = strip_metadata(data)
        if stripped is None:
            return None
        width, height = probe.size
        # The largest reduction (1/2, 1/4, 1/8) that keeps the long side at or above the
        # sharpness scale, decoded as luma only: sharpness looks at grey levels.
        scale = max(1, min(8, max(width, height) // _SHARPNESS_SIDE))
        scale = 1 << (scale.bit_length() - 1)
        from PIL import Image  # here, not at the top: a start-up that checks no photo skips Pillow

        with self._decoding():
            small = Image.open(io.BytesIO(stripped), formats=("JPEG",))
            small.draft("L", (width // scale, height // scale))
            small.load()
        self._check_sharpness(small, (width, height))
        return stripped, (width, height)

    def _check_sharpness(self, image: Image.Image, size: tuple[int, int]) -> None:
        """Blurry is refused; a photo under the comfortable size must also be crisp to be read."""
        score = sharpness(image)
        if min(size) < self.min_short_side and score < max(READABLE_SMALL_SHARPNESS, self.min_sharpness):
            raise self._too_small(*size)
        if score < self.min_sharpness:
            raise PhotoRejected("blurry", score=round(score, 1), min=self.min_sharpness)

    @contextlib.contextmanager
    def _decoding(self) -> Iterator[None]:
        """Decoding errors as refusals: a bomb is too large, anything else truncated."""
        from PIL import Image

        try:
            yield
        except Image.DecompressionBombError:
            raise PhotoRejected("too_large", max_megapixels=self.max_pixels // 1_000_000) from None
        except MemoryError:
            raise
        except Exception as exc:
            log.debug("photo decode failed: %s", type(exc).__name__)
            raise PhotoRejected("truncated") from None

    def _read_qr(self, data: bytes) -> list[str]:
        image = self._open_checked(data)
        with self._decoding():
            return read_qr_texts(image)

    def _open_checked(self, data: bytes) -> Image.Image:
        """The image's header, refused on format and size before a single pixel is decompressed."""
        from PIL import Image

        if _looks_like_heif(data):
            raise PhotoRejected("unsupported_format", format="HEIC")
        try:
            probe = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except Image.DecompressionBombError:
            # Pillow's own guard (far above our bound) fired while reading the header.
            raise PhotoRejected("too_large", max_megapixels=self.max_pixels // 1_000_000) from None
        except Exception:
            # UnidentifiedImageError for text, PDFs, formats outside ACCEPTED_FORMATS; other
            # errors for headers too broken to identify. Either way it is not a usable picture.
            raise PhotoRejected("not_image") from None
        width, height = probe.size
        if width * height > self.max_pixels:
            raise PhotoRejected(
                "too_large", width=width, height=height, max_megapixels=self.max_pixels // 1_000_000
            )
        if min(width, height) < min(READABLE_MIN_SIDE, self.min_short_side):
            raise self._too_small(width, height)
        return probe

    def _too_small(self, width: int, height: int) -> PhotoRejected:
        return PhotoRejected("too_small", width=width, height=height, min=self.min_short_side)

    def decode(self, data: bytes) -> Image.Image:
        """Decode fully and check; the returned image is loaded (pixels in memory)."""
        from PIL import Image

        probe = self._open_checked(data)
        with self._decoding():
            # verify() checks structure (PNG CRCs and the like) but leaves the object unusable,
            # so the image is opened again for the real decode; load() catches truncated data.
            probe.verify()
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            image.load()
        self._check_sharpness(image, image.size)
        return image

    def _write(self, owner: str, kind: str, image: Image.Image) -> Path:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=self.jpeg_quality, optimize=True)
        return self._write_bytes(owner, kind, buffer.getvalue())

    def _write_bytes(self, owner: str, kind: str, jpeg: bytes) -> Path:
        directory = private_dir(self.root / self._owner_dir_name(owner))
        final = directory / f"{kind}-{secrets.token_hex(8)}.jpg"
        # Created 0600 from the start (no window where another local user could read it);
        # written under a temporary name so a crash never leaves a half photo behind.
        if self.keyring is not None:
            self.keyring.write_file(final, jpeg)
        else:
            write_private(final, jpeg)
        return final

    def _delete_owner(self, owner: str) -> int:
        directory = self.root / self._owner_dir_name(owner)
        if not directory.is_dir():
            return 0
        count = sum(1 for p in directory.iterdir() if p.is_file() and p.suffix == ".jpg")
        shutil.rmtree(directory)
        log.info("photos deleted: owner=%s files=%d", self._owner_tag(owner), count)
        return count

    # -- owner ids are personal data: keyed hashes only -------------------------------------

    def _key(self) -> bytes:
        # A plain SHA of a Telegram id or phone number can be reversed by trying them all;
        # a random key kept next to the uploads makes directory names meaningless without it.
        with self._key_lock:
            if self._owner_key is None:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                key_path = self.root / _OWNER_KEY_FILE
                try:
                    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    self._owner_key = key_path.read_bytes()
                else:
                    key = secrets.token_bytes(32)
                    with os.fdopen(fd, "wb") as out:
                        out.write(key)
                    self._owner_key = key
            return self._owner_key

    def _owner_dir_name(self, owner: str) -> str:
        return hmac.new(self._key(), owner.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def _owner_tag(self, owner: str) -> str:
        """A short stable tag for logs: lets operators correlate lines without the id itself."""
        return self._owner_dir_name(owner)[:8]


def sharpness(image: Image.Image) -> float:
    """Variance of the Laplacian on a noise-reduced grayscale copy (see DEFAULT_MIN_SHARPNESS)."""
    from PIL import Image, ImageOps

    gray = ImageOps.grayscale(image) if image.mode != "L" else image.copy()
    gray.thumbnail((_SHARPNESS_SIDE, _SHARPNESS_SIDE), Image.Resampling.BOX)
    # The 3x3 median and the Laplacian (offset 128, clipped to 0-255, as Pillow's 8-bit
    # kernel filter does) in numpy: the same numbers as Pillow's MedianFilter and Kernel,
    # several times faster. Only pixels 2 or more from the edge are used, where neither
    # filter needs to invent a border.
    import numpy as np  # here, not at the top: a start-up that checks no photo skips numpy

    median = _median3(np.asarray(gray)).astype(np.int16)
    centre = median[1:-1, 1:-1]
    laplacian = median[:-2, 1:-1] + median[2:, 1:-1] + median[1:-1, :-2] + median[1:-1, 2:] - 4 * centre + 128
    return float(np.clip(laplacian, 0, 255).var())


# Compare-exchange pairs of a median-of-9 sorting network (Paeth): after them, element 4
# holds the median.
_MEDIAN9 = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
    (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)  # fmt: skip


def _median3(pixels: np.ndarray) -> np.ndarray:
    """3x3 median of every pixel not on the edge (the result is 2 smaller each way)."""
    import numpy as np

    height, width = pixels.shape
    p = [pixels[dy : height - 2 + dy, dx : width - 2 + dx] for dy in range(3) for dx in range(3)]
    for a, b in _MEDIAN9:
        p[a], p[b] = np.minimum(p[a], p[b]), np.maximum(p[a], p[b])
    return p[4]


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation (1: upright); None when the EXIF block cannot be read."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:
        return None


def _upright(image: Image.Image) -> Image.Image:
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        # A malformed EXIF block must not cost the user their photo; it is dropped anyway.
        log.debug("EXIF orientation unreadable; photo kept as decoded")
        return image


def _plain_rgb(image: Image.Image) -> Image.Image:
    """An RGB copy with no metadata at all (EXIF with GPS, XMP, ICC, comments)."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale PNGs: scale to 8 bits instead of clipping everything to white.
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white paper, not black as a bare convert("RGB") would make them.
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = image.convert("RGB")  # also CMYK, YCbCr, P, L, 1
    # Image.new starts with an empty .info: nothing from the upload can ride along.
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    return clean


def read_qr_texts(source: bytes | Image.Image) -> list[str]:
    """`bot.cardscan.read_qr_texts`, imported on first use (numpy, zxing)."""
    from bot.cardscan import read_qr_texts as read

    return read(source)


def _looks_like_heif(data: bytes) -> bool:
    # iPhones save HEIC; without a plugin Pillow cannot read it, and the user deserves
    # "send it as JPEG" rather than "this is not a picture".
    return data[4:8] == b"ftyp" and data[8:12] in (
        b"heic",
        b"heix",
        b"hevc",
        b"heif",
        b"mif1",
        b"msf1",
        b"avif",
    )


# -- CCCD QR code ----------------------------------------------------------------------------


def read_cccd_qr(path: Path | str) -> dict | None:
    """Read the QR printed on a chip CCCD front: "id|old_id|name|ddmmyyyy|gender|address|issue_date".

    Returns {"id_number", "old_id_number", "full_name", "date_of_birth", "gender", "address",
    "issue_date"} (dates as `date`, None when unreadable), or None when no CCCD QR is found.
    Meant for photos `FilePhotoStore` already checked and stored. Blocking (zxing + Pillow):
    call `read_cccd_qr_async` from async code.
    """
    from PIL import Image

    with Image.open(io.BytesIO(open_file(path)), formats=ACCEPTED_FORMATS) as image:
        texts = read_qr_texts(image)
    return next(filter(None, map(parse_cccd_qr, texts)), None)


async def read_cccd_qr_async(path: Path | str) -> dict | None:
    return await asyncio.to_thread(read_cccd_qr, path)


def parse_cccd_qr(text: str) -> dict | None:
    card = cccd_fields(text)
    if card is None:
        return None
    fields = dataclasses.asdict(card)
    fields.pop("kind")
    return fields
