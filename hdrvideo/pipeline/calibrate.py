"""From ExpandNet's relative output to display light: calibration, expansion gain, soft shoulder.

Why. ExpandNet returns *relative* linear HDR in [0, 1] with no absolute level, and the authors'
weights do not return the SDR picture's mid-tones unchanged either: on real frames the relation
between the network's luminance and the SDR's linear luminance is a power law with a log-log slope
well away from 1, and it varies from frame to frame. Used as is (or scaled by one constant), the
result would change the grade of every well-exposed pixel and pump from frame to frame. A video
up-conversion must instead keep the SDR grade where the SDR was fine, and let the network add only
what the SDR lost: light above its clipping point.

How. Per frame:

1. SDR in an HDR container (ITU-R BT.2408-7): the SDR signal is decoded with the BT.1886 EOTF
   (relative, 1.0 = SDR white) and SDR white is placed at 203 cd/m².
2. Fit: on *well-exposed* pixels (every channel of the SDR signal within ``[fit_lo, fit_hi]``) a
   least-squares line in log-log space, ``log Y_sdr ≈ a + b·log Y_net`` (BT.709 luminance of
   both), gives the frame's mapping ``f(y) = e^a · y^b`` from network output to SDR-relative light.
   Frames with too few such pixels get the caller's fallback (the last good parameters, or
   :data:`DEFAULT_PARAMS`). The parameters ``(a, b)`` are returned per frame so that temporal
   processing can smooth them.
3. Expansion gain: ``d = log f(Y_net) − log Y_sdr``, kept only where it raises light (d ≥ 0)
   and only where the SDR *light* was near or at clipping: weighted by a smoothstep of the SDR's
   largest channel from ``blend_lo`` to ``blend_hi`` times a smoothstep of its BT.709 luma from
   ``luma_lo`` to ``luma_hi``, so that a saturated colour whose strongest channel clipped (orange
   hair, red leaves, a red-lit robot) is not turned into a lamp: on the graded-pair evaluation
   this took false highlights from 1.81% to 0.35% of the pixels for the v2 model (see
   :mod:`hdrvideo.training.graded`). The gate opens late, from 0.95 to 0.99 of the largest
   channel and 0.90 to 0.98 of luma: nearly all the false highlights left by the earlier gate
   (0.80–0.97 / 0.88–0.97) were bright surfaces an SDR grade had left just *below* clipping
   (largest channel 0.95–0.98, median 0.973; BT.2446 C and per-channel-knee renderings) that the
   network lifted 1.5–2×. Chosen on the graded validation split (frames the evaluation does not
   score): v2 went from 0.49% false highlights and 17.82 dB PU21 on clipped pixels to 0.09% and
   17.71 dB with its gain scaled 1.15 (a later gate alone costs clipped light; a model's gain
   scale, :func:`~hdrvideo.model.gain_scale`, gives it back where the SDR clipped).
   Models from v4 on may also turn on the *area rule* (:func:`coloured_area_weight`): the
   network's gain fades where bright colours fill a pixel's neighbourhood (a clear sky whose blue
   clipped is a surface; a coloured lamp among darker surroundings is light).
   Elsewhere the gain is exactly 1, so mid-tones land where the SDR put them (the BT.2408
   picture), whatever the fit. The gain multiplies all three
   channels, so hue comes from the SDR.
4. Soft shoulder: luminance above the knee ``k`` (half the peak, at least SDR white: graded HDR
   keeps highlights linear well above diffuse white) is compressed towards the configured peak
   with ``y = k + (P − k)·(1 − exp(−(x − k)/(P − k)))`` (continuous in value and slope at the
   knee, approaching the peak ``P`` without a hard clip); RGB are scaled by the same factor.

Shapes: SDR signal and network output (B, 3, H, W) in [0, 1]; log gain (B, 1, H, W), natural log;
parameters (B, 2) = (a, b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..colour import LUMA_BT709, SDR_WHITE_NITS, luminance
from ..colour.bt2446 import inverse_curve_log_gain

__all__ = [
    "CalibrationConfig", "DEFAULT_PARAMS", "default_params", "fit_params", "well_exposed", "expansion_log_gain", "soft_shoulder",
    "highlight_weight", "highlight_weight_planes", "curve_log_gain_planes", "pixel_log_gain", "coloured_area_weight",
]  # fmt: skip

CLIPPED_CHANNEL = (0.93, 1.0)
"""Linear light of a pixel's strongest channel over which it counts as clipped (signal 0.97 → 1)."""
CLIPPED_COLOUR_LUMINANCE = (0.80, 0.90)
"""BT.709 luminance below which a clipped pixel is a colour, not light, for the curve (above 0.9: light)."""

