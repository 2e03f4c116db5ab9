"""HDR10 static metadata written into the bitstream by us, for encoders that do not write it.

x265 and SVT-AV1 write the mastering display (SMPTE ST 2086) and the content light level
(CTA-861.3 MaxCLL/MaxFALL) themselves, from their parameters. NVIDIA's encoders through FFmpeg
do not, so :func:`with_hdr_metadata` puts the same messages into every keyframe's access unit
before the first picture data:

- HEVC (ITU-T H.265 D.2.28 and D.2.35): one prefix SEI NAL unit (type 39) holding a
  mastering_display_colour_volume message (payload type 137: the primaries G, B, R and the white
  point in units of 0.00002, the luminance range in 0.0001 cd/m²) and a content_light_level_info
  message (payload type 144), with emulation-prevention bytes; the packet is in Annex B form
  (start codes), as FFmpeg's encoders give it.
- AV1 (AV1 specification 5.8 and 6.7): two metadata OBUs, METADATA_TYPE_HDR_MDCV (primaries R,
  G, B and the white point in 0.16 fixed point, the luminance maximum in 24.8 and the minimum in
  18.14 fixed point) and METADATA_TYPE_HDR_CLL, after the temporal delimiter and sequence header.

MaxCLL/MaxFALL go in as the writer's placeholder and are patched after the pass
(:func:`~.light_level.patch_content_light_level` finds exactly these bytes), as for x265.
"""

from __future__ import annotations

import struct

from .mov_boxes import BT2020_D65_XY, mdcv_payload

__all__ = ["hevc_hdr_sei", "av1_hdr_obus", "with_hdr_metadata"]

_HEVC_PREFIX_SEI = 39
_AV1_OBU_METADATA = 5
_AV1_PICTURE_OBUS = {3, 4, 6, 7}  # frame header, tile group, frame, redundant frame header


def _emulation_prevention(rbsp: bytes) -> bytes:
    """H.265 7.4.2: a 0x03 after every two zero bytes that a byte ≤ 3 follows."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def hevc_hdr_sei(peak_nits: float, max_cll: int, max_fall: int, min_nits: float = 0.0001) -> bytes:
    """One prefix SEI NAL unit (with its 4-byte start code) carrying the mastering display and the
    content light level: BT.2020 primaries, D65, ``min_nits``–``peak_nits`` cd/m²."""
    payload = bytes([137, 24]) + mdcv_payload(peak_nits, min_nits)
    payload += bytes([144, 4]) + struct.pack(">HH", min(max_cll, 0xFFFF), min(max_fall, 0xFFFF))
    header = bytes([_HEVC_PREFIX_SEI << 1, 1])  # forbidden 0, type 39, layer 0, temporal id + 1 = 1
    return b"\x00\x00\x00\x01" + header + _emulation_prevention(payload + b"\x80")


def _leb128(v: int) -> bytes:
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _metadata_obu(metadata_type: int, body: bytes) -> bytes:
    payload = _leb128(metadata_type) + body + b"\x80"  # trailing bits
    return bytes([_AV1_OBU_METADATA << 3 | 0x02]) + _leb128(len(payload)) + payload


def av1_hdr_obus(peak_nits: float, max_cll: int, max_fall: int, min_nits: float = 0.0001) -> bytes:
    """The HDR_MDCV and HDR_CLL metadata OBUs (with size fields): BT.2020 primaries in R, G, B
    order, D65, ``min_nits``–``peak_nits`` cd/m²."""
    g, b, r, white = BT2020_D65_XY
    body = b"".join(struct.pack(">HH", round(x * 65536), round(y * 65536)) for x, y in (r, g, b, white))
    body += struct.pack(">II", round(peak_nits * 256), round(min_nits * 16384))
    cll = struct.pack(">HH", min(max_cll, 0xFFFF), min(max_fall, 0xFFFF))
    return _metadata_obu(2, body) + _metadata_obu(1, cll)


def _hevc_first_picture(data: bytes) -> int:
    """Offset of the start code of the first VCL NAL unit (types 0–31) of an Annex B access unit,
    or -1."""
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        if (data[pos + 3] >> 1) & 0x3F < 32:
            return pos - 1 if pos > 0 and data[pos - 1] == 0 else pos
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return -1


def _av1_first_picture(data: bytes) -> int:
    """Offset of the first frame, frame header or tile group OBU of a temporal unit, or -1 (OBUs
    without size fields cannot be walked)."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        if not header & 0x02:
            return -1
        kind, start = (header >> 3) & 0x0F, pos + 1 + (1 if header & 0x04 else 0)
        if kind in _AV1_PICTURE_OBUS:
            return pos
        size, shift = 0, 0
        while start < len(data):
            byte = data[start]
            size |= (byte & 0x7F) << shift
            start, shift = start + 1, shift + 7
            if not byte & 0x80:
                break
        pos = start + size
    return -1


def with_hdr_metadata(data: bytes, bitstream: str, messages: bytes) -> bytes:
    """A keyframe's access unit (``bitstream`` hevc: Annex B) or temporal unit (av1) with
    ``messages`` (:func:`hevc_hdr_sei` or :func:`av1_hdr_obus`) before its first picture data;
    unchanged where that cannot be found."""
    if bitstream not in ("hevc", "av1"):
        raise ValueError(f"HDR10 messages go into hevc or av1, not {bitstream!r}")
    at = _hevc_first_picture(data) if bitstream == "hevc" else _av1_first_picture(data)
    return data if at < 0 else data[:at] + messages + data[at:]
