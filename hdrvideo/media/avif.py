"""10-bit AVIF stills in PQ or HLG, BT.2020 (what Chrome, Android and macOS show as HDR photos).

The light is encoded as the video path encodes it (SMPTE ST 2084, or BT.2100 HLG at the nominal
peak), as full-range 10-bit R'G'B', which libavif (through imagecodecs) turns into 4:4:4 Y'CbCr
BT.2020 NCL with its colour information (nclx: primaries 9, transfer 16 or 18, matrix 9) and
encodes with AOM. imagecodecs does not expose libavif's content light level (``clli``) or
mastering display (``mdcv``) boxes, so these are not written (docs/convert.md says so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import colour

__all__ = ["write_avif", "CICP_TRANSFER"]

CICP_TRANSFER = {"pq": 16, "hlg": 18}
"""ITU-T H.273 TransferCharacteristics of each transfer."""


def avif_codes(nits: np.ndarray, transfer: str, peak_nits: float) -> np.ndarray:
    """(H, W, 3) BT.2020 display light in cd/m² → (H, W, 3) uint16 full-range 10-bit R'G'B' codes."""
    t = torch.from_numpy(np.ascontiguousarray(nits, dtype=np.float32)).permute(2, 0, 1)[None]
    if transfer == "pq":
        sig = colour.pq_inverse_eotf(t)
    elif transfer == "hlg":
        sig = colour.hlg_oetf(colour.hlg_inverse_ootf(t, peak_nits)).clamp(0, 1)
    else:
        raise ValueError(f"unknown transfer {transfer!r}; choose pq or hlg")
    return (sig[0].permute(1, 2, 0) * 1023).round().clamp(0, 1023).to(torch.int32).numpy().astype(np.uint16)


def write_avif(path: Path, nits: np.ndarray, transfer: str = "pq", peak_nits: float = 1000.0, quality: int = 90) -> None:
    """Write (H, W, 3) BT.2020 display light (cd/m²) as a 10-bit 4:4:4 AVIF, atomically."""
    import imagecodecs

    codes = avif_codes(nits, transfer, peak_nits)
    data = imagecodecs.avif_encode(codes, level=quality, bitspersample=10, primaries=9,
                                   transfer=CICP_TRANSFER[transfer], matrix=9, pixelformat="444")  # fmt: skip
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        tmp.write_bytes(bytes(data))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
