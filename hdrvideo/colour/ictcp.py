"""ICtCp (ITU-R BT.2100-2, PQ variant) and the colour difference ΔE_ITP (ITU-R BT.2124-0).

Shapes: linear BT.2020 RGB (..., 3, H, W) in cd/m² → ICtCp (..., 3, H, W); ΔE_ITP (..., 1, H, W).
A ΔE_ITP of 1 is about one just-noticeable difference.
"""

from __future__ import annotations

import torch

from .transfer import pq_inverse_eotf, rgb_to_rgb

__all__ = ["rgb2020_to_ictcp", "delta_e_itp"]

# ITU-R BT.2100-2 Table 6: BT.2020 RGB → LMS, and L'M'S' → ICtCp (PQ), integers over 4096
_RGB_TO_LMS = tuple(tuple(v / 4096 for v in row) for row in ((1688, 2146, 262), (683, 2951, 462), (99, 309, 3688)))
_LMS_TO_ICTCP = tuple(tuple(v / 4096 for v in row) for row in ((2048, 2048, 0), (6610, -13613, 7003), (17933, -17390, -543)))


def rgb2020_to_ictcp(nits: torch.Tensor) -> torch.Tensor:
    """Linear BT.2020 RGB in cd/m² (..., 3, H, W) → ICtCp (..., 3, H, W), PQ-based (BT.2100-2)."""
    lms = pq_inverse_eotf(rgb_to_rgb(nits.clamp(min=0), _RGB_TO_LMS))
    return rgb_to_rgb(lms, _LMS_TO_ICTCP)


def delta_e_itp(a_nits: torch.Tensor, b_nits: torch.Tensor) -> torch.Tensor:
    """ΔE_ITP (ITU-R BT.2124-0) between two linear BT.2020 images in cd/m² (..., 3, H, W) → (..., 1, H, W):
    ``720 · √(ΔI² + ΔT² + ΔP²)`` with T = 0.5·Ct, P = Cp."""
    d = rgb2020_to_ictcp(a_nits) - rgb2020_to_ictcp(b_nits)
    di, dct, dcp = d.unbind(-3)
    return (720 * torch.sqrt(di * di + (0.5 * dct) ** 2 + dcp * dcp)).unsqueeze(-3)
