"""HDR10 metadata in a QuickTime/MP4 sample description: the ``mdcv`` and ``clli`` boxes.

ProRes (and any codec without in-band HDR messages) can only carry its mastering display and
content light level in the container. QuickTime and ISO/IEC 14496-12 files hold them as two
boxes inside the video sample entry, which FFmpeg (``mov_read_mdcv`` / ``mov_read_clli``) and
MediaInfo read:

- ``mdcv`` (24 bytes, SMPTE ST 2086): display primaries x, y as uint16 in units of 0.00002, in
  the order G, B, R; the white point likewise; max and min luminance as uint32 in 0.0001 cd/m².
- ``clli`` (4 bytes, CTA-861.3): MaxCLL and MaxFALL as uint16 cd/m².

Neither PyAV nor ``ffmpeg -c copy`` writes them (../shared/notes/hdr-video-facts.md), so
:func:`add_hdr_boxes` adds them to a finished file whose ``moov`` comes after its media data
(QuickTime as FFmpeg writes it without ``faststart``): the boxes grow ``moov`` at the end of the
file, and no chunk offset moves.
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["add_hdr_boxes", "mdcv_box", "mdcv_payload", "clli_box", "BT2020_D65_XY"]

BT2020_D65_XY = ((0.170, 0.797), (0.131, 0.046), (0.708, 0.292), (0.3127, 0.3290))
"""ITU-R BT.2020 primaries G, B, R and the D65 white point (CIE 1931 x, y), ST 2086 order."""

_PATH = (b"trak", b"mdia", b"minf", b"stbl", b"stsd")
_VISUAL_ENTRY_FIELDS = 78  # QuickTime / ISO visual sample entry: fixed fields before its child boxes


def mdcv_payload(peak_nits: float, min_nits: float = 0.0001, xy=BT2020_D65_XY) -> bytes:
    """SMPTE ST 2086 as 24 bytes, laid out alike in the ``mdcv`` box and HEVC's mastering display
    SEI (H.265 D.2.28): primaries G, B, R and the white point (x, y in 0.00002), then the maximum
    and minimum luminance in 0.0001 cd/m²."""
    body = b"".join(struct.pack(">HH", round(x / 0.00002), round(y / 0.00002)) for x, y in xy)
    return body + struct.pack(">II", round(peak_nits * 10000), round(min_nits * 10000))


def mdcv_box(peak_nits: float, min_nits: float = 0.0001, xy=BT2020_D65_XY) -> bytes:
    """The ``mdcv`` box of a mastering display of these primaries and luminance range."""
    body = mdcv_payload(peak_nits, min_nits, xy)
    return struct.pack(">I4s", 8 + len(body), b"mdcv") + body


def clli_box(max_cll: int, max_fall: int) -> bytes:
    """The ``clli`` box: MaxCLL and MaxFALL in cd/m² (0–65535)."""
    return struct.pack(">I4sHH", 12, b"clli", min(max_cll, 0xFFFF), min(max_fall, 0xFFFF))


def _boxes(data: bytes, start: int, end: int):
    """(type, offset, size) of the boxes in data[start:end]; 64-bit and to-the-end sizes stop it."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > end:
            return
        yield kind, pos, size
        pos += size


def _video_entry(moov: bytes) -> list[int] | None:
    """Offsets in ``moov`` of trak, mdia, minf, stbl, stsd and the first video sample entry."""
    for kind, off, size in _boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        chain, start, end = [off], off + 8, off + size
        for want in _PATH[1:]:
            found = next(((o, s) for k, o, s in _boxes(moov, start, end) if k == want), None)
            if found is None:
                break
            chain.append(found[0])
            # stsd is a full box with an entry count: its entries start 16 bytes in
            start, end = found[0] + (16 if want == b"stsd" else 8), found[0] + found[1]
        else:
            mdia, mdia_size = next((o, s) for k, o, s in _boxes(moov, off + 8, off + size) if k == b"mdia")
            hdlr = next((o for k, o, _ in _boxes(moov, mdia + 8, mdia + mdia_size) if k == b"hdlr"), None)
            if hdlr is None or moov[hdlr + 16 : hdlr + 20] != b"vide":
                continue
            entry = next(iter(_boxes(moov, start, end)), None)
            if entry is not None:
                return [0, *chain, entry[1]]
    return None


def add_hdr_boxes(path: str | Path, boxes: bytes) -> bool:
    """Append ``boxes`` to the video sample entry of the file at ``path``, in place, and grow
    every box around it. False (the file untouched) where ``moov`` is not the last top-level box
    (e.g. MP4 with ``faststart``), or the file has no video track or already has such boxes."""
    path = Path(path)
    with open(path, "r+b") as f:
        head = f.read()
        top = list(_boxes(head, 0, len(head)))
        if not top or top[-1][0] != b"moov":
            return False
        _, moov_at, moov_size = top[-1]
        moov = bytearray(head[moov_at : moov_at + moov_size])
        chain = _video_entry(bytes(moov))
        if chain is None:
            return False
        entry = chain[-1]
        entry_size = struct.unpack(">I", moov[entry : entry + 4])[0]
        inner = list(_boxes(bytes(moov), entry + 8 + _VISUAL_ENTRY_FIELDS, entry + entry_size))
        if any(k in (b"mdcv", b"clli") for k, _, _ in inner):
            return False
        moov[entry + entry_size : entry + entry_size] = boxes
        for off in chain:  # moov, trak, mdia, minf, stbl, stsd, the entry: each grows by the boxes
            size = struct.unpack(">I", moov[off : off + 4])[0]
            moov[off : off + 4] = struct.pack(">I", size + len(boxes))
        f.seek(moov_at)
        f.write(moov)
        f.truncate()
    return True
