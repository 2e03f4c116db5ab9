"""Evaluation of expansion models on held-out HDR images, and the flicker metric for video.

Expansion quality (``hdrvideo eval``). For each held-out HDR image and each exposure of a fixed,
seeded virtual camera (sRGB response, sensor noise, 8-bit BT.709 Y'CbCr 4:2:0, no JPEG):

1. the model's prediction is what ``convert`` would show: the SDR decoded by BT.1886, times the
   calibrated expansion gain (:class:`~hdrvideo.pipeline.processor.FrameProcessor` with no display
   shoulder), relative linear BT.709;
2. it is scaled to the reference by one exposure factor, fitted in log luminance on the pixels
   the SDR exposed well (every channel in [0.06, 0.85]);
3. both are put at 203 cd/m² for SDR white (BT.2408) and compared in PU21 (Mantiuk and Azimi
   2021): PU21-PSNR on RGB, PU21-SSIM on luminance, and PU21-PSNR on the pixels the SDR clipped
   (any channel ≥ 250/255): where expansion has to invent light.

The "linear" baseline is the BT.2408 mapping with no expansion (gain 1 everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import colour
from ..colour.pu21 import pu21_psnr, pu21_ssim
from ..model import ExpandNet
from ..pipeline.calibrate import CalibrationConfig, well_exposed
from ..pipeline.processor import FrameProcessor
from .data import Scene
from .degrade import CameraConfig, VirtualCamera

__all__ = ["EVAL_STOPS", "EvalResult", "evaluate", "format_table", "flicker"]

EVAL_STOPS = (-1.0, 0.0, 1.0)
"""Exposures of the evaluation camera, in stops from auto-exposure."""
CLIP_CODE = 250 / 255
EVAL_CAMERA = CameraConfig(jpeg_prob=0.0, ycbcr420_prob=1.0)


@dataclass
class EvalResult:
    """Means over images × exposures (clipped PSNR over those with clipped pixels)."""

    psnr: float
    ssim: float
    psnr_clipped: float
    n: int
    n_clipped: int


def _exposure_fit(pred: torch.Tensor, ref: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    cfg = CalibrationConfig()
    ok = well_exposed(signal, cfg)
    lp = torch.log(colour.luminance(pred, colour.LUMA_BT709).clamp(min=1e-6))
    lr = torch.log(colour.luminance(ref, colour.LUMA_BT709).clamp(min=1e-6))
    d = (lr - lp)[ok] if ok.sum() > 16 else (lr - lp).flatten()
    return torch.exp(d.mean())


@torch.no_grad()
def evaluate(
    model: ExpandNet | None,
    scenes: list[Scene],
    device: str | torch.device = "cpu",
    stops: tuple[float, ...] = EVAL_STOPS,
    seed: int = 1234,
    max_side: int = 512,
    net_long_side: int | None = None,
) -> EvalResult:
    """Score ``model`` (None: the linear BT.2408 baseline) on the first frame of each scene;
    ``net_long_side`` runs the network on a reduced frame as ``--quality fast`` does."""
    proc = FrameProcessor(model, "pq", 10000.0, device=device, net_long_side=net_long_side)
    cam = VirtualCamera(EVAL_CAMERA)
    gen = torch.Generator(device=proc.device)
    psnr, ssim, clipped = [], [], []
    for i, scene in enumerate(scenes):
        hdr = scene.frames[:1].to(proc.device, torch.float32)
        h, w = hdr.shape[-2:]
        s = min(1.0, max_side / max(h, w))
        size = (max(16, round(h * s / 16) * 16), max(16, round(w * s / 16) * 16))
        hdr = F.interpolate(hdr, size=size, mode="area")
        for stop in stops:
            gen.manual_seed(seed + 97 * i)
            signal, exposure = cam(hdr, gen, curve="srgb", stops=torch.tensor([stop]))
            ref = hdr * exposure.view(-1, 1, 1, 1)
            proc.reset()
            pred, _ = proc.relative_hdr(signal, shoulder=False)
            pred = pred * _exposure_fit(pred, ref, signal)
            white = colour.SDR_WHITE_NITS
            ref_n, pred_n = ref * white, pred * white
            psnr.append(pu21_psnr(pred_n, ref_n).item())
            y = colour.LUMA_BT709
            ssim.append(pu21_ssim(colour.luminance(pred_n, y), colour.luminance(ref_n, y)).item())
            mask = signal.amax(1, keepdim=True) >= CLIP_CODE
            if mask.sum() >= 16:
                clipped.append(pu21_psnr(pred_n, ref_n, mask).item())
    return EvalResult(
        psnr=float(np.mean(psnr)) if psnr else float("nan"),
        ssim=float(np.mean(ssim)) if ssim else float("nan"),
        psnr_clipped=float(np.mean(clipped)) if clipped else float("nan"),
        n=len(psnr),
        n_clipped=len(clipped),
    )


def format_table(results: dict[str, EvalResult]) -> str:
    """Markdown table of results, one row per model."""
    rows = [
        "| model | PU21-PSNR (dB) | PU21-SSIM | PU21-PSNR clipped (dB) | images×exposures (clipped) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        rows.append(f"| {name} | {r.psnr:.2f} | {r.ssim:.4f} | {r.psnr_clipped:.2f} | {r.n} ({r.n_clipped}) |")
    return "\n".join(rows)


def flicker(pq_luma: np.ndarray, block: int = 16) -> tuple[float, float]:
    """Flicker and pumping of a clip from its PQ luma codes (T, H, W) (any scale, e.g. 10-bit codes).

    Flicker: the mean absolute second temporal difference of 16×16 block means (so that encoder
    denoising and grain do not count); pumping: the same on whole-frame mean luma.
    Compare outputs as a ratio to the same figures of a reference rendering of the same clip.
    """
    y = np.asarray(pq_luma, dtype=np.float64)
    t, h, w = y.shape
    if t < 3:
        raise ValueError("flicker needs at least 3 frames")
    hb, wb = h // block, w // block
    blocks = y[:, : hb * block, : wb * block].reshape(t, hb, block, wb, block).mean(axis=(2, 4))
    d2 = np.abs(blocks[2:] - 2 * blocks[1:-1] + blocks[:-2]).mean()
    m = y.mean(axis=(1, 2))
    p2 = np.abs(m[2:] - 2 * m[1:-1] + m[:-2]).mean()
    return float(d2), float(p2)


@torch.no_grad()
def render_luma(processor: FrameProcessor, frames: np.ndarray, batch: int = 4) -> np.ndarray:
    """Run a clip (T, H, W, 3) uint8 through ``processor`` in display order → (T, H, W) 10-bit
    luma codes (float64), for :func:`flicker` and the temporal checks."""
    processor.reset()
    out = [processor.process(frames[i : i + batch]).y for i in range(0, len(frames), batch)]
    return np.concatenate(out).astype(np.float64)
