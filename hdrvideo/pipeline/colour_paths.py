"""The colour stage's two paths, beside :mod:`.colour_stage`, behind one small interface.

- :func:`encode_bands`: the eager stage (:func:`~.colour_stage.planes`) in bands of rows, for
  every input (any bit depth, PQ or HLG, BT.1886 or sRGB, the formulas of ``--method``);
- :class:`FusedPath`: the compiled stage for 8-bit frames, PQ and BT.1886, chosen once per
  device: on a CPU the quad loops with tables (:mod:`.quads`), on a GPU the per-pixel form
  (:func:`~.colour_stage.fused_light`, the 4:2:0 stencils, :func:`~.colour_stage.fused_limit`).

Both give the 10-bit codes of the same picture, to within one code on at most 0.1% of samples
(tests/test_compiled.py). Shapes: frames (B, H, W, 3) uint8; SDR linear (B, 3, H, W); log gain
(B, 1, H, W) (the fused path takes it unweighted, at the network's resolution on a CPU);
codes y (B, H, W), uv (B, 2, H/2, W/2); light levels (B, 2) cd/m².
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import colour_stage, quads
from .calibrate import CalibrationConfig
from .compiled import Compiled

__all__ = ["BAND_PIXELS", "encode_bands", "FusedPath"]

BAND_PIXELS = 1 << 16
"""Pixels per band of the colour stage on a CPU (64 K: 768 KiB per float32 RGB intermediate)."""


def encode_bands(
    sdr_linear: torch.Tensor, gain: torch.Tensor | None, stage: colour_stage.StageConstants, keep_signal: bool,
    limit: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:  # fmt: skip
    """The eager colour stage (:func:`~hdrvideo.pipeline.colour_stage.planes`) in bands of rows.

    Every step is per pixel (4:2:0 pairs rows inside a band of even height), so bands give the
    same codes as the whole frame; on a CPU they keep the dozen intermediates of this memory-
    bound chain in cache instead of streaming each through DRAM (see docs/speed.md).
    → y (B, H, W), uv (B, 2, H/2, W/2) float codes, the HDR signal if kept, (B, 2) light levels.
    ``limit``: what keeps PQ within the peak (y, uv → y, light levels; default
    :func:`~hdrvideo.pipeline.colour_stage.limit_to_peak` at the stage's peak).
    """
    b, _, h, w = sdr_linear.shape
    band = h if sdr_linear.device.type == "cuda" else max(2, min(h, (BAND_PIXELS // w) // 2 * 2))
    y = sdr_linear.new_empty(b, h, w)
    uv = sdr_linear.new_empty(b, 2, h // 2, w // 2)
    hdr = sdr_linear.new_empty(b, 3, h, w) if keep_signal else None
    peak_rgb = sdr_linear.new_empty(b, h, w) if stage.transfer == "hlg" else None
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        g = None if gain is None else gain[:, :, r0:r1]
        yb, cb, sig, top = colour_stage.planes(sdr_linear[:, :, r0:r1], g, stage)
        if hdr is not None:
            hdr[:, :, r0:r1] = sig
        if peak_rgb is not None:
            peak_rgb[:, r0:r1] = top
        y[:, r0:r1] = yb
        uv[:, :, r0 // 2 : r1 // 2] = cb
    if peak_rgb is None:
        y, stats = limit(y, uv) if limit is not None else colour_stage.limit_to_peak(y, uv, stage.peak_signal)
    else:
        stats = colour_stage.frame_stats(peak_rgb)
    return y, uv, hdr, stats


class FusedPath:
    """The compiled colour stage of one device (see the module doc), each function compiled
    where a compiler works (:class:`~hdrvideo.pipeline.compiled.Compiled`; ``note`` hears why not)."""

    def __init__(self, device: torch.device, note: Callable[[str], None]) -> None:
        self.tables = colour_stage.tables_for(device)
        on_quads = self.tables is not None
        fns = (quads.light, quads.subsample, quads.limit) if on_quads else \
            (colour_stage.fused_light, colour_stage.subsample, colour_stage.fused_limit)  # fmt: skip
        self.light, self.subsample, self.limit = (Compiled(fn, device, note) for fn in fns)
        self.quad_planes = Compiled(quads.planes, device, note) if on_quads else None
        self.widen = Compiled(quads.widen, device, note) if on_quads else None

    @property
    def on_quads(self) -> bool:
        """Whether the gain goes in at the network's resolution (the quads carry it up themselves)."""
        return self.tables is not None

    @property
    def usable(self) -> bool:
        return self.light.usable

    def frames(
        self, raw: torch.Tensor, raw_gain: torch.Tensor | None, shoulders: list[bool], stage: colour_stage.StageConstants,
        cfg: CalibrationConfig, keep_signal: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """Frames (B, H, W, 3) uint8 and their unweighted log gain (B, 1, h, w) or None, frame by
        frame (one compiled graph per frame size, whatever the batch); ``shoulders``: per frame,
        whether any pixel can pass the knee → (y, uv int16 codes, light levels, signal or None)."""
        parts = []
        for i in range(raw.shape[0]):
            g, shoulder = (None, True) if raw_gain is None else (raw_gain[i : i + 1], shoulders[i])
            if self.on_quads:
                parts.append(self.quads(raw[i : i + 1].contiguous(), g, stage, cfg, keep_signal, shoulder))
                continue
            planar = raw[i : i + 1].permute(0, 3, 1, 2).contiguous()  # vectorised powers need planes
            y, chroma, sig = self.light(planar, g, stage, cfg, keep_signal, shoulder)
            uv, rebuilt = self.subsample(y, chroma)
            y, stats = self.limit(y, rebuilt, stage.peak_signal)
            parts.append((y.to(torch.int16), uv.to(torch.int16), stats, sig))
        y, uv, stats, sig = (torch.cat(p) if p[0] is not None else None for p in zip(*parts, strict=True))
        return y, uv, stats, sig

    def quads(
        self, frame: torch.Tensor, log_gain: torch.Tensor | None, stage: colour_stage.StageConstants,
        cfg: CalibrationConfig, keep_signal: bool, shoulder: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """One frame (1, H, W, 3) uint8 and its raw log gain at the network's resolution (1, 1, h, w)
        or None through the CPU's quad loops (:mod:`~hdrvideo.pipeline.quads`)
        → (luma codes (1, H, W) int16, chroma codes (1, 2, H/2, W/2) int16, light levels (1, 2),
        the PQ signal (1, 3, H, W) or None)."""
        assert self.tables is not None
        rows = None if log_gain is None else self.widen(log_gain, frame.shape[2])
        planes = self.quad_planes(frame)
        out = self.light(planes, rows, stage, cfg, keep_signal, self.tables, shoulder)
        uv, padded = self.subsample(*out[4:8])
        ys, stats = self.limit(*out[:4], padded, stage.peak_signal, self.tables.pq_eotf)
        signal = None
        if keep_signal:  # (pixel, channel) planes → (1, 3, H, W)
            rgb = [torch.stack(out[8 + 3 * p : 11 + 3 * p], dim=1) for p in range(4)]
            signal = quads.interleave(rgb, torch.float32)
        return quads.interleave(ys, torch.int16), uv.to(torch.int16), stats, signal
