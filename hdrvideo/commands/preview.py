"""A still for people without an HDR screen: SDR input | HDR result tone-mapped for SDR | the
number of stops each pixel was raised.

The middle panel maps the HDR frame's BT.2020 display light (cd/m²) back to BT.709 and tone-maps
luminance with the extended Reinhard curve (SDR white 203 cd/m² → 0.5, the peak → 1), hue kept,
sRGB-encoded: expanded highlights show as brighter, less clipped highlights.
The right panel is ``log2(HDR / SDR-in-HDR)`` per pixel on a colour scale from 0 to 3 stops, with
its legend; pixels a look placed *below* the SDR-in-HDR picture (``--look aces`` darkens shadows
and mid-tones by 0.6 stop) show in blue, full blue at 1 stop down, on the legend's left quarter.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import colour
from ..media.decode import InputError, frame_to_rgb, open_input, probe
from ..pipeline.processor import FrameProcessor, sdr_to_tensor

__all__ = [
    "render_preview",
    "write_preview",
    "preview_from_video",
    "tonemap_relative",
    "stops_map",
    "tonemap_signal",
    "gui_problem",
    "PreviewWindow",
]

MAX_STOPS = 3.0
MIN_STOPS = -1.0
"""The stops map's range: raised 0 … 3 on the inferno scale, lowered 0 … 1 in blue."""


@torch.no_grad()
def render_preview(processor: FrameProcessor, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) SDR RGB uint8/uint16 → (H, 3·W, 3) uint8 RGB panel strip."""
    signal = sdr_to_tensor(rgb[None], processor.device)
    rel, lin = processor.relative_hdr(signal)
    white, peak = colour.SDR_WHITE_NITS, processor.cfg.peak_nits
    mapped = tonemap_relative(rel, peak / white)
    y = colour.luminance(rel, colour.LUMA_BT709).clamp(min=1e-6)
    # stops raised over the SDR-in-HDR picture (the soft shoulder included)
    base = colour.luminance(lin, colour.LUMA_BT709).clamp(min=1e-6)
    stops = torch.log2(y / base)[0, 0].cpu().numpy()
    sdr8 = (signal[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    hdr8 = (mapped[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    heat = stops_map(stops)
    h = rgb.shape[0]
    bar_h = max(8, h // 30)
    heat[-bar_h:] = stops_map(np.linspace(MIN_STOPS, MAX_STOPS, heat.shape[1], dtype=np.float32)[None].repeat(bar_h, 0))
    strip = np.concatenate([sdr8, hdr8, heat], axis=1)
    scale = max(0.35, h / 720)
    labels = ("SDR input", f"HDR, tone-mapped ({processor.transfer.upper()}, {peak:g} cd/m2 peak)",
              f"stops: {MIN_STOPS:g} (blue) to +{MAX_STOPS:g} (bar)")  # fmt: skip
    w = rgb.shape[1]
    for k, text in enumerate(labels):
        org = (k * w + 8, int(28 * scale) + 4)
        cv2.putText(strip, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(strip, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def stops_map(stops: np.ndarray) -> np.ndarray:
    """(H, W) float stops over the SDR-in-HDR picture → (H, W, 3) uint8 RGB: 0 … +3 on the inferno
    scale (black at 0), below 0 in blue (full at :data:`MIN_STOPS`)."""
    up = (np.clip(stops, 0, MAX_STOPS) / MAX_STOPS * 255).round().astype(np.uint8)
    out = cv2.applyColorMap(up, cv2.COLORMAP_INFERNO)[:, :, ::-1].copy()
    down = np.clip(stops / MIN_STOPS, 0, 1)  # 0 where raised or unchanged, 1 at MIN_STOPS and below
    lowered = down > 1 / 255
    blue = np.stack([0.15 * down, 0.45 * down, down], -1) * 255
    out[lowered] = blue[lowered].round().astype(np.uint8)
    return out


def tonemap_relative(rel: torch.Tensor, peak: float) -> torch.Tensor:
    """Linear BT.709 (B, 3, H, W) relative to SDR white (1.0) → sRGB-encoded [0, 1]: extended Reinhard on
    luminance with the hue kept; SDR white → 0.5, ``peak`` (relative) → 1."""
    y = colour.luminance(rel, colour.LUMA_BT709).clamp(min=1e-6)
    yd = y * (1 + y / (peak * peak)) / (1 + y)
    return colour.srgb_inverse_eotf((rel * (yd / y)).clamp(0, 1))


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


# -- the live preview window (hdrvideo stream --preview) ------------------------------------------
def gui_problem() -> str | None:
    """Why an OpenCV window cannot open here (None: it can)."""
    if "GUI:                           NONE" in cv2.getBuildInformation().replace("\t", " ") or not hasattr(
        cv2, "namedWindow"
    ):
        return (
            "--preview needs the GUI build of OpenCV (this one is headless): "
            "pip uninstall -y opencv-python-headless && pip install 'hdrvideo[gui]'"
        )
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "--preview needs a display (DISPLAY / WAYLAND_DISPLAY is not set)"
    return None


@torch.no_grad()
def tonemap_signal(signal: torch.Tensor, transfer: str, peak_nits: float, white_nits: float = 203.0) -> torch.Tensor:
    """HDR signal (B, 3, H, W) PQ or HLG BT.2020 in [0, 1] → (B, 3, H, W) sRGB-encoded [0, 1] for an
    SDR screen: the same extended-Reinhard luminance curve as the preview still (SDR white → 0.5)."""
    if transfer == "pq":
        nits = colour.pq_eotf(signal)
    else:
        nits = colour.hlg_ootf(colour.hlg_inverse_oetf(signal), peak_nits)
    rel = colour.rgb_to_rgb(nits, colour.BT2020_TO_BT709).clamp(min=0) / white_nits
    return tonemap_relative(rel, peak_nits / white_nits)


class PreviewWindow:
    """An OpenCV window: the camera picture beside the tone-mapped HDR result, at most
    ``max_width`` pixels wide. ``show`` returns False once the user closed it (or pressed q/Esc)."""

    TITLE = "hdrvideo stream: SDR input | HDR (tone-mapped)"

    def __init__(self, transfer: str, peak_nits: float, max_width: int = 1280) -> None:
        problem = gui_problem()
        if problem is not None:
            raise RuntimeError(problem)
        self.transfer, self.peak_nits, self.max_width = transfer, peak_nits, max_width
        try:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise RuntimeError(f"--preview: cannot open a window ({str(e).strip().splitlines()[-1]})") from None

    def show(self, rgb: np.ndarray, signal: torch.Tensor) -> bool:
        """rgb (H, W, 3) SDR uint8/uint16; signal (B, 3, H, W) the batch's HDR signal (its last frame is shown)."""
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_width / (2 * w))
        size = (max(2, round(h * scale)), max(2, round(w * scale)))
        small = torch.nn.functional.interpolate(signal[-1:].float(), size=size, mode="area")
        hdr8 = (tonemap_signal(small, self.transfer, self.peak_nits)[0].permute(1, 2, 0).cpu().numpy() * 255).round()
        sdr = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        if sdr.dtype != np.uint8:
            sdr = (sdr / 257).round()
        strip = np.concatenate([sdr.astype(np.uint8), hdr8.astype(np.uint8)], axis=1)
        cv2.imshow(self.TITLE, np.ascontiguousarray(strip[:, :, ::-1]))
        key = cv2.waitKey(1) & 0xFF
        try:
            visible = cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        return visible and key not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.TITLE)
        except cv2.error:
            pass
