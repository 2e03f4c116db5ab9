"""Transfer functions and colour primaries, in torch: batched, differentiable, any device and dtype.

Shapes: every function is element-wise on any shape unless it says otherwise; functions that
mix channels take (..., 3, H, W) tensors with RGB on dimension -3.

Units: "relative" linear light is 1.0 at the reference white of its system; "absolute" light is
in cd/m² (nits). Signals (display-encoded values) are in [0, 1].

Standards, and where each constant comes from:
- sRGB (IEC 61966-2-1): kornia's ``rgb_to_linear_rgb`` / ``linear_rgb_to_rgb``, re-exported.
- ITU-R BT.709-6 OETF (camera) and its inverse.
- ITU-R BT.1886 EOTF (the reference display of SDR) and its inverse.
- SMPTE ST 2084 (PQ) EOTF and inverse EOTF, absolute, 10,000 cd/m² peak.
- ITU-R BT.2100-2 HLG OETF, inverse OETF, OOTF and inverse OOTF, with its system gamma.
- ITU-R BT.2087 / BT.2020 primaries: the BT.709 → BT.2020 linear-light matrix.
"""

from __future__ import annotations

import math

import torch
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb

__all__ = [
    "srgb_eotf",
    "srgb_inverse_eotf",
    "bt709_oetf",
    "bt709_inverse_oetf",
    "bt1886_eotf",
    "bt1886_inverse_eotf",
    "pq_eotf",
    "pq_inverse_eotf",
    "hlg_oetf",
    "hlg_inverse_oetf",
    "hlg_system_gamma",
    "hlg_ootf",
    "hlg_inverse_ootf",
    "rgb_to_rgb",
    "luminance",
    "BT709_TO_BT2020",
    "BT2020_TO_BT709",
    "LUMA_BT709",
    "LUMA_BT2020",
    "SDR_WHITE_NITS",
]

SDR_WHITE_NITS = 203.0
"""ITU-R BT.2408-7: HDR reference white (and SDR diffuse white in an HDR container), cd/m²."""

LUMA_BT709 = (0.2126, 0.7152, 0.0722)
"""ITU-R BT.709-6 luminance coefficients (R, G, B)."""

LUMA_BT2020 = (0.2627, 0.6780, 0.0593)
"""ITU-R BT.2020-2 / BT.2100-2 luminance coefficients (R, G, B)."""

# ITU-R BT.2087-0, equation for M = RGB_2020←RGB_709 in linear light (D65 both sides).
BT709_TO_BT2020 = (
    (0.627403895934699, 0.329283038377884, 0.043313065687417),
    (0.069097289358232, 0.919540395075459, 0.011362315566309),
    (0.016391438875150, 0.088013307877226, 0.895595253247624),
)


