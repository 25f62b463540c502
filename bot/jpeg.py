"""A JPEG's metadata dropped without touching its pixels.

Re-encoding a 12 MP phone photo only to drop its EXIF (GPS, device serials), XMP, ICC
profile and comments costs hundreds of milliseconds and a generation of quality. The same
result comes from copying the segments a decoder needs — quantisation and Huffman tables,
the frame and scan headers, the entropy-coded data — and leaving out every APPn and COM
segment, and anything after the end of the image (some phones append a second picture).

`strip_metadata` returns None for a file it does not fully understand (a marker outside
the list, a colour transform announced in an Adobe segment, a structure that does not add
up): the caller then decodes and re-encodes as before.
"""

from __future__ import annotations

import re

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# Segments a baseline or progressive decoder needs: DQT, DHT, DAC, DRI, SOF0-15 (but the
# DHT/JPG/DAC codes in that range), DNL.
_KEEP = {0xDB, 0xC4, 0xCC, 0xDD, 0xDC} | {c for c in range(0xC0, 0xD0) if c not in (0xC4, 0xC8, 0xCC)}
_DROP = set(range(0xE1, 0xF0)) | {0xE0, 0xFE}  # APP0-15 (EXIF, XMP, ICC, JFIF...), COM
_ADOBE = 0xEE  # APP14: its transform flag changes how the colours are read: keep the slow path
# The end of an entropy-coded segment: a marker that is neither stuffing (FF00) nor a restart.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def strip_metadata(data: bytes) -> bytes | None:
    """The same JPEG without APPn/COM segments or trailing bytes; None when unsure."""
    if data[:2] != b"\xff\xd8":
        return None
    out = [b"\xff\xd8"]
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return None
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        marker = data[pos + 1]
        if marker == _EOI:
            out.append(b"\xff\xd9")
            return b"".join(out)
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if pos + 4 > len(data) or length < 2 or end > len(data) or marker == _ADOBE:
            return None
        if marker == _SOS:
            found = _NEXT_MARKER.search(data, end)
            if found is None:
                return None
            out.append(data[pos : found.start()])
            pos = found.start()
            continue
        if marker in _KEEP:
            out.append(data[pos:end])
        elif marker not in _DROP:
            return None
        pos = end
    return None  # no end-of-image marker: truncated, let the full decode say so
