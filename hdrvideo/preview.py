"""A still for people without an HDR screen: SDR input | HDR result tone-mapped for SDR | the
number of stops each pixel was raised.

The middle panel maps the HDR frame's BT.2020 display light (cd/m²) back to BT.709 and tone-maps
luminance with the extended Reinhard curve (SDR white 203 cd/m² → 0.5, the peak → 1), hue kept,
sRGB-encoded: expanded highlights show as brighter, less clipped highlights.
The right panel is ``log2(HDR / SDR-in-HDR)`` per pixel on a colour scale from 0 to 3 stops, with
its legend.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from . import colour
from .decode import InputError, frame_to_rgb, open_input, probe
from .processor import FrameProcessor, sdr_to_tensor

__all__ = ["render_preview", "write_preview", "preview_from_video"]

MAX_STOPS = 3.0


@torch.no_grad()
def render_preview(processor: FrameProcessor, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) SDR RGB uint8/uint16 → (H, 3·W, 3) uint8 RGB panel strip."""
    signal = sdr_to_tensor(rgb[None], processor.device)
    rel, lin = processor.relative_hdr(signal)
    white, peak = processor.cfg.white_nits, processor.cfg.peak_nits
    y = colour.luminance(rel, colour.LUMA_BT709).clamp(min=1e-6)
    lw = peak / white
    yd = y * (1 + y / (lw * lw)) / (1 + y)  # extended Reinhard: SDR white → 0.5, the peak → 1
    mapped = colour.srgb_inverse_eotf((rel * (yd / y)).clamp(0, 1))
    # stops raised over the SDR-in-HDR picture (the soft shoulder included)
    base = colour.luminance(lin, colour.LUMA_BT709).clamp(min=1e-6)
    stops = torch.log2(y / base).clamp(0, MAX_STOPS) / MAX_STOPS
    sdr8 = (signal[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    hdr8 = (mapped[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    s8 = (stops[0, 0].cpu().numpy() * 255).round().astype(np.uint8)
    heat = cv2.applyColorMap(s8, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    h = rgb.shape[0]
    bar_h = max(8, h // 30)
    legend = np.linspace(0, 255, heat.shape[1]).astype(np.uint8)[None].repeat(bar_h, 0)
    heat = heat.copy()
    heat[-bar_h:] = cv2.applyColorMap(legend, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    strip = np.concatenate([sdr8, hdr8, heat], axis=1)
    scale = max(0.35, h / 720)
    labels = ("SDR input", f"HDR, tone-mapped ({processor.transfer.upper()}, {peak:g} cd/m2 peak)",
              f"stops raised: 0 to {MAX_STOPS:g} (bar)")  # fmt: skip
    w = rgb.shape[1]
    for k, text in enumerate(labels):
        org = (k * w + 8, int(28 * scale) + 4)
        cv2.putText(strip, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(strip, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def write_preview(path: Path, strip: np.ndarray) -> None:
    """Write the strip as PNG (or JPEG by extension), atomically."""
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(strip[:, :, ::-1])):
            raise OSError(f"cannot write a {path.suffix} image")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def preview_from_video(video: Path, frame_index: int | None, processor: FrameProcessor) -> np.ndarray:
    """Decode frame ``frame_index`` (None: the middle frame where the count is known, else the
    first) of an SDR video and render its preview strip. A fresh state: no temporal history."""
    container = open_input(video)
    try:
        info = probe(container, video)
        if frame_index is None:
            frame_index = info.frames // 2 if info.frames else 0
        chosen = None
        for i, frame in enumerate(container.decode(container.streams.video[0])):
            chosen = frame
            if i >= frame_index:
                break
        if chosen is None:
            raise InputError(f"no decodable frame in {video}")
        rgb = frame_to_rgb(chosen, info)
    finally:
        container.close()
    processor.reset()
    temporal, processor.temporal = processor.temporal, None
    try:
        return render_preview(processor, rgb)
    finally:
        processor.temporal = temporal
        processor.reset()
