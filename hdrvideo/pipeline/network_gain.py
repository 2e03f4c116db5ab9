"""The network's gain at its own resolution: a mixin of :class:`~.processor.FrameProcessor`.

What it does per batch (:meth:`NetworkGain.log_gain`): the network on the SDR signal (scaled
down in fast mode, frame by frame for the recurrent variant, compiled where it runs in one
tile), the calibration fit of its output against the SDR on well-exposed pixels (compiled frame
by frame on a CPU), the temporal hook's smoothing and filtering, the area rule, and the log gain (not yet gated),
which the colour path then weights by the light gate and adds to the curve
(:func:`~.calibrate.pixel_log_gain`). In ``stream``, the network's output is carried between
the frames it runs on (``net_every``).

It reads the processor's state (``model``, ``model_dtype``, ``device``, ``cfg``, ``tile``,
``net_long_side``, ``temporal``, the compiled ``_net`` / ``_fit_c`` / ``_gain_c`` / ``_decode_c``)
and keeps the state carried between batches (``_last_params``, ``_net_cache``, ``_rnn_state``).
Shapes: signals (B, 3, h, w) in [0, 1]; gains (B, 1, h, w), natural log; parameters (B, 2).
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch
import torch.nn.functional as F

from . import inference
from .calibrate import coloured_area_weight, default_params, fit_params, pixel_log_gain, raw_log_gain
from .colour_stage import downscale_signal

__all__ = ["NetworkGain", "TemporalHook"]


class TemporalHook(Protocol):
    """What temporal processing plugs into (issue 4): both calls see frames in display order."""

    def smooth_params(self, sdr_signal: torch.Tensor, params: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        """(B, 2) fitted parameters → (B, 2) smoothed parameters."""
        ...

    def filter_gain(self, sdr_signal: torch.Tensor, log_gain: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) raw log gain (before the highlight weight) → (B, 1, H, W) filtered."""
        ...