def _invert3(m: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    t = torch.tensor(m, dtype=torch.float64).inverse()
    return tuple(tuple(float(v) for v in row) for row in t)


BT2020_TO_BT709 = _invert3(BT709_TO_BT2020)
"""Inverse of :data:`BT709_TO_BT2020` (out-of-gamut results are negative; clamp as needed)."""

# -- sRGB (kornia) ----------------------------------------------------------------------------

srgb_eotf = rgb_to_linear_rgb
"""sRGB signal (..., 3, H, W) in [0, 1] → relative linear light. IEC 61966-2-1, via kornia."""

srgb_inverse_eotf = linear_rgb_to_rgb
"""Relative linear light (..., 3, H, W) → sRGB signal. IEC 61966-2-1, via kornia."""

# -- BT.709 OETF ------------------------------------------------------------------------------

# ITU-R BT.709-6 item 1.2, as published: V = 1.099·L^0.45 − 0.099 for L ≥ 0.018, else 4.5·L.
_BT709_ALPHA = 1.099
_BT709_BETA = 0.018


def bt709_oetf(x: torch.Tensor) -> torch.Tensor:
    """Scene linear light [0, 1] → BT.709 camera signal [0, 1] (ITU-R BT.709-6)."""
    x = x.clamp(min=0)
    hi = _BT709_ALPHA * x.clamp(min=_BT709_BETA) ** 0.45 - (_BT709_ALPHA - 1)
    return torch.where(x < _BT709_BETA, 4.5 * x, hi)


def bt709_inverse_oetf(v: torch.Tensor) -> torch.Tensor:
    """BT.709 camera signal [0, 1] → scene linear light [0, 1] (ITU-R BT.709-6, inverted)."""
    v = v.clamp(min=0)
    knee = _BT709_ALPHA * _BT709_BETA**0.45 - (_BT709_ALPHA - 1)  # where the published curve switches
    hi = ((v.clamp(min=knee) + (_BT709_ALPHA - 1)) / _BT709_ALPHA) ** (1 / 0.45)
    return torch.where(v < knee, v / 4.5, hi)


# -- BT.1886 ----------------------------------------------------------------------------------

_BT1886_GAMMA = 2.4  # ITU-R BT.1886 Annex 1


def _bt1886_ab(lw: float, lb: float) -> tuple[float, float]:
    g = 1 / _BT1886_GAMMA
    a = (lw**g - lb**g) ** _BT1886_GAMMA
    b = lb**g / (lw**g - lb**g)
    return a, b


def bt1886_eotf(v: torch.Tensor, lw: float = 1.0, lb: float = 0.0) -> torch.Tensor:
    """SDR signal [0, 1] → display light, ITU-R BT.1886 Annex 1: L = a·max(V + b, 0)^2.4.

    lw, lb: white and black luminance of the display (default 1 and 0: relative light, 1 = white).
    """
    a, b = _bt1886_ab(lw, lb)
    return a * (v + b).clamp(min=0) ** _BT1886_GAMMA


def bt1886_inverse_eotf(light: torch.Tensor, lw: float = 1.0, lb: float = 0.0) -> torch.Tensor:
    """Display light → SDR signal, the inverse of :func:`bt1886_eotf`."""
    a, b = _bt1886_ab(lw, lb)
    return (light.clamp(min=0) / a) ** (1 / _BT1886_GAMMA) - b


# -- SMPTE ST 2084 (PQ) -----------------------------------------------------------------------

PQ_PEAK_NITS = 10000.0


class PQ:
    """SMPTE ST 2084 constants (section 5.3)."""

    M1 = 2610 / 16384
    M2 = 2523 / 4096 * 128
    C1 = 3424 / 4096
    C2 = 2413 / 4096 * 32
    C3 = 2392 / 4096 * 32


_PQ_M1, _PQ_M2, _PQ_C1, _PQ_C2, _PQ_C3 = PQ.M1, PQ.M2, PQ.C1, PQ.C2, PQ.C3


def pq_eotf(e: torch.Tensor) -> torch.Tensor:
    """PQ signal [0, 1] → absolute display light in cd/m² [0, 10000] (SMPTE ST 2084)."""
    p = e.clamp(0, 1) ** (1 / _PQ_M2)
    return PQ_PEAK_NITS * ((p - _PQ_C1).clamp(min=0) / (_PQ_C2 - _PQ_C3 * p)) ** (1 / _PQ_M1)


def pq_inverse_eotf(nits: torch.Tensor) -> torch.Tensor:
    """Absolute display light in cd/m² → PQ signal [0, 1] (SMPTE ST 2084 inverse EOTF)."""
    y = (nits / PQ_PEAK_NITS).clamp(0, 1) ** _PQ_M1
    return ((_PQ_C1 + _PQ_C2 * y) / (1 + _PQ_C3 * y)) ** _PQ_M2


# -- ITU-R BT.2100 HLG ------------------------------------------------------------------------

_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4 * _HLG_A)


def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """Scene linear light [0, 1] → HLG signal [0, 1] (ITU-R BT.2100-2 Table 5)."""
    e = e.clamp(min=0)
    log_part = _HLG_A * torch.log((12 * e - _HLG_B).clamp(min=1e-12)) + _HLG_C
    return torch.where(e <= 1 / 12, torch.sqrt(3 * e), log_part)


