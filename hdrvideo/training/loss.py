"""What one training step compares: the calibrated targets, the expansion loss, the temporal loss.

- :func:`compute_targets`: the reference light scaled as ``convert`` calibrates (its log luminance
  matched to the SDR decoded by BT.1886 on well-exposed pixels), ÷ :data:`TARGET_SCALE` (output
  1.0 = 32× SDR white), clamped to [0, 1];
- :func:`curve_gain`: with ``train --curve``, the reference is divided by the smooth curve's
  gain first, so that the network learns what the curve under it leaves (the model's expansion
  settings at inference, :func:`~hdrvideo.pipeline.calibrate.curve_log_gain_planes`);
- :func:`expansion_loss`: L1 in a perceptual domain + 5 × (1 − cos) of the RGB vectors (the
  authors' loss), weighted where the SDR neared clipping, + the over-expansion penalty;
- :func:`temporal_loss`: the frame-to-frame change of prediction against the target's.

Shapes: (B, 3, H, W) throughout; light relative to SDR white unless said.
"""

from __future__ import annotations

import torch

from .. import colour
from ..colour.pu21 import pu21_encode
from ..pipeline.calibrate import CalibrationConfig, curve_log_gain_planes, highlight_weight, well_exposed

__all__ = ["TARGET_SCALE", "LOSS_DOMAINS", "compute_targets", "curve_gain", "expansion_loss", "temporal_loss"]

TARGET_SCALE = 32.0
"""Relative light (1 = SDR white) that the network's output 1.0 stands for."""
LOSS_DOMAINS = ("log", "pu21", "linear")

FALLBACK_BELOW = 0.80  # largest channel under which a pixel is unclipped, for the exposure fallback (not the gate)


def compute_targets(hdr: torch.Tensor, exposure: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """Calibrated targets (B, 3, H, W) in [0, 1] for the SDR ``signal`` made from ``hdr`` (module doc, step 3)."""
    cfg = CalibrationConfig()
    rel = hdr * exposure.view(-1, 1, 1, 1)
    sdr = colour.bt1886_eotf(signal)
    ok = well_exposed(signal, cfg).flatten(1).float()
    lr = torch.log(colour.luminance(rel, colour.LUMA_BT709).clamp(min=1e-6)).flatten(1)
    ls = torch.log(colour.luminance(sdr, colour.LUMA_BT709).clamp(min=1e-6)).flatten(1)
    n = ok.sum(1)
    # samples with too few well-exposed pixels fall back to all pixels below clipping
    below = (signal.amax(1) < FALLBACK_BELOW).flatten(1).float()
    use = torch.where((n >= 64)[:, None], ok, below)
    offset = ((ls - lr) * use).sum(1) / use.sum(1).clamp(min=1)
    return (rel * torch.exp(offset).view(-1, 1, 1, 1) / TARGET_SCALE).clamp(0, 1)


def curve_gain(signal: torch.Tensor, curve: tuple[float, float]) -> torch.Tensor:
    """The log gain (B, 1, H, W) that the curve (ip, c) gives the SDR ``signal`` (B, 3, H, W) at
    inference (:func:`~hdrvideo.pipeline.calibrate.curve_log_gain_planes`, strength 1)."""
    cfg = CalibrationConfig(curve_ip=curve[0], curve_c=curve[1])
    return curve_log_gain_planes(*colour.bt1886_eotf(signal).unbind(1), cfg).unsqueeze(1)


def _domain(x: torch.Tensor, domain: str) -> torch.Tensor:
    if domain == "log":
        return torch.log(x + 0.01 / TARGET_SCALE)
    if domain == "pu21":
        return pu21_encode(x * TARGET_SCALE * colour.SDR_WHITE_NITS) / 64
    return x


def expansion_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    signal: torch.Tensor,
    domain: str = "log",
    boost: float = 4.0,
    over_weight: float = 0.0,
) -> torch.Tensor:
    """L1 in ``domain`` + 5·(1 − cos) over RGB, weighted 1 + boost where the SDR neared clipping,
    + ``over_weight`` × the excess of prediction over target (same domain and weights) where the
    target's luminance is not above SDR white. pred, target (B, 3, H, W) in [0, 1] (1 = 32×
    SDR white); signal (B, 3, H, W) the SDR input."""
    w = 1 + boost * highlight_weight(signal, CalibrationConfig())
    diff = _domain(pred, domain) - _domain(target, domain)
    l1 = (torch.abs(diff) * w).mean()
    cos = torch.nn.functional.cosine_similarity(pred, target, dim=1, eps=1e-6).unsqueeze(1)
    loss = l1 + 5 * ((1 - cos) * w).mean()
    if over_weight:
        dim = colour.luminance(target, colour.LUMA_BT709) * TARGET_SCALE <= 1.0
        loss = loss + over_weight * (diff.clamp(min=0) * dim * w).mean()
    return loss


def temporal_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pairs (B, 2, 3, H, W): the change from frame 0 to 1 of prediction vs target, log domain."""
    lp, lt = _domain(pred, "log"), _domain(target, "log")
    return torch.abs((lp[:, 1] - lp[:, 0]) - (lt[:, 1] - lt[:, 0])).mean()
