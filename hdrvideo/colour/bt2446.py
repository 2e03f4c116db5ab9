"""ITU-R BT.2446-1 (Report, 2021): the broadcast formulas between SDR and HDR, both directions.

The inverse tone mappings here are the *formula's picture*: what a user gets for free, and the
floor a learned expansion must beat (``hdrvideo convert --method bt2446c``; ``eval --pairs``
reports both as baselines). The forward Method C curve is used to render graded SDR
(:mod:`hdrvideo.training.grading`).

- **Method C** (§5): a luminance tone curve, linear below an inflection point and logarithmic
  above it, chromaticity kept, with an optional crosstalk matrix (factor α ∈ [0, 0.33]).
  Forward (HDR → SDR), on BT.2020 luminance in cd/m²::

      Y_SDR = k1·Y_HDR                         Y_HDR < Y_HDR,ip = 58.5 / k1
      Y_SDR = k2·ln(Y_HDR / Y_HDR,ip − k3) + k4  otherwise

  with k1 = 0.83802, k2 = 15.09968, k3 = 0.74204, k4 = 78.99439 (continuous in value and slope
  to 0.06 %). Its
  inverse (SDR → HDR) is ``Y_HDR = Y_SDR / k1`` below ``Y_SDR,ip = 58.5`` and
  ``Y_HDR,ip·(e^((Y_SDR − k4)/k2) + k3)`` above: SDR white (100 cd/m²) goes to 332 cd/m².
  In relative form, ``t = Y/Y_ip`` with both sides normalised by the inflection point, the
  curve above it is ``c·e^((t − 1)/c) + 1 − c`` with ``c = 1 − k3``: :func:`inverse_curve`
  takes (ip, c) as parameters, so a learned expansion can start from the standard's shape.
- **Method A** (§4): tone mapping in a perceptual luma domain. Its SDR → HDR direction (the
  Report's Table 4): ``Y'' = 255·Y'`` (BT.2020 luma of the SDR R'G'B'), an exponent
  ``E = a·Y''² + b·Y'' + c`` (two sets of constants, split at Y'' = 70), ``Y'_HDR = Y''^E``
  (0 … 1000), chroma scaled by ``1.075·Y'_HDR / Y''``, R'G'B' back from Y'CbCr and each channel
  decoded as ``1000·(E'/1000)^2.4`` cd/m².

SDR inputs are BT.709 signals decoded by BT.1886 (γ 2.4, ITU-R BT.1886 Annex 1) at
:data:`SDR_NITS` (the Report's SDR reference: 100 cd/m²); outputs are BT.2020 linear light in
cd/m². Shapes: (B, 3, H, W) in, (B, 3, H, W) out.
"""

from __future__ import annotations

import torch

from . import transfer as tf

__all__ = [
    "SDR_NITS", "C_K1", "C_K2", "C_K3", "C_K4", "C_IP_NITS", "C_IP_SDR", "C_CURVE",
    "method_c_forward_luminance", "method_c_inverse_luminance", "method_c_inverse", "method_a_inverse",
    "inverse_curve", "inverse_curve_log_gain", "crosstalk",
]  # fmt: skip

SDR_NITS = 100.0
"""The Report's SDR reference white, cd/m²."""

# Method C, BT.2446-1 §5.2
C_K1 = 0.83802
C_K3 = 0.74204
C_IP_SDR = 58.5
"""Y_SDR at the inflection point, cd/m²."""
C_IP_NITS = C_IP_SDR / C_K1
"""Y_HDR,ip = 58.5 / k1 ≈ 69.81 cd/m²."""
C_K2 = 15.09968
C_K4 = 78.99439
"""k2 and k4 as the Report publishes them: derived for continuity at 100·0.8^2.4 = 58.535 cd/m²,
which it rounds to 58.5 for the inflection point (a step of 0.035 cd/m² there, 0.06 %)."""
C_CURVE = (C_IP_SDR / SDR_NITS, 1 - C_K3)
"""Method C's inverse in :func:`inverse_curve`'s relative terms: (inflection point as a share of
SDR white, 0.585; c = 1 − k3)."""

# Method A, BT.2446-1 Table 4 (SDR → HDR)
_A_T = 70.0
_A_LOW = (1.8712e-5, -2.7334e-3, 1.3141)
_A_HIGH = (2.8305e-6, -7.4622e-4, 1.2528)
_A_PEAK = 1000.0
_KR, _KB = 0.2627, 0.0593  # BT.2020 luma weights
_EPS = 1e-6


def crosstalk(alpha: float) -> tuple[tuple[float, ...], ...]:
    """Method C's crosstalk matrix (§5.2), rows of ``(1 − 2α, α, α)`` permuted."""
    a = alpha
    return ((1 - 2 * a, a, a), (a, 1 - 2 * a, a), (a, a, 1 - 2 * a))