DEFAULT_PARAMS = (0.0, 1.0)
"""(a, b) used when a frame has too few well-exposed pixels and no previous fit: identity."""


def default_params(frames: int, device: torch.device | str) -> torch.Tensor:
    """:data:`DEFAULT_PARAMS` for ``frames`` frames, (frames, 2) float32, filled on ``device``: a
    tensor made from Python numbers on a GPU is a copy the host waits for."""
    return torch.stack([torch.full((frames,), v, device=device) for v in DEFAULT_PARAMS], 1)

_EPS = 1e-6


@dataclass(frozen=True)
class CalibrationConfig:
    """Parameters of the calibration (signal thresholds are SDR code values in [0, 1])."""

    white_nits: float = SDR_WHITE_NITS
    peak_nits: float = 1000.0
    fit_lo: float = 0.06
    fit_hi: float = 0.85
    blend_lo: float = 0.95
    blend_hi: float = 0.99
    luma_lo: float = 0.90
    luma_hi: float = 0.98
    knee_fraction: float = 0.5
    min_fraction: float = 0.02
    slope_min: float = 0.25
    slope_max: float = 4.0
    strength: float = 1.0
    """How bold the expansion is: the log gain is multiplied by it (1: as trained; 0: BT.2408
    alone; above 1: more light on the same highlights). ``convert --strength``."""
    curve_ip: float = 0.0
    """The smooth inverse tone curve under the network's gain (:func:`curve_log_gain_planes`):
    its inflection point as a share of SDR white (0: no curve, the network's gain alone)."""
    curve_c: float = 1.0 - 0.74204
    """The curve's shape above the inflection point (BT.2446-1 Method C: c = 1 − k3)."""
    curve_strength: float = 1.0
    """The curve's log gain is multiplied by it (``--strength`` alone: 0 gives BT.2408)."""
    area_lo: float = 0.0
    area_hi: float = 0.0
    """The area rule (:func:`coloured_area_weight`; 0 and 0: off): the network's gain fades out
    where the share of bright *coloured* pixels around a pixel rises from ``area_lo`` to ``area_hi``."""
    area_cells: float = 16.0
    """The area rule's grid: the share is taken over 3 × 3 cells of 1/``area_cells`` of the frame's
    long side each (16: a neighbourhood of about 3/16 of the frame, whatever its size)."""

    @property
    def curve_max(self) -> float:
        """The curve's largest log gain (at SDR white), 0 without a curve."""
        if self.curve_ip <= 0 or self.curve_ip >= 1:
            return 0.0
        t, c = 1.0 / self.curve_ip, self.curve_c
        return self.curve_strength * math.log((c * math.exp((t - 1) / c) + 1 - c) / t)

    @property
    def knee_nits(self) -> float:
        """Where the shoulder starts: ``knee_fraction`` × the peak, but not below SDR white nor
        above half the peak (for peaks below 406 cd/m², half the peak)."""
        return min(max(self.white_nits, self.knee_fraction * self.peak_nits), 0.5 * self.peak_nits)


def well_exposed(sdr_signal: torch.Tensor, cfg: CalibrationConfig) -> torch.Tensor:
    """(B, 3, H, W) SDR signal → (B, 1, H, W) bool: every channel within ``[fit_lo, fit_hi]``."""
    return (sdr_signal.amin(1, keepdim=True) >= cfg.fit_lo) & (sdr_signal.amax(1, keepdim=True) <= cfg.fit_hi)


