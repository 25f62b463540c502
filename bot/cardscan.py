"""Reading the QR code of a card (chip CCCD, BHYT) in a phone photo.

A phone photo is 12 MP; the card may fill a third of it, tilted, a little soft, with a lamp's
reflection, saved as a low-quality JPEG. Decoding all of it at full size costs more than the
whole budget (~150 ms a photo on a shared 2-core VM), so:

1. The JPEG is decoded straight to a smaller size (libjpeg's DCT scaling, `Image.draft`): the
   long side lands between 1,600 and 3,200 px, which keeps a small card's QR at 2+ px a module.
2. zxing-cpp reads that whole picture. Most photos end here.
3. Otherwise the QR is looked for by its three finder patterns (the nested squares in its
   corners: dark, light, dark, light, dark runs in the ratio 1:1:3:1:1 across and down), and
   each place zxing itself saw a symbol it could not decode. A crop around each is read again
   as it is, enlarged twice, and enlarged and sharpened: out of the clutter of the card's text
   zxing's local threshold and sampling do better.

Blocking (Pillow, numpy, zxing): call `read_card_qr_async` from async code. Nothing read here
is logged: QR texts carry names and ID numbers.
"""

from __future__ import annotations

import asyncio
import io
import logging

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

from knowledge.cards import CardRead, interpret

log = logging.getLogger(__name__)

_QR = zxingcpp.BarcodeFormat.QRCode
_TARGET_LONG_SIDE = 1600  # the decoded picture's long side is at least this (or the photo's own)
_LOCAL_MEAN_RADIUS = 12  # px at the working scale: the finder locator's local threshold window
_MAX_CROPS = 4


def read_qr_texts(data: bytes | Image.Image) -> list[str]:
    """The texts of the QR codes in a photo (encoded bytes, or an image already decoded)."""
    gray = _working_image(data)
    texts, seen = _read(gray, collect_positions=True)
    if texts:
        return texts
    for box in _candidate_boxes(gray, seen):
        texts = _read_crop(gray, box)
        if texts:
            return texts
    return []


def read_card_qr(data: bytes | Image.Image) -> CardRead:
    """The card whose QR a photo shows (see CardRead)."""
    return interpret(read_qr_texts(data))


async def read_card_qr_async(data: bytes | Image.Image) -> CardRead:
    return await asyncio.to_thread(read_card_qr, data)