def method_c_forward_luminance(y_hdr: torch.Tensor) -> torch.Tensor:
    """Method C's tone curve, HDR luminance (cd/m², any shape) → SDR luminance (cd/m²)."""
    return torch.where(
        y_hdr < C_IP_NITS, C_K1 * y_hdr, C_K2 * torch.log((y_hdr / C_IP_NITS - C_K3).clamp(min=_EPS)) + C_K4
    )


def method_c_inverse_luminance(y_sdr: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`method_c_forward_luminance`: SDR luminance (cd/m²) → HDR (cd/m²)."""
    return torch.where(y_sdr < C_IP_SDR, y_sdr / C_K1, C_IP_NITS * (torch.exp((y_sdr - C_K4) / C_K2) + C_K3))


def _sdr_light_2020(signal: torch.Tensor) -> torch.Tensor:
    """BT.709 SDR signal (B, 3, H, W) in [0, 1] → BT.2020 linear light, cd/m² (BT.1886, 100 cd/m²)."""
    return tf.rgb_to_rgb(tf.bt1886_eotf(signal.clamp(0, 1)) * SDR_NITS, tf.BT709_TO_BT2020)


def method_c_inverse(signal: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Method C, SDR → HDR: BT.709 signal (B, 3, H, W) in [0, 1] → BT.2020 light (B, 3, H, W), cd/m².

    Crosstalk matrix (α), luminance through :func:`method_c_inverse_luminance`, RGB scaled by the
    luminance ratio (chromaticity kept), inverse crosstalk. α = 0 (default) keeps hue and
    saturation exactly; the Report's tone mapper uses α = 0.05 on the way down."""
    ct = crosstalk(alpha)
    x = tf.rgb_to_rgb(_sdr_light_2020(signal), ct)
    y = tf.luminance(x, tf.LUMA_BT2020).clamp(min=_EPS)
    x = x * (method_c_inverse_luminance(y) / y)
    inv = tuple(tuple(float(v) for v in row) for row in torch.tensor(ct, dtype=torch.float64).inverse())
    return tf.rgb_to_rgb(x, inv).clamp(min=0)


def method_a_inverse(signal: torch.Tensor) -> torch.Tensor:
    """Method A, SDR → HDR (Table 4): BT.709 signal (B, 3, H, W) in [0, 1] → BT.2020 light, cd/m²
    (peak 1,000). The SDR is taken to BT.2020 R'G'B' (γ 2.4 both ways) first, as the Report's
    conversion works on BT.2020 signals."""
    e = (_sdr_light_2020(signal) / SDR_NITS).clamp(0, 1) ** (1 / 2.4) * 255.0  # R'G'B' on 0 … 255
    r, g, b = e.unbind(-3)
    y = _KR * r + (1 - _KR - _KB) * g + _KB * b
    cb, cr = (b - y) / (2 - 2 * _KB), (r - y) / (2 - 2 * _KR)
    lo, hi = _A_LOW, _A_HIGH
    ex = torch.where(y <= _A_T, lo[0] * y * y + lo[1] * y + lo[2], hi[0] * y * y + hi[1] * y + hi[2])
    y_hdr = y.clamp(min=_EPS) ** ex
    sc = torch.where(y > 0, 1.075 * y_hdr / y.clamp(min=_EPS), torch.ones_like(y))
    cb, cr = cb * sc, cr * sc
    r2 = y_hdr + (2 - 2 * _KR) * cr
    b2 = y_hdr + (2 - 2 * _KB) * cb
    g2 = (y_hdr - _KR * r2 - _KB * b2) / (1 - _KR - _KB)
    rgb = torch.stack((r2, g2, b2), dim=-3).clamp(0, _A_PEAK)
    return _A_PEAK * (rgb / _A_PEAK) ** 2.4


def inverse_curve(y: torch.Tensor, ip: float, c: float) -> torch.Tensor:
    """Method C's inverse shape in relative terms, any shape: light y (1 = SDR white) → expanded
    light, the identity up to ``ip`` and ``ip·(c·e^((y/ip − 1)/c) + 1 − c)`` above (continuous in
    value and slope). (ip, c) = :data:`C_CURVE` is the Report's curve up to one factor (1/k1 in
    its absolute terms): white goes to 2.79×."""
    t = y / ip
    return torch.where(t <= 1, y, ip * (c * torch.exp((t - 1) / c) + 1 - c))


def inverse_curve_log_gain(y: torch.Tensor, ip: float, c: float) -> torch.Tensor:
    """log(:func:`inverse_curve` / y) ≥ 0 for y ≥ 0 (any shape; 0 below ``ip``), written so that a
    compiled loop needs one exp and one log per pixel: the gain the expansion applies to all three
    channels (hue kept, as Method C keeps chromaticity)."""
    t = (y / ip).clamp(min=1.0)
    return torch.log((c * torch.exp((t - 1) / c) + 1 - c) / t)
