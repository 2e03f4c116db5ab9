"""SDR renderings of HDR, made the ways SDR grades are really made; and HDR grades of scene light.

The graded-pair evaluation (:mod:`.graded`) and the virtual camera (:mod:`.degrade`) both need SDR
pictures that look like real SDR *grades* of an HDR master, not only like a camera that clipped:
highlights rolled off rather than cut, saturated colours clipped to the BT.709 gamut (or
compressed into it), and sometimes pushed so far that their strongest channel clips at mid
luminance. An expansion that turns those colours into light is wrong, and only such inputs show it.

Every rendering takes HDR display light, linear BT.2020 in cd/m² (B, 3, H, W), and returns an SDR
signal: BT.709 primaries, BT.1886-encoded (γ 2.4, ITU-R BT.1886 Annex 1) in [0, 1] (not yet
quantised). :data:`RENDERINGS` names them:

- ``bt2446a``: ITU-R BT.2446-1 Method A (HDR → SDR tone mapping in a perceptual luma domain, with
  its chroma correction), the BT.2020 result gamut-clipped to BT.709;
- ``bt2446c``: ITU-R BT.2446-1 Method C (luminance tone curve, linear below the inflection point
  and logarithmic above it, with the crosstalk matrix; chromaticity kept), gamut-clipped;
- ``filmic``: a filmic display transform: per-channel extended-Reinhard roll-off to the HDR peak
  and an S-shaped contrast (highlights desaturate towards white, as in film);
- ``channel``: a broadcast knee applied per channel (hue shifts in highlights), gamut-clipped;
- ``hue``: the same knee on max(R, G, B), RGB scaled alike (hue and saturation kept), with the
  BT.2020 → BT.709 gamut *compressed* (ACES reference gamut compression) instead of clipped;
- ``saturated``: the ``hue`` rendering with a saturation boost (×``saturation`` chroma in linear
  light) then a per-channel clip: strong colours clip one channel at mid luminance.

:func:`hdr_grade` makes an HDR grade of scene-referred light (a still, a panorama): diffuse white
at 203 cd/m² (BT.2408), highlights rolled off towards a mastering peak, as a colourist's HDR grade
keeps them; it is the reference an SDR rendering of it is compared against.
"""

from __future__ import annotations

import math

import torch

from .. import colour
from ..colour import bt2446

__all__ = ["RENDERINGS", "render_sdr", "hdr_grade", "gamut_compress", "knee_curve", "bt2446a", "bt2446c"]

RENDERINGS = ("bt2446a", "bt2446c", "filmic", "channel", "hue", "saturated")

_EPS = 1e-6
WHITE = colour.SDR_WHITE_NITS


def _lum2020(x: torch.Tensor) -> torch.Tensor:
    return colour.luminance(x, colour.LUMA_BT2020)


def _to_sdr_signal(sdr_linear_2020: torch.Tensor, gamut: str = "clip") -> torch.Tensor:
    """Relative SDR light, BT.2020 (1 = SDR white) → BT.709 BT.1886 signal in [0, 1]."""
    lin = colour.rgb_to_rgb(sdr_linear_2020, colour.BT2020_TO_BT709)
    lin = gamut_compress(lin) if gamut == "compress" else lin
    return colour.bt1886_inverse_eotf(lin.clamp(0, 1)).clamp(0, 1)


# -- tone curves ---------------------------------------------------------------------------------


def knee_curve(x: torch.Tensor, knee: float, white: torch.Tensor | float) -> torch.Tensor:
    """A broadcast knee: identity up to ``knee``, then an exponential shoulder reaching exactly 1 at
    ``white`` (relative light, ≥ knee), with the slope continuous at the knee to within 1 − e^−(w−k)/(1−k).
    x any shape (linear, 1 = SDR white); white a float or a tensor broadcastable to x."""
    w = torch.as_tensor(white, dtype=x.dtype, device=x.device)
    s = 1.0 / (1.0 - knee)
    top = 1 - torch.exp(-s * (w - knee).clamp(min=_EPS))
    y = knee + (1 - knee) * (1 - torch.exp(-s * (x - knee).clamp(min=0))) / top
    return torch.where(x <= knee, x, y.clamp(max=1.0))


