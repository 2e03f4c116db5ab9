"""Temporal stability: causal smoothing of the calibration and of the per-pixel expansion gain.

Per-frame expansion flickers: the calibration fit jitters, and noise or compression in clipped
areas changes the network's output from frame to frame. :class:`TemporalFilter` plugs into
:class:`~hdrvideo.pipeline.processor.FrameProcessor` (its ``TemporalHook``) and fixes both, causally:

- **Scene cuts** are found from the input: the L1 distance between consecutive frames' 32-bin
  histograms of luma relative to the frame mean (of the frame scaled down 4×; relative so that
  fades do not count) above ``cut_threshold`` (0.8 of a possible 2), between frames that are not near black.
  At a cut all state is dropped, so the new scene takes its own level on its first frame.
- **Calibration** ``(a, b)``: an adaptive exponential filter. The step towards the new fit is
  ``1 − keep·exp(−(d/τ)²)`` where d is the largest change of the fitted mapping
  ``a + b·log y`` over the network's output range (log y from −3.5 to 0): jitter (d ≪ τ) is averaged away, a real
  exposure change (d ≫ τ) is followed at once. Frames whose fit fell back (confidence 0) do not
  move it. With ``lookahead`` N > 0 the new fit is first averaged with the next N frames' fits
  of the same scene that the current batch holds (a bounded look-ahead that needs no extra
  latency; ``stream`` uses 0).
- **Highlight level**: the mean log gain over the frame's highlights (weighted as the
  calibration weights them) is smoothed like the calibration, and the frame's gain shifted to
  it: a moving highlight keeps a steady brightness even where the network's output on it varies.
- **Expansion gain** (the raw log gain, before this frame's highlight weight): where the input did not change, the
  previous gain is kept with weight ``keep_gain`` (an exponential average over ≈ 5 frames); where
  it changed, the new gain is taken at once, so bright objects that move leave no trail. Change
  is the absolute luma difference of consecutive frames at ¼ resolution (averaging out sensor
  noise), dilated by one cell so moving edges count as moving, through ``exp(−(m/σ)²)``.
  The weights are spatially smooth but the gain itself is not blurred, and the processor applies
  the *current* frame's highlight weight afterwards: highlights keep the shape the
  full-resolution SDR gives them, and light can never stay where the SDR is no longer clipped.

Shapes: signal (B, 3, H, W) in [0, 1]; params (B, 2); log gain (B, 1, H, W); frames in display
order, batches one after another (call :meth:`reset` between unrelated clips).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import colour
from .calibrate import CalibrationConfig, highlight_weight

__all__ = ["TemporalConfig", "TemporalFilter", "luma_histogram_distance"]


@dataclass(frozen=True)
class TemporalConfig:
    keep_gain: float = 0.8
    motion_sigma: float = 4.0 / 255  # luma change (signal units, at ¼ resolution) that counts as motion
    keep_params: float = 0.97
    param_tau: float = 0.3  # change of log light that counts as real (≈ 35 %)
    level_tau: float = 0.8  # change of the highlights' mean log gain that counts as real
    cut_threshold: float = 0.8
    cut_min_luma: float = 0.08  # mean luma signal below which frames are too dark to judge
    lookahead: int = 0
    scale: int = 4
    bins: int = 32


def _small_luma(signal: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, 3, H, W) signal → (B, 1, H/scale, W/scale) BT.709 luma (area average)."""
    y = colour.luminance(signal, colour.LUMA_BT709)
    h, w = y.shape[-2:]
    return F.adaptive_avg_pool2d(y, (max(1, h // scale), max(1, w // scale)))


def _histograms(luma: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, 1, h, w) in [0, 1] → (B, bins) histograms of luma relative to the frame's mean (over
    [0, 3× mean]), so that fades, which scale the whole frame, do not look like cuts."""
    flat = luma.flatten(1)
    rel = flat / flat.mean(1, keepdim=True).clamp(min=0.02) / 3
    idx = (rel.clamp(0, 1) * (bins - 1e-3)).long()
    hist = torch.zeros(luma.shape[0], bins, device=luma.device)
    hist.scatter_add_(1, idx, torch.ones_like(idx, dtype=hist.dtype))
    return hist / idx.shape[1]


def luma_histogram_distance(a: torch.Tensor, b: torch.Tensor, bins: int = 32, scale: int = 4) -> torch.Tensor:
    """Scene-cut distance between signals a and b (B, 3, H, W): L1 of luma histograms, in [0, 2]."""
    return (_histograms(_small_luma(a, scale), bins) - _histograms(_small_luma(b, scale), bins)).abs().sum(1)


def _scene_stats(signal: torch.Tensor, scale: int, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) signal → (small luma (B, 1, H/scale, W/scale), histograms (B, bins), mean luma (B,))."""
    luma = _small_luma(signal, scale)
    return luma, _histograms(luma, bins), luma.flatten(1).mean(1)


def _level_stats(weight: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Highlight weight and log gain (1, 1, h, w) → (the weight's mass, the weighted gain's sum)."""
    return weight.sum(), (weight * gain).sum()


def _shift_and_blend(
    gain: torch.Tensor,
    shift: torch.Tensor,
    luma: torch.Tensor | None,
    prev_luma: torch.Tensor | None,
    prev_gain: torch.Tensor | None,
    carry: torch.Tensor | None,
    keep_gain: float,
    sigma: float,
) -> torch.Tensor:
    """One frame's log gain (1, 1, h, w) ≥ 0 shifted to the smoothed highlight level (``shift``, a
    0-d tensor; 0: none), then, where the small luma (1, 1, h', w') did not move since the last
    frame's, blended with the last frame's gain (None: no blend). ``carry`` (0-d, 1 or 0) scales
    the blend: 0 at a scene cut gives the shifted gain exactly, with no branch on the host."""
    g = (gain + shift).clamp(min=0)
    if luma is None or prev_luma is None or prev_gain is None or carry is None:
        return g
    m = F.max_pool2d((luma - prev_luma).abs(), 3, stride=1, padding=1)
    keep = keep_gain * torch.exp(-((m / sigma) ** 2))
    keep = F.interpolate(keep, size=g.shape[-2:], mode="bilinear", align_corners=False) * carry
    return keep * prev_gain + (1 - keep) * g


LOG_NET_SPAN = (-3.5, 0.0)
"""Natural-log network outputs over which a change of the fit is measured: from SDR white of our
models (1/32) to the network's maximum, 1."""


class TemporalFilter:
    """The :class:`~hdrvideo.pipeline.processor.TemporalHook` of the module doc; keeps state across batches."""

    def __init__(self, cfg: TemporalConfig | None = None) -> None:
        self.cfg = cfg or TemporalConfig()
        self.reset()
        self._cuts_seen: torch.Tensor | int = 0
        self._stats_fn: Callable = _scene_stats
        self._level_fn: Callable = _level_stats
        self._blend_fn: Callable = _shift_and_blend
        self._weight_fn: Callable = highlight_weight
        self.gate = CalibrationConfig()
        """The light gate the highlight level is measured behind: the processor hands over its own
        (the model's: v4's is looser than the default) before each batch it filters."""

    def use_compiler(self, device: torch.device, note: Callable[[str], None]) -> None:
        """Run the filter's passes compiled (TorchInductor, frame by frame; see
        :mod:`~hdrvideo.pipeline.compiled`): on a CPU a dozen small eager passes per frame cost
        more than the arithmetic (at 720p in ``stream``: 3.1 → ~1 ms per frame). The processor calls
        this when it compiles; results are those of the eager passes to float rounding."""
        from .compiled import Compiled

        self._stats_fn = Compiled(_scene_stats, device, note)
        self._level_fn = Compiled(_level_stats, device, note)
        self._blend_fn = Compiled(_shift_and_blend, device, note)
        self._weight_fn = Compiled(highlight_weight, device, note)

    def reset(self) -> None:
        self._params: torch.Tensor | None = None
        self._gain: torch.Tensor | None = None
        self._level: torch.Tensor | None = None  # the smoothed highlight level (0-d) …
        self._level_ok: torch.Tensor | None = None  # … and whether it holds one (0-d bool)
        self._luma: torch.Tensor | None = None  # last frame's small luma
        self._hist: torch.Tensor | None = None
        self._mean: torch.Tensor | None = None
        self._batch_luma: torch.Tensor | None = None
        self._batch_cuts: torch.Tensor | None = None

    @property
    def cuts_seen(self) -> int:
        """Scene cuts found since this filter was made (read on the host: one sync where asked)."""
        return int(self._cuts_seen)

    # -- scene analysis (once per batch) ----------------------------------------------------
    def _analyse(self, signal: torch.Tensor) -> None:
        stats = [self._stats_fn(signal[i : i + 1], self.cfg.scale, self.cfg.bins) for i in range(signal.shape[0])]
        luma, hist, mean = (torch.cat(t) for t in zip(*stats, strict=True))
        first = self._hist is None
        # each frame against the one before it (the first frame of a clip against itself)
        prev_h = torch.cat((hist[:1] if first else self._hist, hist[:-1]))
        prev_m = torch.cat((mean[:1] if first else self._mean, mean[:-1]))
        # near-black frames (the end of a fade) are all noise: nothing to expand, no cut to find
        lit = torch.minimum(mean, prev_m) > self.cfg.cut_min_luma
        cuts = ((hist - prev_h).abs().sum(1) > self.cfg.cut_threshold) & lit
        self._cuts_seen = self._cuts_seen + cuts.sum()  # a tensor: no sync on a GPU
        if first:
            cuts[0] = True  # the first frame starts a scene
        self._batch_luma, self._batch_cuts = luma, cuts
        self._hist, self._mean = hist[-1:], mean[-1:]

    def _look_ahead(self, params: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        """Each frame's fit (B, 2) averaged with the next ``lookahead`` fits of the same scene in
        the batch (a frame after a cut, and all after it, left out), by 0/1 weights: no host sync."""
        b = params.shape[0]
        total, count = params.clone(), torch.ones(b, 1, dtype=params.dtype, device=params.device)
        same = torch.ones(b, 1, dtype=params.dtype, device=params.device)  # frame i + j still in i's scene
        carry = (~cuts).to(params.dtype)[:, None]
        for j in range(1, min(self.cfg.lookahead, b - 1) + 1):
            same = torch.cat((same[: b - j] * carry[j:], same.new_zeros(j, 1)))
            total[: b - j] += same[: b - j] * params[j:]
            count += same
        return total / count

    # -- the hook ---------------------------------------------------------------------------
    def smooth_params(self, signal: torch.Tensor, params: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        self._analyse(signal)
        cfg = self.cfg
        out = torch.empty_like(params)
        cuts = self._batch_cuts
        ahead = self._look_ahead(params, cuts) if cfg.lookahead > 0 else params
        for i in range(params.shape[0]):
            p = ahead[i]
            if self._params is None:
                s = p
            else:
                dp = p - self._params
                d = torch.maximum((dp[0] + dp[1] * LOG_NET_SPAN[0]).abs(), (dp[0] + dp[1] * LOG_NET_SPAN[1]).abs())
                k = (1 - cfg.keep_params * torch.exp(-((d / cfg.param_tau) ** 2))) * (confidence[i] > 0)
                s = torch.where(cuts[i], p, self._params + k * (p - self._params))  # a cut takes the new fit
            self._params = s
            out[i] = s
        return out

    def _smooth_level(self, level: torch.Tensor, lit: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        """One frame's highlight level (0-d; meaningful where ``lit``, the frame has highlights)
        smoothed against the last one (not across a cut) → the shift (0-d) that takes the frame
        to it, 0 where unlit. State: the level is kept through unlit frames, dropped at an unlit cut."""
        cfg = self.cfg
        prev = level if self._level is None else self._level
        held = torch.zeros_like(lit) if self._level_ok is None else self._level_ok & ~cut
        k = 1 - cfg.keep_params * torch.exp(-(((level - prev).abs() / cfg.level_tau) ** 2))
        smooth = torch.where(held, prev + k * (level - prev), level)
        self._level = torch.where(lit, smooth, prev)
        self._level_ok = lit | held
        return torch.where(lit, smooth - level, torch.zeros_like(level))

    def filter_gain(self, signal: torch.Tensor, log_gain: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if self._batch_luma is None or self._batch_luma.shape[0] != signal.shape[0]:
            self._analyse(signal)  # used without smooth_params (e.g. no calibration state)
        luma, cuts = self._batch_luma, self._batch_cuts
        carry = (~cuts).to(log_gain.dtype)  # 0 at a cut: the last frame's gain is not kept
        out = torch.empty_like(log_gain)
        for i in range(log_gain.shape[0]):
            g = log_gain[i : i + 1]
            # the highlight level: the weighted mean gain over this frame's highlights, smoothed
            # like the calibration (jitter averaged, real changes followed), the frame shifted to it
            mass, weighted = self._level_fn(self._weight_fn(signal[i : i + 1], self.gate), g)
            lit = mass > 0
            shift = self._smooth_level(weighted / torch.where(lit, mass, torch.ones_like(mass)), lit, cuts[i])
            # where the input did not move, the last frame's gain is kept (not across a cut)
            blend = not (self._gain is None or self._luma is None or self._gain.shape != g.shape)
            prev = (luma[i : i + 1], self._luma, self._gain, carry[i]) if blend else (None, None, None, None)
            g = self._blend_fn(g, shift, *prev, cfg.keep_gain, cfg.motion_sigma)
            self._gain, self._luma = g, luma[i : i + 1]
            out[i : i + 1] = g
        self._batch_luma = None
        return out
