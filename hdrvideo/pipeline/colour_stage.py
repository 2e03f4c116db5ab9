"""The colour stage as pure functions: SDR light and expansion gain → 10-bit Y'CbCr 4:2:0 planes.

    SDR codes ─ BT.1886 (a 256-entry table for 8-bit) → SDR linear, BT.709, relative
      × expansion gain · 203 cd/m² (BT.2408) → BT.709 → BT.2020 (BT.2087) → soft shoulder (cd/m²)
      → PQ (SMPTE ST 2084) or HLG (BT.2100) R'G'B' → Y'CbCr BT.2020 NCL → 4:2:0 → 10-bit codes
      → (PQ) luma lowered where a decoder's 4:2:0 reconstruction would pass the peak; light levels.

Everything is per pixel (4:2:0 only pairs neighbouring pixels), so it can run two ways, see
:class:`~hdrvideo.pipeline.processor.FrameProcessor`:

- **eager** (:func:`planes`, :func:`limit_to_peak`), in bands of rows: each PyTorch operation is
  a pass over the band, the band small enough to stay in cache; the reference;
- **fused**, for PQ from 8-bit BT.1886 frames, compiled by TorchInductor into loops with no
  frame-sized intermediates but their outputs. On a GPU (Triton): :func:`fused_light` (the
  per-pixel chain written one channel at a time, powers as exp·log), :func:`subsample` (the 4:2:0
  stencils) and :func:`fused_limit` (the peak limit and light levels). On a CPU (C++/OpenMP) the
  same steps over 2×2 quads (:mod:`hdrvideo.pipeline.quads`), with BT.1886 and PQ looked up in
  :class:`Tables`. Codes within one of the eager path's on a few samples in ten thousand
  (tests/test_compiled.py). See :mod:`hdrvideo.pipeline.compiled` for how they are compiled,
  cached and fallen back from.

Shapes: SDR linear (B, 3, H, W) relative to SDR white; log gain (B, 1, H, W) natural log; luma
codes (B, H, W); chroma codes (B, 2, H/2, W/2); light levels (B, 2) = (max, mean) of max(R, G, B)
in cd/m².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .. import colour
from ..colour import tables as T
from ..colour.transfer import PQ, PQ_PEAK_NITS
from ..colour.ycbcr import (
    KR_KB,
    chroma_downsample_420,
    chroma_upsample_420,
    quantize_planes,
    rgb_to_ycbcr,
)
from .calibrate import CalibrationConfig, pixel_log_gain, smoothstep, soft_shoulder

__all__ = [
    "StageConstants",
    "Tables",
    "tables_for",
    "display_light",
    "encode_transfer",
    "planes",
    "limit_to_peak",
    "frame_stats",
    "fused_light",
    "subsample",
    "fused_limit",
    "network_input",
]

LUMA_CODES_PER_UNIT = 876.0
"""10-bit limited-range luma codes per unit of Y' (940 − 64, ITU-R BT.2100 Table 9)."""

TRANSFERS = ("pq", "hlg")


