"""HDR10 content light level (CTA-861.3 MaxCLL/MaxFALL): what to signal, and how it is written
into a finished file.

A one-pass encoder must write the SEI (HEVC) or metadata OBU (AV1) before the first frame, when
the content's light is not known yet: it writes a placeholder, and :func:`patch_content_light_level`
overwrites the 4 bytes of every such message in place once the file is complete.
"""

from __future__ import annotations

import math
import mmap
from pathlib import Path

__all__ = ["cll_placeholder", "content_light_level", "patch_content_light_level"]


def cll_placeholder(peak: float) -> int:
    return _nonzero_bytes(math.ceil(peak))


def _nonzero_bytes(v: int) -> int:
    """Smallest value ≥ max(v, 1) whose low byte is non-zero.

    In the SEI payload each value follows a non-zero byte (the size, or the other value's low
    byte), so a value with a non-zero low byte can never form the 00 00 0x sequences that would
    need emulation-prevention bytes.
    """
    v = max(int(v), 1)
    while (v & 0xFF) == 0:
        v += 1
    return min(v, 0xFFFF)


def content_light_level(max_cll: float, max_fall: float) -> tuple[int, int]:
    """Measured maxima (cd/m²) → the (MaxCLL, MaxFALL) to signal: rounded up, never below the content."""
    cll = _nonzero_bytes(math.ceil(max_cll))
    fall = _nonzero_bytes(math.ceil(min(max_fall, max_cll)))
    return cll, min(fall, cll)


def _pattern(codec: str, cll: int, fall: int) -> bytes:
    values = cll.to_bytes(2, "big") + fall.to_bytes(2, "big")
    if codec == "hevc":
        return bytes([144, 4]) + values  # SEI payload type 144 (content light level), size 4
    # AV1 metadata OBU (type 5, has_size_field): size 6, metadata_type 1 (HDR_CLL), trailing bits
    return bytes([0x2A, 0x06, 0x01]) + values + bytes([0x80])


def patch_content_light_level(path: Path, codec: str, placeholder: int, true_values: tuple[int, int]) -> int:
    """Replace the placeholder light level in every message of the file; returns how many."""
    old = _pattern(codec, placeholder, placeholder)
    new = _pattern(codec, *true_values)
    count = 0
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        pos = m.find(old)
        while pos != -1:
            m[pos : pos + len(new)] = new
            count += 1
            pos = m.find(old, pos + len(new))
        m.flush()
    return count
