"""Y'CbCr: matrices, quantisation to integer codes, and 4:2:0 chroma resampling, in torch.

Shapes: R'G'B' and Y'CbCr tensors are (..., 3, H, W); Y' in [0, 1], Cb and Cr in [−0.5, 0.5].
Integer code tensors hold whole numbers in a float or integer dtype.

Standards:
- Non-constant-luminance matrices from the luma coefficients Kr, Kb: BT.601 (ITU-R BT.601-7),
  BT.709 (ITU-R BT.709-6 item 3.2) and BT.2020 (ITU-R BT.2020-2 Table 4):
  Y' = Kr·R' + (1 − Kr − Kb)·G' + Kb·B', Cb = (B' − Y') / (2 − 2Kb), Cr = (R' − Y') / (2 − 2Kr).
- Limited ("narrow", "TV") range, n bits: Y = (219·Y' + 16)·2^(n−8), C = (224·C + 128)·2^(n−8)
  (BT.709-6 item 4.6, BT.2020-2 Table 5). Full range: Y = (2^n − 1)·Y', C = (2^n − 1)·C + 2^(n−1)
  (ITU-T H.273 with VideoFullRangeFlag = 1; as colour-science's ``RGB_to_YCbCr``).
- 4:2:0 with chroma sited "left" (MPEG-2 / H.264 / HEVC default, chroma_sample_loc_type 0):
  each chroma sample is co-sited horizontally with the even luma column and lies vertically
  half-way between two luma rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "KR_KB",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "quantize",
    "dequantize",
    "quantize_planes",
    "chroma_downsample_420",
    "chroma_upsample_420",
]

KR_KB: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


def _matrix(name: str) -> tuple[float, float, float]:
    """(Kr, Kb, Kg) of a named matrix."""
    try:
        kr, kb = KR_KB[name]
    except KeyError:
        raise ValueError(f"unknown Y'CbCr matrix {name!r}; choose from {sorted(KR_KB)}") from None
    return kr, kb, 1 - kr - kb


def rgb_to_ycbcr(rgb: torch.Tensor, matrix: str = "bt2020") -> torch.Tensor:
    """R'G'B' signal (..., 3, H, W) in [0, 1] → Y'CbCr (..., 3, H, W): Y' [0, 1], Cb/Cr [−0.5, 0.5]."""
    kr, kb, kg = _matrix(matrix)
    r, g, b = rgb.unbind(-3)
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2 - 2 * kb)
    cr = (r - y) / (2 - 2 * kr)
    return torch.stack((y, cb, cr), dim=-3)


def ycbcr_to_rgb(ycc: torch.Tensor, matrix: str = "bt2020") -> torch.Tensor:
    """Y'CbCr (..., 3, H, W) → R'G'B' signal (..., 3, H, W), the inverse of :func:`rgb_to_ycbcr`."""
    kr, kb, kg = _matrix(matrix)
    y, cb, cr = ycc.unbind(-3)
    r = y + (2 - 2 * kr) * cr
    b = y + (2 - 2 * kb) * cb
    g = (y - kr * r - kb * b) / kg
    return torch.stack((r, g, b), dim=-3)


def _scale(bits: int, limited: bool) -> tuple[float, float, float, float]:
    """(luma scale, luma offset, chroma scale, chroma offset) for n-bit codes."""
    if limited:
        k = float(2 ** (bits - 8))
        return 219 * k, 16 * k, 224 * k, 128 * k
    top = float(2**bits - 1)
    return top, 0.0, top, float(2 ** (bits - 1))


def quantize(ycc: torch.Tensor, bits: int = 10, limited: bool = True, dim: int = -3) -> torch.Tensor:
    """Y'CbCr (Y', Cb, Cr on ``dim``) → rounded integer codes in [0, 2^bits − 1], same dtype."""
    ys, yo, cs, co = _scale(bits, limited)
    y, cb, cr = ycc.unbind(dim)
    top = 2**bits - 1
    out = torch.stack((y * ys + yo, cb * cs + co, cr * cs + co), dim=dim)
    return out.round_().clamp_(0, top)


def quantize_planes(
    y: torch.Tensor, c: torch.Tensor, bits: int = 10, limited: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Luma (..., H, W) and chroma (..., 2, h, w) of different sizes → rounded integer codes."""
    ys, yo, cs, co = _scale(bits, limited)
    top = 2**bits - 1
    return (y * ys + yo).round_().clamp_(0, top), (c * cs + co).round_().clamp_(0, top)


def dequantize(codes: torch.Tensor, bits: int = 10, limited: bool = True, dim: int = -3) -> torch.Tensor:
    """Integer Y'CbCr codes (channels on ``dim``) → Y' [0, 1], Cb/Cr [−0.5, 0.5] (float)."""
    ys, yo, cs, co = _scale(bits, limited)
    codes = codes.to(torch.float32) if not codes.is_floating_point() else codes
    y, cb, cr = codes.unbind(dim)
    return torch.stack(((y - yo) / ys, (cb - co) / cs, (cr - co) / cs), dim=dim)


def chroma_downsample_420(c: torch.Tensor) -> torch.Tensor:
    """Chroma (B, C, H, W), even H and W → (B, C, H/2, W/2), sited left (MPEG-2 default).

    Horizontally a [1, 2, 1]/4 filter centred on the even luma columns (edges replicated);
    vertically the mean of the two luma rows the sample sits between.
    """
    b, ch, h, w = c.shape
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs an even frame size, got {w}×{h}")
    v = 0.5 * (c[:, :, 0::2] + c[:, :, 1::2])  # (B, C, H/2, W)
    left = torch.cat((v[..., :1], v[..., 1:-1:2]), dim=-1)  # column 2j−1 (replicated at j = 0)
    return 0.25 * left + 0.5 * v[..., 0::2] + 0.25 * v[..., 1::2]


def chroma_upsample_420(c: torch.Tensor) -> torch.Tensor:
    """Chroma (B, C, h, w) sited left → (B, C, 2h, 2w), linear interpolation (edges replicated).

    Vertically, luma row 2k sits a quarter of the way from chroma row k to k−1, row 2k+1 a
    quarter of the way to k+1; horizontally luma column 2j is chroma column j and column 2j+1 the
    mean of columns j and j+1.
    """
    b, ch, h, w = c.shape
    p = F.pad(c, (0, 0, 1, 1), mode="replicate")  # rows −1 … h
    even = 0.75 * p[:, :, 1:-1] + 0.25 * p[:, :, :-2]
    odd = 0.75 * p[:, :, 1:-1] + 0.25 * p[:, :, 2:]
    v = torch.stack((even, odd), dim=3).reshape(b, ch, 2 * h, w)
    nxt = torch.cat((v[..., 1:], v[..., -1:]), dim=-1)
    return torch.stack((v, 0.5 * (v + nxt)), dim=-1).reshape(b, ch, 2 * h, 2 * w)
