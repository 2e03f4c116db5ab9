"""PU21: perceptually uniform encoding of absolute luminance, and PU21-PSNR / PU21-SSIM.

R. K. Mantiuk and M. Azimi, "PU21: A novel perceptually uniform encoding for adapting existing
quality metrics for HDR", Picture Coding Symposium 2021. The "banding + glare" variant (the one
the authors recommend):

    V(L) = p7 · (((p1 + p2·L^p4) / (1 + p3·L^p4))^p5 − p6),   L clamped to [0.005, 10000] cd/m²

Metrics follow the authors' ``pu21_metric``: absolute linear RGB (or luminance) in cd/m² is
encoded per channel and compared as 8-bit-like images with a peak of 256.
"""

from __future__ import annotations

import kornia
import torch

__all__ = ["PU21_PARAMS", "pu21_encode", "pu21_psnr", "pu21_ssim", "PU21_PEAK"]

PU21_PARAMS = (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627, 0.09150303166, 0.9099517204, 596.3148142)
"""p1 … p7 of the banding + glare variant (Mantiuk and Azimi 2021, Table 1)."""

L_MIN, L_MAX = 0.005, 10000.0
PU21_PEAK = 256.0
"""Peak value used by the authors' pu21_metric for PSNR and SSIM."""


def pu21_encode(nits: torch.Tensor) -> torch.Tensor:
    """Absolute luminance (any shape), cd/m² → PU21 values (≈ 0 at 0.005 cd/m², ≈ 256 near 100 cd/m²)."""
    p1, p2, p3, p4, p5, p6, p7 = PU21_PARAMS
    lp = nits.clamp(L_MIN, L_MAX).pow(p4)
    return p7 * (((p1 + p2 * lp) / (1 + p3 * lp)).pow(p5) - p6)


def pu21_psnr(test: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR (dB) between PU21 encodings of test and reference (B, C, H, W) in cd/m² → (B,).

    mask (B, 1, H, W) bool: restrict the error to those pixels (e.g. the clipped ones); frames with
    an empty mask give NaN.
    """
    err = (pu21_encode(test) - pu21_encode(ref)) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.expand_as(err).to(err.dtype)
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    return 10 * torch.log10(PU21_PEAK**2 / mse.clamp(min=1e-12))


def pu21_ssim(test: torch.Tensor, ref: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Mean SSIM (Gaussian window, σ = 1.5) of PU21-encoded (B, 1, H, W) luminance, cd/m² → (B,)."""
    a, b = pu21_encode(test), pu21_encode(ref)
    return kornia.metrics.ssim(a, b, window, max_val=PU21_PEAK).flatten(1).mean(1)