def _extended_reinhard(x: torch.Tensor, white: torch.Tensor | float) -> torch.Tensor:
    w = torch.as_tensor(white, dtype=x.dtype, device=x.device)
    return (x * (1 + x / (w * w)) / (1 + x)).clamp(0, 1)


# -- ITU-R BT.2446-1 -----------------------------------------------------------------------------


def bt2446a(hdr_nits: torch.Tensor, l_hdr: float = 1000.0) -> torch.Tensor:
    """ITU-R BT.2446-1 Method A, HDR (BT.2020 linear, cd/m², clipped at ``l_hdr``) → SDR signal
    (BT.709, BT.1886) through its BT.2020 SDR result, gamut-clipped. Constants: BT.2446-1 §4.2."""
    e = (hdr_nits / l_hdr).clamp(0, 1) ** (1 / 2.4)  # R'G'B' of the HDR, γ 1/2.4 of L / L_HDR
    r, g, b = e.unbind(-3)
    y = 0.2627 * r + 0.6780 * g + 0.0593 * b
    rho_hdr = 1 + 32 * (l_hdr / 10000) ** (1 / 2.4)
    yp = torch.log1p((rho_hdr - 1) * y) / math.log(rho_hdr)
    yc = torch.where(
        yp <= 0.7399,
        1.0770 * yp,
        torch.where(yp < 0.9909, -1.1510 * yp * yp + 2.7811 * yp - 0.6302, 0.5 * yp + 0.5),
    )
    rho_sdr = 1 + 32 * (100 / 10000) ** (1 / 2.4)
    y_sdr = (rho_sdr**yc - 1) / (rho_sdr - 1)
    f = y_sdr / (1.1 * y).clamp(min=_EPS)
    cb = f * (b - y) / 1.8814
    cr = f * (r - y) / 1.4746
    y_tmo = y_sdr - (0.1 * cr).clamp(min=0)
    r2 = y_tmo + 1.4746 * cr
    b2 = y_tmo + 1.8814 * cb
    g2 = (y_tmo - 0.2627 * r2 - 0.0593 * b2) / 0.6780
    sdr = torch.stack((r2, g2, b2), dim=-3).clamp(0, 1) ** 2.4  # BT.2020 SDR light, 1 = 100 cd/m²
    return _to_sdr_signal(sdr)