def _working_image(data: bytes | Image.Image) -> Image.Image:
    """A grayscale picture with its long side near _TARGET_LONG_SIDE (never enlarged)."""
    image = Image.open(io.BytesIO(data)) if isinstance(data, bytes) else data
    scale = max(1, max(image.size) // _TARGET_LONG_SIDE)
    # A JPEG not decoded yet is decoded straight at 1/2, 1/4 ... of its size (a no-op otherwise).
    # The EXIF orientation is left alone: a QR code reads at any angle.
    image.draft("L", (image.width // scale, image.height // scale))
    scale = max(1, max(image.size) // _TARGET_LONG_SIDE)
    if scale > 1:
        image = image.reduce(scale)
    return image if image.mode == "L" else image.convert("L")


def _read(image: Image.Image, *, collect_positions: bool = False) -> tuple[list[str], list[tuple]]:
    found = zxingcpp.read_barcodes(
        image,
        formats=_QR,  # type: ignore[arg-type]  # one BarcodeFormat is documented and accepted; the stub says BarcodeFormats
        # A QR is found at any angle anyway; rotation and inversion are for other symbologies.
        try_rotate=False,
        try_invert=False,
        return_errors=collect_positions,
    )
    texts = [b.text for b in found if b.valid and b.text]
    seen = [_bounds(b.position) for b in found if not b.valid]
    return texts, seen


def _bounds(position) -> tuple[int, int, int, int]:
    points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _read_crop(gray: Image.Image, box: tuple[int, int, int, int]) -> list[str]:
    left, top, right, bottom = box
    margin = max(right - left, bottom - top) // 5 + 8
    crop = gray.crop(
        (
            max(0, left - margin),
            max(0, top - margin),
            min(gray.width, right + margin),
            min(gray.height, bottom + margin),
        )
    )
    enlarged = crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.BICUBIC)
    sharpened = enlarged.filter(ImageFilter.UnsharpMask(radius=3, percent=250, threshold=0))
    for attempt in (crop, enlarged, sharpened):
        texts, _ = _read(attempt)
        if texts:
            return texts
    return []


def _candidate_boxes(gray: Image.Image, seen: list[tuple]) -> list[tuple[int, int, int, int]]:
    boxes = list(seen)
    boxes.extend(_finder_boxes(gray))
    return boxes[:_MAX_CROPS]


# -- the finder-pattern locator ---------------------------------------------------------------


def _finder_boxes(gray: Image.Image) -> list[tuple[int, int, int, int]]:
    """Boxes around groups of finder patterns, the likeliest QR first."""
    dark = _dark_mask(gray)
    across = _pattern_hits(dark)
    down = _pattern_hits(dark.T)[:, [1, 0, 2]]
    centres = _confirmed_centres(across, down)
    return _group_boxes(centres)


def _dark_mask(gray: Image.Image) -> np.ndarray:
    """Pixels darker than their neighbourhood. The local mean comes from an 8x smaller copy and
    is compared block by block (broadcast), never enlarged: a fraction of a full-size blur's cost."""
    block = 8
    small = gray.reduce(block).filter(ImageFilter.BoxBlur(_LOCAL_MEAN_RADIUS // block + 1))
    rows, cols = gray.height // block, gray.width // block  # reduce() keeps a partial last block
    mean = np.asarray(small)[:rows, :cols]
    pixels = np.asarray(gray)[: rows * block, : cols * block].reshape(rows, block, cols, block)
    threshold = (mean - np.minimum(mean, 4))[:, None, :, None]
    return (pixels < threshold).reshape(rows * block, cols * block)


def _pattern_hits(dark: np.ndarray, row_step: int = 2) -> np.ndarray:
    """(x, y, module) wherever a row shows dark/light/dark/light/dark runs as 1:1:3:1:1."""
    rows = dark[::row_step]
    change = np.zeros((rows.shape[0], rows.shape[1] + 1), dtype=bool)
    change[:, 0] = True
    change[:, 1:-1] = rows[:, 1:] != rows[:, :-1]
    change[:, -1] = True
    row_of, start = np.nonzero(change)
    if len(start) < 7:
        return np.empty((0, 3))
    length = np.diff(start)
    same_row = row_of[:-1] == row_of[1:]
    is_dark = rows[row_of[:-1], np.minimum(start[:-1], rows.shape[1] - 1)]
    n = len(length) - 4
    runs = np.stack([length[i : i + n] for i in range(5)])
    ok = same_row[:n] & same_row[1 : n + 1] & same_row[2 : n + 2] & same_row[3 : n + 3] & is_dark[:n]
    module = runs.sum(axis=0) / 7.0
    ok &= module >= 1.0
    for i, weight in enumerate((1, 1, 3, 1, 1)):
        ok &= np.abs(runs[i] - module * weight) <= module * weight * 0.6
    idx = np.nonzero(ok)[0]
    x = start[idx] + runs[:, idx].sum(axis=0) / 2.0
    y = row_of[idx] * row_step
    return np.stack([x, y, module[idx]], axis=1)


def _confirmed_centres(across: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Centres found both across and down (within a module), merged into one per pattern."""
    if len(across) == 0 or len(down) == 0:
        return np.empty((0, 3))
    cell = 8.0
    down_cells: dict[tuple[int, int], list[int]] = {}
    for i, (x, y, _m) in enumerate(down):
        down_cells.setdefault((int(x // cell), int(y // cell)), []).append(i)
    confirmed = []
    for x, y, m in across:
        cx, cy = int(x // cell), int(y // cell)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in down_cells.get((cx + dx, cy + dy), ()):
                    dxp, dyp, dm = down[j]
                    if abs(dxp - x) <= max(m, 2) and abs(dyp - y) <= max(m, 2) and 0.6 < dm / m < 1.6:
                        confirmed.append(((x + dxp) / 2, (y + dyp) / 2, (m + dm) / 2))
    return _merge(np.array(confirmed)) if confirmed else np.empty((0, 3))


def _merge(points: np.ndarray) -> np.ndarray:
    merged: list[list[float]] = []  # x, y, module, count
    for x, y, m in points:
        for cluster in merged:
            if abs(cluster[0] - x) <= 3 * m and abs(cluster[1] - y) <= 3 * m:
                k = cluster[3]
                cluster[0:3] = [
                    (cluster[0] * k + x) / (k + 1),
                    (cluster[1] * k + y) / (k + 1),
                    (cluster[2] * k + m) / (k + 1),
                ]
                cluster[3] = k + 1
                break
        else:
            merged.append([x, y, m, 1])
    strong = [c for c in merged if c[3] >= 2]
    return np.array(strong)[:, :3] if strong else np.empty((0, 3))


def _group_boxes(centres: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Pairs and triples of centres with alike modules 14-180 modules apart, as boxes."""
    groups: list[tuple[int, tuple[int, int, int, int]]] = []
    used: set[int] = set()
    for i in range(len(centres)):
        if i in used:
            continue
        xi, yi, mi = centres[i]
        members = [i]
        for j in range(i + 1, len(centres)):
            xj, yj, mj = centres[j]
            apart = np.hypot(xj - xi, yj - yi) / mi
            if 0.7 < mj / mi < 1.4 and 14 <= apart <= 180:
                members.append(j)
        if len(members) < 2:
            continue
        used.update(members)
        pts = centres[members]
        pad = 5 * float(pts[:, 2].mean())
        if len(members) == 2:
            # Two corners of three: the third is on either side, as far as they are apart.
            pad += float(np.hypot(*(pts[0, :2] - pts[1, :2])))
        box = (
            int(pts[:, 0].min() - pad),
            int(pts[:, 1].min() - pad),
            int(pts[:, 0].max() + pad),
            int(pts[:, 1].max() + pad),
        )
        groups.append((len(members), box))
    groups.sort(key=lambda g: -g[0])
    return [box for _, box in groups]
