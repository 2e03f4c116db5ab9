"""Gain-map HDR photos: Ultra HDR JPEG out (the SDR base untouched, our expansion as the gain map),
and gain-map JPEGs in (as an SDR/HDR pair).

Format (Android Ultra HDR v1, Adobe "HDR gain map" 1.0, read by Android, Chrome, Apple Photos and
Lightroom): a baseline JPEG, the SDR picture every viewer shows, followed by a second JPEG, the
gain map, tied together by a CIPA DC-007 Multi-Picture Format index (APP2 ``MPF``) and a GContainer
directory in the primary's XMP; the gain map's XMP (``hdrgm:`` namespace) gives its range. An HDR
display with headroom H (log2) shows, per pixel,

    HDR = (SDR + OffsetSDR) · 2^(G · w) − OffsetHDR,   G = GainMapMin + (GainMapMax − GainMapMin) · g^(1/Gamma),
    w = clamp((H − HDRCapacityMin) / (HDRCapacityMax − HDRCapacityMin), 0, 1),

with SDR the base decoded to linear light (sRGB) and g the gain map code / 255. We write a
single-channel map of our expansion ratio (the processor applies one gain to all three channels),
Gamma 1, offsets 1/64, at the base's resolution, and HDRCapacityMax = GainMapMax: a display
with that much headroom shows our HDR, one with none the SDR, and the rest in between.

Encoding and decoding JPEG, and the independent reading of what we write (libultrahdr), come from
imagecodecs; the container (XMP, MPF) is written here.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["GainMapInfo", "write_ultrahdr", "read_gainmap_info", "read_gainmap_pair", "is_gainmap_jpeg"]

OFFSET = 1 / 64
"""OffsetSDR and OffsetHDR (the format's usual value): keeps black from dividing by zero."""

MAP_SCALE = 1
"""The gain map is this many times smaller than the base in each dimension. Full resolution: our
gain has sharp edges (the light gate follows the SDR's clipped shapes). On a 256×192 photo with
an expanded window, as libultrahdr shows it, the expansion was off by 0.0055 stops at the 99th
percentile at full resolution, 0.21 at half and 0.43 at a quarter (on the window's rim), for
1.1 and 1.5 kB less."""

_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_HDRGM = "http://ns.adobe.com/hdr-gain-map/1.0/"


@dataclass(frozen=True)
class GainMapInfo:
    """What a gain-map JPEG says about itself: sizes (W, H), the map's range (log2) and the
    headroom (log2) at which it applies fully."""

    base_size: tuple[int, int]
    map_size: tuple[int, int]
    gain_min: float
    gain_max: float
    capacity_min: float
    capacity_max: float

    @property
    def headroom(self) -> float:
        """Peak over SDR white the HDR rendition reaches (linear), e.g. 4.9 for 1000 cd/m²."""
        return float(2.0**self.capacity_max)


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("JPEG segment too large")
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _segments(jpeg: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The leading marker segments of a JPEG (marker, payload) up to the first that is not an APPn
    or COM, and the rest of the file from there."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    pos, out = 2, []
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        out.append((0xFF00 | marker, jpeg[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    return out, jpeg[pos:]


def jpeg_components(jpeg: bytes) -> int | None:
    """The number of colour components of a JPEG, from its frame header (SOF): 3 for Y'CbCr, 1
    for grey, 4 for CMYK/YCCK; None where no frame header is found."""
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return jpeg[pos + 9] if pos + 9 < len(jpeg) else None
        if marker == 0xDA:  # start of scan without a frame header: not a JPEG we can read
            return None
        pos += 2 + length
    return None


def _xmp(description_attrs: str, body: str = "") -> bytes:
    xml = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="hdrvideo">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" {description_attrs}>{body}</rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    )
    return _XMP_ID + xml.encode()


def _mpf(primary_size: int, map_size: int, map_offset: int) -> bytes:
    """APP2 payload of a two-image MPF index (CIPA DC-007), big-endian; offsets are from the
    TIFF header that follows ``MPF\\0``."""
    entries_offset = 8 + 2 + 3 * 12 + 4
    ifd = struct.pack(">H", 3)
    ifd += struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")  # MPFVersion
    ifd += struct.pack(">HHII", 0xB001, 4, 1, 2)  # NumberOfImages
    ifd += struct.pack(">HHII", 0xB002, 7, 32, entries_offset)  # MPEntry
    ifd += struct.pack(">I", 0)
    entries = struct.pack(">IIIHH", 0x20030000, primary_size, 0, 0, 0)  # representative, baseline primary
    entries += struct.pack(">IIIHH", 0x00000000, map_size, map_offset, 0, 0)
    return b"MPF\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + entries


def _srgb_linear(codes: np.ndarray) -> np.ndarray:
    """8-bit sRGB codes → linear light (IEC 61966-2-1), as a viewer decodes the base."""
    v = codes.astype(np.float32) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def gain_map(sdr_linear: np.ndarray, hdr_linear: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Our expansion ratio as a gain map: (H, W, 3) linear SDR and HDR (1 = SDR white, same
    primaries) → (the map (H/MAP_SCALE, W/MAP_SCALE) uint8, GainMapMin, GainMapMax in log2)."""
    w = np.array([0.2126, 0.7152, 0.0722], np.float32)  # BT.709 luminance
    log_ratio = np.log2((hdr_linear @ w + OFFSET) / (sdr_linear @ w + OFFSET)).astype(np.float32)
    h, wd = log_ratio.shape
    hs, ws = max(1, h // MAP_SCALE), max(1, wd // MAP_SCALE)
    small = log_ratio[: hs * MAP_SCALE, : ws * MAP_SCALE].reshape(hs, MAP_SCALE, ws, MAP_SCALE).mean(axis=(1, 3))
    lo, hi = float(min(0.0, small.min())), float(max(small.max(), 1e-3))
    codes = np.clip(np.round((small - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    return codes, lo, hi


def write_ultrahdr(
    path: Path,
    sdr_rgb: np.ndarray,
    sdr_linear: np.ndarray,
    hdr_linear: np.ndarray,
    base_jpeg: bytes | None = None,
    quality: int = 95,
) -> GainMapInfo:
    """Write an Ultra HDR JPEG. sdr_rgb (H, W, 3) uint8 the SDR picture (the base, encoded at
    ``quality`` unless ``base_jpeg`` gives the input file's own bytes, kept untouched but for
    its old XMP and MPF); sdr_linear / hdr_linear (H, W, 3) float linear light, 1 = SDR white:
    the picture our expansion started from and the one it made. The gain map carries their
    ratio, applied by viewers to the base as they decode it."""
    import imagecodecs

    codes, lo, hi = gain_map(sdr_linear, hdr_linear)
    attrs = (
        f'xmlns:hdrgm="{_HDRGM}" hdrgm:Version="1.0" hdrgm:GainMapMin="{lo:.6f}" hdrgm:GainMapMax="{hi:.6f}" '
        f'hdrgm:Gamma="1.0" hdrgm:OffsetSDR="{OFFSET:.6f}" hdrgm:OffsetHDR="{OFFSET:.6f}" '
        f'hdrgm:HDRCapacityMin="0.000000" hdrgm:HDRCapacityMax="{hi:.6f}" hdrgm:BaseRenditionIsHDR="False"'
    )
    map_jpeg = bytes(imagecodecs.jpeg8_encode(codes, level=quality))
    map_jpeg = map_jpeg[:2] + _segment(0xFFE1, _xmp(attrs)) + map_jpeg[2:]
    base = base_jpeg if base_jpeg is not None else bytes(imagecodecs.jpeg8_encode(sdr_rgb, level=quality, subsampling="444"))
    segments, rest = _segments(base)
    keep = [(m, p) for m, p in segments if not (m == 0xFFE1 and p.startswith(_XMP_ID)) and not (m == 0xFFE2 and p.startswith(b"MPF\x00"))]
    lead = [s for s in keep if s[0] in (0xFFE0, 0xFFE1)]  # JFIF and Exif first
    tail = [s for s in keep if s[0] not in (0xFFE0, 0xFFE1)]
    directory = (
        '<Container:Directory><rdf:Seq>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li>'
        f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" '
        f'Item:Length="{len(map_jpeg)}"/></rdf:li></rdf:Seq></Container:Directory>'
    )
    xmp = _xmp(
        f'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
        f'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" xmlns:hdrgm="{_HDRGM}" hdrgm:Version="1.0"',
        directory,
    )
    head = b"\xff\xd8" + b"".join(_segment(m, p) for m, p in lead) + _segment(0xFFE1, xmp)
    after = b"".join(_segment(m, p) for m, p in tail) + rest
    mpf_len = len(_segment(0xFFE2, _mpf(0, 0, 0)))
    primary_size = len(head) + mpf_len + len(after)
    tiff_at = len(head) + 4 + 4  # marker, length, "MPF\0"
    mpf = _segment(0xFFE2, _mpf(primary_size, len(map_jpeg), primary_size - tiff_at))
    data = head + mpf + after + map_jpeg
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    h, w = sdr_rgb.shape[:2]
    return GainMapInfo((w, h), (codes.shape[1], codes.shape[0]), lo, hi, 0.0, hi)


def _attr(xml: str, name: str) -> str | None:
    m = re.search(rf'hdrgm:{name}\s*=\s*"([^"]*)"', xml) or re.search(rf"<hdrgm:{name}>([^<]*)</hdrgm:{name}>", xml)
    return m.group(1) if m else None


def is_gainmap_jpeg(path: Path) -> bool:
    """A JPEG whose XMP declares an HDR gain map (Ultra HDR / Adobe gain map)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return head[:2] == b"\xff\xd8" and b"hdrgm:Version" in head and b"GainMap" in head


def read_gainmap_info(path: Path) -> GainMapInfo | None:
    """Describe a gain-map JPEG (None if it is not one): the base's size, the gain map's size
    and range. The map's metadata is in its own XMP, after the primary image."""
    import imagecodecs

    if not is_gainmap_jpeg(path):
        return None
    data = Path(path).read_bytes()
    xmps = [x.decode("utf-8", "replace") for x in re.findall(rb"<x:xmpmeta.*?</x:xmpmeta>", data, re.S)]
    params = next((x for x in xmps if _attr(x, "GainMapMax") is not None), None)
    if params is None:
        return None
    base = imagecodecs.jpeg8_decode(data)
    map_at = _gain_map_offset(data)
    gm = imagecodecs.jpeg8_decode(data[map_at:]) if map_at else None

    def num(name: str, default: float) -> float:
        v = _attr(params, name)
        try:
            return float(v) if v is not None else default
        except ValueError:  # per-channel values "a, b, c" in some writers: take the largest
            return max(float(x) for x in v.split(","))

    gmax = num("GainMapMax", 1.0)
    return GainMapInfo(
        base_size=(base.shape[1], base.shape[0]),
        map_size=(gm.shape[1], gm.shape[0]) if gm is not None else (0, 0),
        gain_min=num("GainMapMin", 0.0),
        gain_max=gmax,
        capacity_min=num("HDRCapacityMin", 0.0),
        capacity_max=num("HDRCapacityMax", gmax),
    )


def _gain_map_offset(data: bytes) -> int | None:
    """Where the gain map's JPEG starts: from the MPF index of the primary image."""
    i = data.find(b"MPF\x00")
    if i < 0:
        return None
    tiff = i + 4
    big = data[tiff : tiff + 2] == b"MM"
    e = ">" if big else "<"
    (ifd,) = struct.unpack(e + "I", data[tiff + 4 : tiff + 8])
    (n,) = struct.unpack(e + "H", data[tiff + ifd : tiff + ifd + 2])
    for k in range(n):
        tag, _, count, value = struct.unpack(e + "HHII", data[tiff + ifd + 2 + 12 * k : tiff + ifd + 14 + 12 * k])
        if tag == 0xB002 and count >= 32:
            _, _, offset, _, _ = struct.unpack(e + "IIIHH", data[tiff + value + 16 : tiff + value + 32])
            return tiff + offset if offset else None
    return None


def read_gainmap_pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A gain-map photo as a real SDR/HDR pair: (the base, (H, W, 3) uint8 sRGB codes; the HDR
    rendition at the map's full headroom, (H, W, 3) float32 linear light, 1 = SDR white),
    decoded by libultrahdr."""
    import imagecodecs

    data = Path(path).read_bytes()
    sdr = imagecodecs.jpeg8_decode(data)
    hdr = imagecodecs.ultrahdr_decode(data)[..., :3].astype(np.float32)
    return np.ascontiguousarray(sdr[..., :3]), hdr