def bt2446c(hdr_nits: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """ITU-R BT.2446-1 Method C, HDR (BT.2020 linear, cd/m²) → SDR signal (BT.709, BT.1886).

    Crosstalk matrix with factor ``alpha``, the luminance curve ``Y_SDR = k1·Y`` below
    ``Y_ip = 58.5/k1`` and ``k2·ln(Y/Y_ip − k3) + k4`` above, chromaticity kept (RGB scaled by the
    luminance ratio), inverse crosstalk, 100 cd/m² SDR white, gamut-clipped to BT.709."""
    ct = bt2446.crosstalk(alpha)
    x = colour.rgb_to_rgb(hdr_nits.clamp(min=0), ct)
    y = _lum2020(x).clamp(min=_EPS)
    x = x * (bt2446.method_c_forward_luminance(y) / y)
    inv = tuple(tuple(float(v) for v in row) for row in torch.tensor(ct, dtype=torch.float64).inverse())
    sdr = colour.rgb_to_rgb(x, inv) / 100.0
    return _to_sdr_signal(sdr)


# -- gamut ---------------------------------------------------------------------------------------

# ACES 1.3 reference gamut compression: per-channel limits and thresholds, power 1.2
_RGC_LIMIT = (1.147, 1.264, 1.312)
_RGC_THRESHOLD = (0.815, 0.803, 0.880)
_RGC_POWER = 1.2


def gamut_compress(rgb: torch.Tensor) -> torch.Tensor:
    """Compress out-of-gamut linear RGB (B, 3, H, W) (negative components) into the gamut, keeping
    hue and the achromatic level: ACES 1.3 reference gamut compression (distance from the
    achromatic axis ``(max − c)/max`` compressed above a threshold so that the limit maps to 1;
    colours beyond the limit are then clipped at 0)."""
    ach = rgb.amax(dim=-3, keepdim=True)
    d = torch.where(ach > 0, (ach - rgb) / ach.abs().clamp(min=_EPS), torch.zeros_like(rgb))
    lim = rgb.new_tensor(_RGC_LIMIT).view(3, 1, 1)
    thr = rgb.new_tensor(_RGC_THRESHOLD).view(3, 1, 1)
    p = _RGC_POWER
    scale = (lim - thr) / (((1 - thr) / (lim - thr)) ** -p - 1) ** (1 / p)
    over = ((d - thr) / scale).clamp(min=0)
    dc = thr + scale * over / (1 + over**p) ** (1 / p)
    d = torch.where(d > thr, dc, d)
    return (ach - d * ach).clamp(min=0)  # beyond the limit: clipped, as ACES does


# -- the renderings ------------------------------------------------------------------------------


def render_sdr(
    hdr_nits: torch.Tensor,
    name: str,
    peak_nits: torch.Tensor | float = 1000.0,
    saturation: float = 1.4,
    knee: float = 0.75,
) -> torch.Tensor:
    """HDR display light (B, 3, H, W), BT.2020 linear cd/m² → SDR signal (B, 3, H, W), BT.709
    BT.1886 in [0, 1], by the rendering ``name`` (:data:`RENDERINGS`). ``peak_nits``: the HDR
    grade's peak (float or (B,)): where the roll-offs reach SDR white."""
    if name == "bt2446a":
        return bt2446a(hdr_nits, max(1000.0, float(torch.as_tensor(peak_nits).max())))
    if name == "bt2446c":
        return bt2446c(hdr_nits)
    x = hdr_nits.clamp(min=0) / WHITE  # relative, 1 = diffuse white
    white = (torch.as_tensor(peak_nits, dtype=x.dtype, device=x.device) / WHITE).clamp(min=1.5)
    white = white.view(-1, 1, 1, 1) if white.ndim else white
    if name == "filmic":
        # exposure 0.9, extended Reinhard per channel reaching 1 at the peak, an S-curve on γ 2.2
        r = _extended_reinhard(0.9 * x, 0.9 * white).clamp(0, 1) ** (1 / 2.2)
        c = 1.2
        s = (r**c / (r**c + (1 - r).clamp(min=0) ** c).clamp(min=_EPS)) ** 2.2
        return _to_sdr_signal(s, "clip")
    if name == "channel":
        return _to_sdr_signal(knee_curve(x, knee, white))
    m = x.amax(dim=-3, keepdim=True).clamp(min=_EPS)
    hue = x * (knee_curve(m, knee, white) / m)
    if name == "hue":
        return _to_sdr_signal(hue, "compress")
    if name == "saturated":
        lin = colour.rgb_to_rgb(hue, colour.BT2020_TO_BT709)
        y = colour.luminance(lin, colour.LUMA_BT709)
        boosted = (y + saturation * (lin - y)).clamp(0, 1)
        return colour.bt1886_inverse_eotf(boosted).clamp(0, 1)
    raise ValueError(f"unknown rendering {name!r}; choose from {RENDERINGS}")


def hdr_grade(
    scene: torch.Tensor,
    peak_nits: torch.Tensor | float = 1000.0,
    key: float = 0.18,
    logavg: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scene-referred linear light (B, 3, H, W), BT.709, any scale → an HDR grade: BT.2020 display
    light in cd/m², the frame's log-average luminance at ``key`` × 203 cd/m² (diffuse white at
    203, BT.2408), luminance above 2 × 203 cd/m² rolled off smoothly towards ``peak_nits``
    (float or (B,)), RGB scaled alike (hue kept). ``logavg`` (B,): use this log-average instead of
    the frame's own (frames of one clip share one)."""
    if logavg is None:
        y = colour.luminance(scene.float(), colour.LUMA_BT709).clamp(min=_EPS)
        logavg = torch.exp(torch.log(y).flatten(1).mean(1))
    logavg = logavg.view(-1, 1, 1, 1)
    nits = colour.rgb_to_rgb(scene.float().clamp(min=0) * (key * WHITE / logavg), colour.BT709_TO_BT2020)
    peak = torch.as_tensor(peak_nits, dtype=nits.dtype, device=nits.device)
    peak = peak.view(-1, 1, 1, 1) if peak.ndim else peak
    k = 2 * WHITE
    lum = _lum2020(nits).clamp(min=_EPS)
    span = (peak - k).clamp(min=1.0)
    out = k + span * (1 - torch.exp(-(lum - k).clamp(min=0) / span))
    return nits * torch.where(lum > k, out / lum, torch.ones_like(lum))
