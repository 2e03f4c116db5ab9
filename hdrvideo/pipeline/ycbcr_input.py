"""Frames as the decoder gives them: 8-bit Y'CbCr 4:2:0 planes, turned into R'G'B' on the device.

Why. On a GPU the upload of each frame is part of the colour stage's cost (H100, 1080p: 5.2 ms
for the whole stage, most of it copies). An 8-bit 4:2:0 frame is 1.5 bytes a pixel as the
decoder holds it and 3 bytes as ``rgb24``: uploading the planes halves the bytes on the bus and
takes swscale's conversion off the CPU. The processor then makes the same ``(B, H, W, 3)`` uint8
R'G'B' it otherwise receives (:func:`planes_to_rgb`), and everything after is unchanged.

How it differs from the RGB path: swscale's fast unscaled converter repeats each chroma sample
over its 2 × 2 pixels and works in fixed point; :func:`planes_to_rgb` repeats chroma the same way
and computes in float32 with the matrix and range of the source (ITU-R BT.601 / BT.709 / BT.2020
non-constant luminance; limited range: Y' 16–235, Cb/Cr 16–240), rounded to the nearest code.
Grey is identical; with colour the two differ by 3 codes at most, 0.9–1.1 on average (the shared
1080×720 H.264 fixture; generated clips), because swscale's tables put each chroma term on whole
luma codes (its output is about one code darker; ``tests/test_ycbcr_input.py``).

Shapes: y (B, H, W) uint8; cbcr (B, 2, H/2, W/2) uint8 (Cb, Cr); R'G'B' out (B, H, W, 3) uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..colour.ycbcr import KR_KB, dequantize, ycbcr_to_rgb

__all__ = ["YCbCrFrames", "planes_to_rgb", "stack_frames"]


@dataclass
class YCbCrFrames:
    """B frames as 8-bit Y'CbCr 4:2:0 planes, with the matrix and range to read them by.

    y: (B, H, W) uint8; cbcr: (B, 2, H/2, W/2) uint8 (Cb, Cr); matrix: bt601 | bt709 | bt2020;
    full_range: True for 0–255 codes (JPEG range), False for 16–235/240 (video range)."""

    y: np.ndarray | torch.Tensor
    cbcr: np.ndarray | torch.Tensor
    matrix: str
    full_range: bool

    def __post_init__(self) -> None:
        b, h, w = self.y.shape
        if h % 2 or w % 2 or tuple(self.cbcr.shape) != (b, 2, h // 2, w // 2):
            raise ValueError(f"Y'CbCr 4:2:0 planes of {w}×{h} frames need even sizes and (B, 2, H/2, W/2) chroma, "
                             f"got {tuple(self.cbcr.shape)}")  # fmt: skip
        if self.matrix not in KR_KB:
            raise ValueError(f"unknown Y'CbCr matrix {self.matrix!r}; choose from {sorted(KR_KB)}")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(B, H, W, 3): the shape of the R'G'B' frames these planes stand for."""
        b, h, w = self.y.shape
        return b, h, w, 3

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, index: slice) -> YCbCrFrames:
        return YCbCrFrames(self.y[index], self.cbcr[index], self.matrix, self.full_range)


def stack_frames(items: list, matrix: str, full_range: bool) -> np.ndarray | YCbCrFrames:
    """Decoded frames → one batch for :meth:`~.processor.FrameProcessor.process`: R'G'B' arrays
    (H, W, 3) stacked, or planes ``(y, cbcr)`` (:func:`hdrvideo.media.decode.frame_to_input`)
    as one :class:`YCbCrFrames`. A batch that mixes both (a stream whose format changed) is all
    R'G'B', its planes converted here on the CPU."""
    if all(isinstance(it, tuple) for it in items):
        return YCbCrFrames(np.stack([it[0] for it in items]), np.stack([it[1] for it in items]), matrix, full_range)
    rgb = []
    for it in items:
        if isinstance(it, tuple):
            y, cbcr = (torch.from_numpy(a)[None] for a in it)
            it = planes_to_rgb(y, cbcr, matrix, full_range)[0].numpy()
        rgb.append(it)
    return np.stack(rgb)


def planes_to_rgb(y: torch.Tensor, cbcr: torch.Tensor, matrix: str, full_range: bool) -> torch.Tensor:
    """8-bit Y'CbCr 4:2:0 planes on any device → (B, H, W, 3) uint8 R'G'B' on that device, full
    range (as the RGB path's ``rgb24``): chroma repeated over each 2 × 2 block, then the codes'
    own scaling and the matrix's inverse (:func:`~hdrvideo.colour.ycbcr.dequantize`,
    :func:`~hdrvideo.colour.ycbcr.ycbcr_to_rgb`) in float32, rounded and clipped."""
    c = cbcr.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    codes = torch.stack((y, c[:, 0], c[:, 1]), dim=-1)  # (B, H, W, 3): Y', Cb, Cr
    rgb = ycbcr_to_rgb(dequantize(codes, bits=8, limited=not full_range, dim=-1).movedim(-1, -3), matrix)
    return (rgb.movedim(-3, -1) * 255).round_().clamp_(0, 255).to(torch.uint8)