class NetworkGain:
    """The network and calibration methods of :class:`~.processor.FrameProcessor` (see the module doc)."""

    def _net_form(self, model: torch.nn.Module) -> torch.nn.Module:
        """What the compiled path runs: on a CPU the network's :mod:`~hdrvideo.pipeline.inference`
        form (the same function in fewer memory passes), else the model itself (the GPU's
        figures were measured with it)."""
        if self.device.type == "cpu" and inference.supports(model):
            return inference.InferenceNet(model).eval()
        return model

    def _net_input_size(self, h: int, w: int) -> tuple[int, int] | None:
        if self.net_long_side is None or max(h, w) <= self.net_long_side:
            return None
        s = self.net_long_side / max(h, w)
        return max(1, round(h * s)), max(1, round(w * s))

    @torch.no_grad()
    def expand(self, signal: torch.Tensor) -> torch.Tensor:
        """ExpandNet on the signal (B, 3, h, w) → relative linear HDR (B, 3, h, w), float32."""
        assert self.model is not None
        # channels-last: the layout oneDNN and cuDNN convolutions run fastest in (on the 2-core
        # CPU, 62 → 49 ms per 480×270 frame for the shipped model; the same numbers exactly)
        x = signal.to(self.model_dtype).contiguous(memory_format=torch.channels_last)
        if getattr(self.model, "recurrent", False):  # frame by frame in display order, its state carried (reset: a new clip)
            out = []
            for i in range(x.shape[0]):
                y, self._rnn_state = self.model(x[i : i + 1], tile=self.tile, state=self._rnn_state, return_state=True)
                out.append(y.float())
            return torch.cat(out)
        if self._net is not None and (self.tile is None or max(x.shape[-2:]) <= self.tile):
            # one tile (the graph has no Python loop to trace), frame by frame (one static shape)
            return torch.cat([self._net(x[i : i + 1]).float() for i in range(x.shape[0])])
        return self.model(x, tile=self.tile).float()

    @torch.no_grad()
    def log_gain(self, signal: torch.Tensor, sdr_linear: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit the calibration and compute the per-pixel expansion: → log gain (B, 1, H, W), params (B, 2)."""
        b, _, h, w = signal.shape
        if self.model is None:  # BT.2408 alone, or the curve alone
            curve = pixel_log_gain(None, sdr_linear.unbind(1), None, self.cfg)
            gain = signal.new_zeros(b, 1, h, w) if curve is None else curve.unsqueeze(1)
            return gain, default_params(b, signal.device)
        small = self._net_input_size(h, w)
        if small is None:
            raw, params = self._filtered_gain(signal, sdr_linear)
        else:
            net_in = downscale_signal(signal, small)
            raw, params = self._filtered_gain(net_in, self.decode_sdr(net_in))
            # the raw gain is smooth where it matters (inside clipped areas): carry it up
            # bilinearly; the edges come from the full-resolution SDR through the weight
            raw = F.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False)
        # the weight of *this* frame decides where light is added: filtering can never leave a trail
        gain = pixel_log_gain(signal.unbind(1), sdr_linear.unbind(1), raw[:, 0], self.cfg).unsqueeze(1)
        return gain, params

    def _filtered_gain(self, net_in: torch.Tensor, lin_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_raw_gain` × the strength, the temporal filter, then the area rule
        (:func:`~.calibrate.coloured_area_weight`), all at the network's
        resolution (B, 1, h, w): in fast mode the filter's motion test then sees a frame already
        averaged down (4× at 1080p), which sensor and compression noise do not move, at 1/16 of
        the cost."""
        raw, params = self._raw_gain(net_in, lin_in)
        with self._small_work():
            raw = raw * self.cfg.strength
            if self.temporal is not None:
                if hasattr(self.temporal, "gate"):  # (its highlight level: behind this model's gate)
                    self.temporal.gate = self.cfg
                raw = self.temporal.filter_gain(net_in, raw)
            # after the filter, as the gate: this frame alone decides where no light goes (the
            # filter's level shift, applied before, put light back on a sky the rule had cleared)
            area = coloured_area_weight(net_in, self.cfg)
            if area is not None:  # large bright colours (a clear sky) are surfaces, not light
                raw = raw * area
        return raw, params

    @contextlib.contextmanager
    def _small_work(self):
        """One thread on a CPU for the many small passes at the network's resolution (calibration,
        temporal filter): with OpenMP waiting passively (beside x265, see ``cli``), waking the
        other thread for each pass of a 480×270 frame cost more than the pass. Measured at 720p in
        ``stream``'s settings: the temporal filter 3.4 → 2.2 ms per frame."""
        threads = torch.get_num_threads()
        if self.device.type != "cpu" or threads == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _raw_gain(self, net_in: torch.Tensor, lin_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network on net_in (B, 3, h, w) signal, lin_in its SDR linear → unweighted log gain
        (B, 1, h, w) and the calibration (B, 2), smoothed by the temporal hook."""
        cache = self._net_cache
        if (
            self.net_every > 1
            and net_in.shape[0] == 1
            and cache is not None
            and cache[0] < self.net_every - 1
            and cache[1].shape == net_in.shape
        ):
            # between network frames: its last output and calibration, against this frame's SDR
            # (the light gate of this frame still decides where light is added)
            self._net_cache = (cache[0] + 1, cache[1], cache[2])
            net, params, confidence = cache[1], cache[2], torch.ones(1, device=net_in.device)
            with self._small_work():
                if self.temporal is not None:
                    params = self.temporal.smooth_params(net_in, params, confidence)
                return self._log_gain_of(lin_in, net, params), params
        net = self.expand(net_in)
        with self._small_work():
            params, confidence = self._fit(net_in, lin_in, net)
            if self.net_every > 1 and net_in.shape[0] == 1:
                self._net_cache = (0, net, params)
            if self.temporal is not None:
                params = self.temporal.smooth_params(net_in, params, confidence)
            self._last_params = params[-1].detach()
            return self._log_gain_of(lin_in, net, params), params

    def _fit(self, net_in: torch.Tensor, lin_in: torch.Tensor, net: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`~hdrvideo.pipeline.calibrate.fit_params` with this processor's fallback; compiled,
        frame by frame (one graph whatever the batch: a short last batch compiles nothing new).
        At 720p in ``stream`` (fast mode, the network on every 8th frame), the decode, fit and
        log gain at the network's resolution took 2.9 ms per frame eagerly."""
        if self._fit_c is None or not self._fit_c.usable:
            return fit_params(net_in, lin_in, net, self.cfg, fallback=self._last_params)
        # always a tensor (the default when there is no last fit): one graph, not two
        fallback = self._last_params if self._last_params is not None else default_params(1, net.device)[0]
        parts = [self._fit_c(net_in[i : i + 1], lin_in[i : i + 1], net[i : i + 1], self.cfg, fallback)
                 for i in range(net_in.shape[0])]  # fmt: skip
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _log_gain_of(self, lin_in: torch.Tensor, net: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """:func:`~hdrvideo.pipeline.calibrate.raw_log_gain`, compiled frame by frame where it can be."""
        if self._gain_c is None or not self._gain_c.usable:
            return raw_log_gain(lin_in, net, params)
        return torch.cat([self._gain_c(lin_in[i : i + 1], net[i : i + 1], params[i : i + 1]) for i in range(net.shape[0])])

    def _decode_small(self, signal: torch.Tensor) -> torch.Tensor:
        """:meth:`decode_sdr` of the network's input, compiled frame by frame where it can be."""
        if self._decode_c is None or not self._decode_c.usable:
            return self.decode_sdr(signal)
        return torch.cat([self._decode_c(signal[i : i + 1]) for i in range(signal.shape[0])])