def hlg_inverse_oetf(v: torch.Tensor) -> torch.Tensor:
    """HLG signal [0, 1] → scene linear light [0, 1] (ITU-R BT.2100-2 Table 5)."""
    v = v.clamp(min=0)
    exp_part = (torch.exp((v - _HLG_C) / _HLG_A) + _HLG_B) / 12
    return torch.where(v <= 0.5, v * v / 3, exp_part)


def hlg_system_gamma(peak_nits: float = 1000.0) -> float:
    """HLG system gamma for a display of nominal peak ``peak_nits``.

    ITU-R BT.2100-2 Table 5 note 5e: γ = 1.2 + 0.42·log10(Lw/1000) for 400 ≤ Lw ≤ 2000 cd/m²;
    outside that range the extended model of ITU-R BT.2390-11 §6.2: γ = 1.2·1.111^log2(Lw/1000).
    """
    if 400.0 <= peak_nits <= 2000.0:
        return 1.2 + 0.42 * math.log10(peak_nits / 1000.0)
    return 1.2 * 1.111 ** math.log2(peak_nits / 1000.0)


def hlg_ootf(scene: torch.Tensor, peak_nits: float = 1000.0, black_nits: float = 0.0) -> torch.Tensor:
    """HLG scene light (..., 3, H, W) in [0, 1], BT.2020 → display light in cd/m².

    ITU-R BT.2100-2 Table 5: F_D = α·Y_S^(γ−1)·E + β, α = L_W − L_B, β = L_B.
    """
    gamma = hlg_system_gamma(peak_nits)
    ys = luminance(scene.clamp(min=0))
    return (peak_nits - black_nits) * ys.clamp(min=1e-12) ** (gamma - 1) * scene + black_nits


def hlg_inverse_ootf(display: torch.Tensor, peak_nits: float = 1000.0, black_nits: float = 0.0) -> torch.Tensor:
    """Display light (..., 3, H, W) in cd/m², BT.2020 → HLG scene light in [0, 1] (inverse of :func:`hlg_ootf`)."""
    gamma = hlg_system_gamma(peak_nits)
    alpha = peak_nits - black_nits
    f = (display - black_nits).clamp(min=0) / alpha
    yd = luminance(f).clamp(min=1e-12)
    return f * yd ** ((1 - gamma) / gamma)


# -- primaries --------------------------------------------------------------------------------


_MATRICES: dict[tuple, torch.Tensor] = {}


def _matrix(matrix: tuple[tuple[float, ...], ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 3×3 matrix as a tensor on ``device``, made once per matrix, type and device: a tensor
    made from Python numbers on a GPU is a copy the host waits for, on every call. (While
    compiling, made in the graph: a constant there.)"""
    if torch.compiler.is_compiling() or not isinstance(matrix, tuple):  # (a list: not a key)
        return torch.tensor(matrix, dtype=dtype, device=device)
    key = (matrix, dtype, device)
    m = _MATRICES.get(key)
    if m is None:
        if len(_MATRICES) >= 64:  # matrices made per call (a random crosstalk in training): kept bounded
            _MATRICES.clear()
        m = _MATRICES[key] = torch.tensor(matrix, dtype=dtype, device=device)
    return m


def rgb_to_rgb(x: torch.Tensor, matrix: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    """Apply a 3×3 linear-light matrix to x (..., 3, H, W): out_i = Σ_j M_ij · x_j."""
    return torch.einsum("ij,...jhw->...ihw", _matrix(matrix, x.dtype, x.device), x)


def luminance(x: torch.Tensor, weights: tuple[float, float, float] = LUMA_BT2020) -> torch.Tensor:
    """Relative luminance of linear RGB x (..., 3, H, W) → (..., 1, H, W)."""
    r, g, b = x.unbind(-3)
    return (weights[0] * r + weights[1] * g + weights[2] * b).unsqueeze(-3)