def fit_params(
    sdr_signal: torch.Tensor,
    sdr_linear: torch.Tensor,
    net: torch.Tensor,
    cfg: CalibrationConfig,
    fallback: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``log Y_sdr ≈ a + b·log Y_net`` per frame on well-exposed pixels.

    sdr_signal (B, 3, H, W) display-encoded [0, 1]; sdr_linear (B, 3, H, W) relative linear;
    net (B, 3, H, W) relative linear network output. fallback (2,) or (B, 2) for frames that
    cannot be fitted. Returns params (B, 2) = (a, b) and confidence (B,) in [0, 1] (0: fallback).
    """
    b = sdr_signal.shape[0]
    mask = well_exposed(sdr_signal, cfg).flatten(1).to(net.dtype)  # (B, N)
    x = torch.log(luminance(net, LUMA_BT709).clamp(min=_EPS)).flatten(1)
    y = torch.log(luminance(sdr_linear, LUMA_BT709).clamp(min=_EPS)).flatten(1)
    n = mask.sum(1)
    safe_n = n.clamp(min=1)
    mx = (mask * x).sum(1) / safe_n
    my = (mask * y).sum(1) / safe_n
    dx, dy = (x - mx[:, None]) * mask, (y - my[:, None]) * mask
    var = (dx * dx).sum(1) / safe_n
    cov = (dx * dy).sum(1) / safe_n
    slope = (cov / var.clamp(min=1e-8)).clamp(cfg.slope_min, cfg.slope_max)
    # too little spread to fit a slope: keep b = 1 and match the means
    flat = var < 1e-4
    slope = torch.where(flat, torch.ones_like(slope), slope)
    a = my - slope * mx
    params = torch.stack((a, slope), dim=1)
    fraction = n / mask.shape[1]
    ok = fraction >= cfg.min_fraction
    if fallback is None:
        fallback = default_params(1, params.device)
    fallback = fallback.to(params).expand(b, 2)
    params = torch.where(ok[:, None], params, fallback)
    confidence = torch.where(ok, (fraction / 0.25).clamp(max=1.0), torch.zeros_like(fraction))
    return params, confidence


def smoothstep(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """0 below ``lo``, 1 above ``hi``, the cubic 3t² − 2t³ between (any shape)."""
    t = ((x - lo) / (hi - lo)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def highlight_weight(sdr_signal: torch.Tensor, cfg: CalibrationConfig) -> torch.Tensor:
    """Where expansion may act, (B, 3, H, W) SDR signal → (B, 1, H, W) in [0, 1]: a smoothstep of
    the largest channel from ``blend_lo`` to ``blend_hi`` (the SDR neared clipping), times, when
    ``luma_hi > 0``, a smoothstep of the BT.709 luma Y' from ``luma_lo`` to ``luma_hi``: light
    that clipped is bright in every channel, while a saturated colour whose strongest channel
    clipped (orange hair, red leaves: luma 0.2–0.6) is left exactly as the SDR has it."""
    return highlight_weight_planes(*sdr_signal.unbind(1), cfg).unsqueeze(1)


def highlight_weight_planes(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor, cfg: CalibrationConfig) -> torch.Tensor:
    """:func:`highlight_weight` from the three SDR signal planes (any one shape) → that shape
    (compiled loops that hold R', G', B' apart use it directly: hdrvideo.pipeline.quads)."""
    w = smoothstep(torch.maximum(torch.maximum(r, g), b), cfg.blend_lo, cfg.blend_hi)
    if cfg.luma_hi > 0:
        k = LUMA_BT709
        w = w * smoothstep(k[0] * r + k[1] * g + k[2] * b, cfg.luma_lo, cfg.luma_hi)
    return w


AREA_BRIGHT = (0.80, 0.95)
"""Largest channel (signal) over which a pixel counts as bright for the area rule."""
AREA_WHITE = (0.75, 0.92)
"""Smallest over largest channel (signal) over which a bright pixel counts as white, not coloured."""


def coloured_area_weight(sdr_signal: torch.Tensor, cfg: CalibrationConfig) -> torch.Tensor | None:
    """The area rule, (B, 3, h, w) SDR signal → (B, 1, h, w) in [0, 1] (None when off): 1 − a
    smoothstep, from ``cfg.area_lo`` to ``cfg.area_hi``, of the share of bright *coloured* pixels
    (largest channel near clipping, smallest well below it) around each pixel.

    Why. A lamp, an LED strip, a flame or a sunlit sign is a small bright colour among darker
    surroundings; a clear sky whose blue channel clipped, or a large painted surface, is a bright
    colour that fills its neighbourhood. Pixel by pixel they look alike (on the shared gain-map
    photo the clipped sky has Y' 0.85 and a smallest channel of 0.6–0.8, as the ACES candle flame
    does), but HDR renditions treat them differently: the camera's own HDR keeps that sky level
    with its SDR (×0.97 after the exposure fit), while studio-made pairs give coloured emitters
    2.5–3.5×. The rule multiplies the network's gain (never the curve's), so it can only take
    light away, and leaves white light alone however large (a clipped white sky: ×5 in ACES 2.0).
    The share is averaged on a coarse grid (``cfg.area_cells``), so it costs two small passes."""
    if cfg.area_hi <= 0:
        return None
    mx, mn = sdr_signal.amax(1, keepdim=True), sdr_signal.amin(1, keepdim=True)
    coloured = smoothstep(mx, *AREA_BRIGHT) * (1 - smoothstep(mn / mx.clamp(min=_EPS), *AREA_WHITE))
    h, w = coloured.shape[-2:]
    s = cfg.area_cells / max(h, w)
    grid = F.adaptive_avg_pool2d(coloured.float(), (max(1, round(h * s)), max(1, round(w * s))))
    grid = F.avg_pool2d(grid, 3, stride=1, padding=1, count_include_pad=False)
    share = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
    return (1 - smoothstep(share, cfg.area_lo, cfg.area_hi)).to(sdr_signal.dtype)


def curve_log_gain_planes(
    lr: torch.Tensor, lg: torch.Tensor, lb: torch.Tensor, cfg: CalibrationConfig
) -> torch.Tensor | None:
    """The smooth inverse tone curve's log gain from the SDR's *linear* BT.709 planes (relative,
    1 = SDR white; any one shape) → that shape, ≥ 0; None without a curve (``cfg.curve_ip`` 0).

    BT.2446-1 Method C's inverse shape (:func:`~hdrvideo.colour.bt2446.inverse_curve`) on BT.709
    luminance: 1 below the inflection point, rising smoothly to ``e^cfg.curve_max`` at SDR white,
    the same factor on all three channels (chromaticity kept). Unlike the light gate it expands
    every highlight an SDR grade rolled off below clipping, as HDR grades of the same scene do.
    Pixels with a clipped channel and a luminance below :data:`CLIPPED_COLOUR_LUMINANCE` get no
    curve: whether such a colour is light is the network's call, behind the light gate."""
    if cfg.curve_ip <= 0:
        return None
    k = LUMA_BT709
    y = k[0] * lr + k[1] * lg + k[2] * lb
    # a colour whose strongest channel clipped below 80 % of white's luminance (a pale or saturated
    # surface the SDR grade pushed into clipping) is left to the network and its gate: the curve,
    # which cannot tell a lamp from a painted wall, keeps it where the SDR has it (the chart test)
    clipped = smoothstep(torch.maximum(torch.maximum(lr, lg), lb), *CLIPPED_CHANNEL)
    keep = 1 - clipped * (1 - smoothstep(y, *CLIPPED_COLOUR_LUMINANCE))
    return inverse_curve_log_gain(y, cfg.curve_ip, cfg.curve_c) * keep * cfg.curve_strength


def pixel_log_gain(
    signal: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    linear: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    raw: torch.Tensor | None,
    cfg: CalibrationConfig,
) -> torch.Tensor | None:
    """The log gain one pixel gets, from its SDR signal planes R', G', B' and linear planes (any
    one shape; the signal only needed with ``raw``) and the network's unweighted log gain there
    (None: no network): the curve
    (:func:`curve_log_gain_planes`) plus the light gate × the network's gain. None where there is
    neither. Every colour path (eager, per-pixel compiled, quads) calls this one function."""
    g = None if raw is None or signal is None else highlight_weight_planes(*signal, cfg) * raw
    curve = curve_log_gain_planes(*linear, cfg)
    if curve is None:
        return g
    return curve if g is None else g + curve


def raw_log_gain(sdr_linear: torch.Tensor, net: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Unweighted log gain ``max(0, log f(Y_net) − log Y_sdr)``, (B, 1, H, W), natural log."""
    a = params[:, 0].view(-1, 1, 1, 1)
    b = params[:, 1].view(-1, 1, 1, 1)
    log_exp = a + b * torch.log(luminance(net, LUMA_BT709).clamp(min=_EPS))
    log_sdr = torch.log(luminance(sdr_linear, LUMA_BT709).clamp(min=_EPS))
    return (log_exp - log_sdr).clamp(min=0)


def expansion_log_gain(
    sdr_signal: torch.Tensor, sdr_linear: torch.Tensor, net: torch.Tensor, params: torch.Tensor, cfg: CalibrationConfig
) -> torch.Tensor:
    """Per-pixel log gain (B, 1, H, W) ≥ 0 to apply to the SDR-in-HDR picture (see module doc, step 3),
    × ``cfg.strength``."""
    return highlight_weight(sdr_signal, cfg) * raw_log_gain(sdr_linear, net, params) * cfg.strength


def soft_shoulder(rgb_nits: torch.Tensor, knee: float, peak: float) -> torch.Tensor:
    """Compress luminance above ``knee`` towards ``peak`` (cd/m²), scaling RGB (B, 3, H, W) alike.

    Luminance is BT.2020 (the input must be BT.2020 linear light in cd/m²); values at or below the
    knee are unchanged. Each channel is then clamped to ``peak``.
    """
    y = luminance(rgb_nits).clamp(min=_EPS)
    span = peak - knee
    compressed = knee + span * (1 - torch.exp(-(y - knee).clamp(min=0) / span))
    scale = torch.where(y > knee, compressed / y, torch.ones_like(y))
    return (rgb_nits * scale).clamp(0, peak)