@dataclass(frozen=True)
class StageConstants:
    """What the stage needs to know: levels in cd/m² and the transfer ("pq" or "hlg")."""

    white_nits: float
    knee_nits: float
    peak_nits: float
    transfer: str
    peak_signal: float = 0.0
    """The PQ signal of the peak (SMPTE ST 2084), a plain number that compiled code sees as a
    constant: filled in from ``peak_nits``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak_signal", pq_signal(self.peak_nits))


class Tables(NamedTuple):
    """The transfer functions as tables (:mod:`hdrvideo.colour.tables`), for the fused stage on a
    CPU: BT.1886 of the 256 8-bit codes, PQ by the bits of the light, the PQ EOTF on a grid."""

    bt1886: torch.Tensor
    pq: torch.Tensor
    pq_eotf: torch.Tensor


def tables_for(device: torch.device) -> Tables | None:
    """The tables where they pay, None where the powers are cheaper.

    On a CPU, with the tables and over quads (:mod:`hdrvideo.pipeline.quads`), the fused stage took
    14.0 against 32.4 ms per 1080p frame per pixel with exp·log (2-core EPYC, ``python
    scripts/bench_colour.py --candidates``), with codes closer to a float64 computation. (The soft
    shoulder's exp and division looked up the same way cost as much as computed, and are not.)
    On a GPU the powers are cheap beside the upload and download, and the measured path
    (exp·log, docs/speed.md "On a GPU") is kept."""
    if device.type != "cpu":
        return None
    return Tables(T.bt1886_table(device), T.pq_table(device), T.pq_eotf_table(device))


def pq_signal(nits: float) -> float:
    """PQ signal of one light level in cd/m² (SMPTE ST 2084 inverse EOTF, float64)."""
    return float(colour.pq_inverse_eotf(torch.tensor(nits, dtype=torch.float64)))


def display_light(sdr_linear: torch.Tensor, log_gain: torch.Tensor | None, c: StageConstants) -> torch.Tensor:
    """SDR linear (B, 3, H, W) BT.709 relative and log gain (B, 1, H, W) (None: no expansion) →
    BT.2020 display light (B, 3, H, W) in cd/m², with the soft shoulder to the peak."""
    nits709 = sdr_linear * c.white_nits if log_gain is None else sdr_linear * torch.exp(log_gain) * c.white_nits
    nits = colour.rgb_to_rgb(nits709, colour.BT709_TO_BT2020)
    return soft_shoulder(nits, c.knee_nits, c.peak_nits)


def encode_transfer(nits: torch.Tensor, transfer: str, peak_nits: float) -> torch.Tensor:
    """BT.2020 display light (B, 3, H, W) in cd/m² → PQ (SMPTE ST 2084) or HLG (BT.2100) signal [0, 1]."""
    if transfer == "pq":
        return colour.pq_inverse_eotf(nits)
    if transfer == "hlg":
        return colour.hlg_oetf(colour.hlg_inverse_ootf(nits, peak_nits)).clamp(0, 1)
    raise ValueError(f"unknown transfer {transfer!r}; choose from {TRANSFERS}")


def planes(
    sdr_linear: torch.Tensor, log_gain: torch.Tensor | None, c: StageConstants
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """SDR linear (B, 3, H, W), log gain (B, 1, H, W) or None → (luma codes (B, H, W), chroma codes
    (B, 2, H/2, W/2), both rounded floats; the PQ/HLG signal (B, 3, H, W); for HLG the per-pixel
    max(R, G, B) in cd/m² (B, H, W), for PQ None: its levels come from :func:`limit_to_peak`)."""
    nits = display_light(sdr_linear, log_gain, c)
    sig = encode_transfer(nits, c.transfer, c.peak_nits)
    ycc = rgb_to_ycbcr(sig, "bt2020")
    y, uv = quantize_planes(ycc[:, 0], chroma_downsample_420(ycc[:, 1:]), bits=10, limited=True)
    return y, uv, sig, nits.amax(dim=1) if c.transfer == "hlg" else None


def frame_stats(max_rgb: torch.Tensor) -> torch.Tensor:
    """max(R, G, B) (B, H, W) in cd/m² → (B, 2): its max and mean over each frame."""
    max_rgb = max_rgb.flatten(1)
    return torch.stack((max_rgb.amax(1), max_rgb.mean(1)), dim=1)


def limit_to_peak(y: torch.Tensor, uv: torch.Tensor, peak_signal: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep what a decoder reconstructs within the mastering peak, and measure it (PQ).

    Chroma subsampling overshoots on saturated edges: R'G'B' rebuilt from 4:2:0 can exceed the
    per-channel clamp made before it (on colour bars, up to 2,400 cd/m² in a 1,000 cd/m²
    master). Every channel of a pixel is Y' plus a function of Cb and Cr, so lowering Y' by the
    excess of its largest channel over PQ(peak) brings that pixel exactly to the peak, without
    touching chroma or any other pixel. y (B, H, W) float luma codes, uv (B, 2, H/2, W/2)
    codes, peak_signal the PQ signal of the peak (:func:`pq_signal`) → (the corrected luma
    codes, (B, 2) MaxCLL/MaxFALL inputs in cd/m²)."""
    return fused_limit(y, chroma_upsample_420(uv), peak_signal)


def _pow(x: torch.Tensor, m: float) -> torch.Tensor:
    """x^m for x ≥ 0 as exp(m·log x): the same function; compiled on a CPU, twice as fast as
    ``pow`` (vectorised exp and log against a general-purpose pow)."""
    return torch.exp(m * torch.log(x))


def _pq(nits: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 inverse EOTF, cd/m² → signal: :func:`hdrvideo.colour.pq_inverse_eotf` with
    its powers written as :func:`_pow`."""
    y = _pow((nits * (1.0 / PQ_PEAK_NITS)).clamp(0, 1), PQ.M1)
    return _pow((PQ.C1 + PQ.C2 * y) / (1 + PQ.C3 * y), PQ.M2)


def _pq_nits(signal: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 EOTF, signal → cd/m²: :func:`hdrvideo.colour.pq_eotf` with :func:`_pow`."""
    p = _pow(signal.clamp(0, 1), 1 / PQ.M2)
    return PQ_PEAK_NITS * _pow((p - PQ.C1).clamp(min=0) / (PQ.C2 - PQ.C3 * p), 1 / PQ.M1)


def fused_light(
    planar: torch.Tensor,
    log_gain: torch.Tensor | None,
    c: StageConstants,
    cfg: CalibrationConfig,
    keep_signal: bool,
    shoulder: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The per-pixel part of the stage for PQ, one channel at a time (so that TorchInductor fuses
    it into one vectorised loop), from 8-bit planes.

    planar (B, 3, H, W) uint8 R'G'B' codes; log_gain (B, 1, H, W) the *unweighted* log gain at
    full resolution, or None; shoulder False: the caller knows that no pixel passes the knee (the
    gain is too small: see ``FrameProcessor._shoulders``), and the shoulder, then 1, is skipped
    → (luma codes (B, H, W), rounded float; Cb and Cr (B, 2, H, W) before subsampling; the PQ
    signal (B, 3, H, W) if ``keep_signal``). Same steps as :func:`planes`. (On a CPU the same
    steps run over 2×2 quads with tables: :mod:`hdrvideo.pipeline.quads`.)"""
    signal = planar.float() * (1.0 / 255.0)  # divisions by constants as products: a vector divide costs
    # as much as an exp here, and the compiler may not turn one into the other (not exact)
    lin = [_pow(signal[:, i], 2.4) for i in range(3)]  # BT.1886 (Lw = 1, Lb = 0), BT.709, relative
    raw = None if log_gain is None else log_gain[:, 0]
    gain = pixel_log_gain(signal.unbind(1), lin, raw, cfg)
    k = c.white_nits if gain is None else torch.exp(gain) * c.white_nits
    lin = [v * k for v in lin]  # cd/m²
    m = colour.BT709_TO_BT2020
    rgb = [m[i][0] * lin[0] + m[i][1] * lin[1] + m[i][2] * lin[2] for i in range(3)]
    if (gain is not None and shoulder) or c.knee_nits < c.white_nits:
        rgb = shoulder_channels(rgb, c)
    # else no pixel passes SDR white, below the knee: the shoulder is 1 (saves an exp per pixel)
    r, g, b = (_pq(v.clamp(0, c.peak_nits)) for v in rgb)
    kr, kb = KR_KB["bt2020"]
    luma = kr * r + (1 - kr - kb) * g + kb * b
    chroma = torch.stack(((b - luma) * (1 / (2 - 2 * kb)), (r - luma) * (1 / (2 - 2 * kr))), dim=1)
    codes = (luma * LUMA_CODES_PER_UNIT + 64).round().clamp(0, 1023)
    return codes, chroma, torch.stack((r, g, b), dim=1) if keep_signal else None


def shoulder_channels(rgb: list[torch.Tensor], c: StageConstants) -> list[torch.Tensor]:
    """:func:`~hdrvideo.pipeline.calibrate.soft_shoulder` on BT.2020 R, G, B held apart (each any
    one shape, cd/m²), for compiled loops; products for divisions by constants (see
    :func:`fused_light`). The channels are not clamped to the peak here."""
    w = colour.LUMA_BT2020
    y = (w[0] * rgb[0] + w[1] * rgb[1] + w[2] * rgb[2]).clamp(min=1e-6)
    span = c.peak_nits - c.knee_nits
    compressed = c.knee_nits + span * (1 - torch.exp((y - c.knee_nits).clamp(min=0) * (-1.0 / span)))
    scale = torch.where(y > c.knee_nits, compressed / y, torch.ones_like(y))
    return [v * scale for v in rgb]


def limit_pixel(
    y: torch.Tensor, cb_codes: torch.Tensor, cr_codes: torch.Tensor, peak_signal: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pixel of the peak limit (:func:`limit_to_peak`): its luma code and the chroma codes a
    decoder rebuilds there (any one shape) → (the luma code lowered until the largest rebuilt
    channel is within ``peak_signal``, rounded float; that largest channel, PQ signal)."""
    kr, kb = KR_KB["bt2020"]
    luma = (y - 64) * (1 / LUMA_CODES_PER_UNIT)  # products, not divisions (see fused_light)
    cb, cr = ((v - 512) * (1 / 896) for v in (cb_codes, cr_codes))
    r = luma + (2 - 2 * kr) * cr
    b = luma + (2 - 2 * kb) * cb
    g = (luma - kr * r - kb * b) * (1 / (1 - kr - kb))
    top = torch.maximum(torch.maximum(r, g), b)
    steps = torch.ceil(((top - peak_signal) * LUMA_CODES_PER_UNIT - 1e-3).clamp(min=0))
    return y - steps, top - steps * (1 / LUMA_CODES_PER_UNIT)


def subsample(y: torch.Tensor, chroma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """4:2:0 and quantisation of :func:`fused_light`'s chroma (B, 2, H, W) → (chroma codes
    (B, 2, H/2, W/2), what a decoder rebuilds from them (B, 2, H, W)). Compiled as a graph of its
    own: inside :func:`fused_light` or :func:`fused_limit` these stencils would keep those loops
    from being vectorised; alone, compiled, they take 5.0 ms per 1080p frame against 8.4 ms
    eager (2-core EPYC), with the same codes."""
    _, uv = quantize_planes(y, chroma_downsample_420(chroma), bits=10, limited=True)
    return uv, chroma_upsample_420(uv)


def fused_limit(y: torch.Tensor, rebuilt_chroma: torch.Tensor, peak_signal: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-pixel body of :func:`limit_to_peak` (both paths use it; compiled, it is one
    vectorised loop): luma codes (B, H, W) and the decoder's chroma codes at full resolution
    (B, 2, H, W) → (luma codes (B, H, W), rounded float: a conversion to an
    integer type here would keep TorchInductor from vectorising the loop; light levels (B, 2) cd/m²)."""
    y, top = limit_pixel(y, rebuilt_chroma[:, 0], rebuilt_chroma[:, 1], peak_signal)
    return y, frame_stats(_pq_nits(top))


LIGHT_KEPT = (0.85, 0.97)
"""Largest channel (signal) of a block's brightest values over which :func:`downscale_signal`
keeps them rather than the block's mean: a lamp or a strip thinner than a block stays light."""


def _keep_light(mean: torch.Tensor, peak: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Block means and per-channel block maxima (channels on ``dim``) → the network's input: the
    mean, moved to the maximum where that maximum nears clipping (smoothstep of its largest
    channel over :data:`LIGHT_KEPT`)."""
    return mean + (peak - mean) * smoothstep(peak.amax(dim, keepdim=True), *LIGHT_KEPT)


def downscale_signal(signal: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 3, H, W) signal [0, 1] → (B, 3, h, w): the network's input in fast mode. Area means,
    except in blocks whose brightest pixel nears clipping, which keep that light
    (:func:`_keep_light`): averaged with the dark wall around it, an LED strip 2 px thin at 1080p
    is half a pixel of dim grey at 480 px, which the network cannot tell from a wall."""
    return _keep_light(F.interpolate(signal, size=size, mode="area"), F.adaptive_max_pool2d(signal, size)).contiguous()


def network_input(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB → the network's input (B, 3, h, w) float32 signal [0, 1], scaled
    down by area averaging (as the eager path scales the full-resolution signal). Planar
    (contiguous NCHW) whatever the frames' layout: the compiled calibration and log gain at the
    network's resolution ran 12× and 4× slower on channels-last inputs (4.2 against 0.34 ms, 1.1
    against 0.24 ms per 480×270 frame on the 2-core CPU; the network makes its own layout)."""
    b, height, width, _ = frames.shape
    h, w = size
    if height % h == 0 and width % w == 0:
        # a whole number of pixels per sample (1080p and 2160p to 480×270): the same means as
        # sums of the 8-bit codes (to float rounding), 1.5 against 3.7 ms for a 1080p frame on
        # one thread of the 2-core CPU (the area interpolation reads the frame channel-strided)
        fy, fx = height // h, width // w
        # (the light kept as in downscale_signal, worked out before the one change of layout:
        # compiled, 40 against 54 ms for a 1080p frame when done after it; the mean alone 36 ms)
        blocks = frames.view(b, h, fy, w, fx, 3).float()
        mean = blocks.sum((2, 4)) * (1.0 / (255.0 * fy * fx))
        peak = blocks.amax((2, 4)) * (1.0 / 255.0)
        return _keep_light(mean, peak, dim=-1).permute(0, 3, 1, 2).contiguous()
    return downscale_signal(frames.permute(0, 3, 1, 2).float() / 255.0, size).contiguous()
