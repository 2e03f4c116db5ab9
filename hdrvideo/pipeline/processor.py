"""The frame processor: a batch of decoded SDR frames in, HDR frames in the target encoding out.

Stages, all batched tensor code on the model's device (data flows one way):

    SDR uint8/uint16 RGB (B, H, W, 3), or 8-bit Y'CbCr 4:2:0 planes made R'G'B' on the device
      → signal (B, 3, H, W) [0, 1] ─┬─ ExpandNet (optionally on a reduced frame) → relative HDR
                                    └─ BT.1886 decode → SDR linear, relative (1 = SDR white)
      → calibration fit (a, b) per frame        [temporal hook: smooth the parameters]
      → log expansion gain (B, 1, H, W)         [temporal hook: filter the gain]
      → SDR linear · gain · 203 cd/m², BT.709 → BT.2020, soft shoulder to the peak (cd/m²)
      → PQ or HLG signal (B, 3, H, W), BT.2020
      → Y'CbCr BT.2020 NCL, 4:2:0 left-sited, 10-bit limited-range codes
    only the 10-bit planes (and small per-frame statistics) travel back to the host.

``convert``, ``stream``, ``bench`` and ``eval`` all go through :class:`FrameProcessor`: it orchestrates frames in
and out (:mod:`.frames`), the network's gain (:mod:`.network_gain`), one of the colour paths (:mod:`.colour_paths`:
eager bands, or the compiled path chosen once per device) and the out-of-memory steps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import colour
from ..colour import SDR_WHITE_NITS, bt2446
from ..model import ExpandNet, expansion_settings, gain_scale
from . import batching, colour_stage
from .batching import CPU_TILE, MIN_TILE, cpu_batch_limit, is_oom  # noqa: F401 - CPU_TILE re-exported
from .calibrate import CalibrationConfig, default_params, fit_params, raw_log_gain
from .colour_paths import BAND_PIXELS, FusedPath, encode_bands  # noqa: F401 - BAND_PIXELS re-exported
from .colour_stage import TRANSFERS, encode_transfer  # noqa: F401 - re-exported
from .compiled import Compiled
from .frames import HDRBatch, HostTransfer, PendingBatch, sdr_to_tensor, to_signal  # noqa: F401 - re-exported
from .looks import look_settings
from .memory import keep_freed_memory
from .network_gain import NetworkGain, TemporalHook

__all__ = ["QUALITY_LONG_SIDE", "FrameProcessor", "HDRBatch", "PendingBatch", "TemporalHook", "sdr_to_tensor", "encode_transfer"]

FORMULAS = {"bt2446a": bt2446.method_a_inverse, "bt2446c": bt2446.method_c_inverse}
"""``--method``: the broadcast formulas' inverse tone mappings (ITU-R BT.2446-1 Methods A and C),
SDR signal → BT.2020 cd/m², in place of a network (:mod:`hdrvideo.colour.bt2446`)."""

QUALITY_LONG_SIDE: dict[str, int | None] = {"fast": 480, "balanced": 960, "full": None}
"""``--quality`` → the long side the network runs at (None: full resolution)."""


class FrameProcessor(NetworkGain):
    """SDR frames → HDR frames (PQ or HLG, BT.2020, 10-bit Y'CbCr 4:2:0 planes).

    model: an ExpandNet (its device and dtype are used), or None for the SDR-in-HDR mapping of
    BT.2408 alone (no expansion; the "null" pipeline of the benchmark and the eval baseline).
    transfer: "pq" or "hlg". peak_nits: highest light the output may hold (HDR10 mastering peak,
    or HLG's nominal display peak). sdr_eotf: how the SDR is decoded, "bt1886" (default; BT.2408)
    or "srgb". net_long_side: run the network on the frame scaled down to this long side and
    carry its gain up to full resolution (fast mode); None runs it at full resolution.
    tile: tile size for the full-resolution branches (bounds memory); None: whole frames on a GPU
    (halved into tiles only if it runs out of memory), :data:`CPU_TILE` on a CPU.
    temporal: an optional :class:`TemporalHook`.
    compile: run the colour stage of 8-bit frames as one compiled pass
    (:func:`~hdrvideo.pipeline.colour_stage.fused_light`) and the network, where it runs in one
    tile, compiled too (TorchInductor; see :mod:`hdrvideo.pipeline.compiled`). The first batch
    pays the compilation (once per frame size; cached on disk); where no compiler works, the
    eager path runs and :attr:`notes` says why. The codes are those of the eager path to within
    one 10-bit code on a few samples per million (tests/test_compiled.py).
    strength: how bold the expansion is, in [0, 3] (``--strength``): the network's log gain is
    multiplied by it and by the model's own gain scale (:func:`~hdrvideo.model.gain_scale`), the
    curve's by it alone; 0 gives BT.2408 alone. The curve and the light gate come from the
    model's metadata (:func:`~hdrvideo.model.expansion_settings`).
    method: with no model, one of :data:`FORMULAS` instead of BT.2408 alone: the formula's light
    (absolute, as the Report gives it), then the display shoulder; it runs the eager colour path.
    look: where mid-tones and rolled-off highlights land (``--look``, :mod:`.looks`): "bt2408"
    (the SDR grade kept, the model's curve) or "aces" (the ACES 2.0 HDR master's placement, its
    curve in place of the model's; with no model, the curve alone).
    """

    def __init__(
        self,
        model: ExpandNet | None,
        transfer: str = "pq",
        peak_nits: float = 1000.0,
        *,
        sdr_eotf: str = "bt1886",
        net_long_side: int | None = None,
        tile: int | None = None,
        device: str | torch.device | None = None,
        temporal: TemporalHook | None = None,
        compile: bool = False,
        strength: float = 1.0,
        method: str | None = None,
        look: str = "bt2408",
    ) -> None:
        if method is not None and (method not in FORMULAS or model is not None or look != "bt2408"):
            raise ValueError(f"method must be one of {', '.join(FORMULAS)}, with no model and the bt2408 look; got {method!r}")
        if transfer not in TRANSFERS:
            raise ValueError(f"unknown transfer {transfer!r}; choose from {TRANSFERS}")
        if sdr_eotf not in ("bt1886", "srgb"):
            raise ValueError(f"unknown SDR EOTF {sdr_eotf!r}; choose bt1886 or srgb")
        if not 100.0 < peak_nits <= 10000.0:
            raise ValueError(f"peak must be in (100, 10000] cd/m², got {peak_nits}")
        self.model = model
        if model is not None:
            p = next(model.parameters())
            self.device, self.model_dtype = p.device, p.dtype
        else:
            self.device, self.model_dtype = torch.device(device or "cpu"), torch.float32
        if self.device.type == "cpu":
            keep_freed_memory()  # frame-sized buffers are reused, not page-faulted in again (memory.py)
        self.transfer = transfer
        if not 0.0 <= strength <= 3.0:
            raise ValueError(f"strength must be in [0, 3], got {strength:g}")
        # the user's strength × the model's own (its metadata's gain scale; 1 for the authors' weights)
        # and the curve and light gate the model was chosen with (its metadata; none for older weights)
        # and the look's placement of mid-tones in place of the model's curve where it has one (looks.py)
        fields = expansion_settings(model) | look_settings(look, float(peak_nits), float(strength))
        self.cfg = CalibrationConfig(peak_nits=float(peak_nits), strength=float(strength) * gain_scale(model),
                                     curve_strength=float(strength), **fields)  # fmt: skip
        self.look = look
        self.method = method
        self.sdr_eotf = sdr_eotf
        self.net_long_side = net_long_side
        # on a CPU there is no out-of-memory exception to fall back from (the kernel kills the
        # process), so the full-resolution branches always run in tiles: for the authors' network on
        # two 1080p frames, peak RSS 15.0 → 2.9 GB, and faster (36.8 → 23.3 s: the tiles stay in cache)
        self.tile = tile if tile is not None or self.device.type != "cpu" else CPU_TILE
        self.temporal = temporal
        self._stage: tuple[tuple, colour_stage.StageConstants] | None = None
        self.notes: list[str] = []  # what the processor had to change on the way (out of memory …)
        if compile and self.device.type == "cpu" and hasattr(temporal, "use_compiler"):
            temporal.use_compiler(self.device, self._note)
        # the fused colour stage serves PQ from BT.1886 8-bit frames (see _process), chosen once:
        # on a CPU with tables, over 2×2 quads (quads.py); on a GPU per pixel, its powers computed
        self._fused = FusedPath(self.device, self._note) if compile else None
        self._net_input = Compiled(colour_stage.network_input, self.device, self._note) if compile else None
        self._net = Compiled(self._net_form(model), self.device, self._note) if compile and model is not None else None
        # the calibration at the network's resolution, compiled frame by frame: eager, its dozen
        # small passes over 480×270 cost more than the per-pixel stage of a 720p frame (see _fit)
        # (on a CPU only: on a GPU these passes are launches, measured eager; docs/speed.md "On a GPU")
        calibrating = compile and model is not None and self.device.type == "cpu"
        self._fit_c = Compiled(fit_params, self.device, self._note) if calibrating else None
        self._gain_c = Compiled(raw_log_gain, self.device, self._note) if calibrating else None
        self._decode_c = Compiled(self.decode_sdr, self.device, self._note) if calibrating else None
        self._last_params: torch.Tensor | None = None
        self.net_every = 1  # run the network on every k-th frame and carry its output between (stream)
        self._net_cache: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (frames since, net, params)
        self._rnn_state: torch.Tensor | None = None  # the recurrent network's state (recurrent weights only)
        self.host = HostTransfer(self.device)
        self.max_batch: int | None = None  # set when the device ran out of memory on a bigger batch

    @property
    def stage(self) -> colour_stage.StageConstants:
        """The colour stage's constants for the current transfer and calibration."""
        key = (self.transfer, self.cfg)
        if self._stage is None or self._stage[0] != key:
            c = self.cfg
            self._stage = key, colour_stage.StageConstants(c.white_nits, c.knee_nits, c.peak_nits, self.transfer)
        return self._stage[1]

    # -- stages ---------------------------------------------------------------------------
    def decode_sdr(self, signal: torch.Tensor) -> torch.Tensor:
        """SDR signal (B, 3, H, W) → relative linear light (1 = SDR white), BT.709 primaries."""
        return colour.bt1886_eotf(signal) if self.sdr_eotf == "bt1886" else colour.srgb_eotf(signal)

    def _decode_lut(self) -> torch.Tensor:
        """The SDR decode of all 256 8-bit codes (exact for 8-bit input, and much cheaper)."""
        if getattr(self, "_lut", None) is None:
            codes = torch.arange(256, dtype=torch.float32, device=self.device) / 255
            self._lut = self.decode_sdr(codes.view(1, 1, 1, -1).expand(1, 3, 1, 256))[0, 0, 0].contiguous()
        return self._lut

    @torch.no_grad()
    def to_display(self, sdr_linear: torch.Tensor, log_gain: torch.Tensor) -> torch.Tensor:
        """SDR linear (B, 3, H, W) BT.709 relative and log gain → BT.2020 display light, cd/m²."""
        return colour_stage.display_light(sdr_linear, log_gain, self.stage)

    def formula_light(self, signal: torch.Tensor) -> torch.Tensor:
        """``method``'s light for the SDR signal (B, 3, H, W), in the colour stage's terms: linear
        BT.709 relative to :attr:`cfg`'s white (so the stage, which multiplies by it, gives the
        formula's cd/m²; colours outside BT.709 keep their negative components through the
        matrices)."""
        nits = FORMULAS[self.method](signal)
        return colour.rgb_to_rgb(nits, colour.BT2020_TO_BT709) / self.cfg.white_nits

    def _sdr_and_gain(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.method is not None:
            return self.formula_light(signal), signal.new_zeros(signal.shape[0], 1, *signal.shape[-2:])
        sdr_linear = self.decode_sdr(signal)
        gain, _ = self.log_gain(signal, sdr_linear)
        return sdr_linear, gain

    @torch.no_grad()
    def display_light(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SDR signal (B, 3, H, W) → (the display light the video path encodes, BT.2020 cd/m²;
        the SDR decoded, linear BT.709 relative to SDR white)."""
        sdr_linear, gain = self._sdr_and_gain(signal)
        return self.to_display(sdr_linear, gain), sdr_linear

    @torch.no_grad()
    def relative_hdr(self, signal: torch.Tensor, shoulder: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """SDR signal (B, 3, H, W) → (HDR, SDR linear), both linear BT.709 relative to SDR white
        (1.0 = 203 cd/m²): the picture the video path encodes (with the display shoulder, or
        without it for evaluation), and the SDR-in-HDR picture it started from."""
        if not shoulder:
            sdr_linear, gain = self._sdr_and_gain(signal)
            return sdr_linear * torch.exp(gain) * (self.cfg.white_nits / SDR_WHITE_NITS), sdr_linear
        nits, sdr_linear = self.display_light(signal)
        return colour.rgb_to_rgb(nits, colour.BT2020_TO_BT709).clamp(min=0) / SDR_WHITE_NITS, sdr_linear

    # -- the whole path -------------------------------------------------------------------
    def process(self, frames: np.ndarray | torch.Tensor, keep_signal: bool = False) -> HDRBatch:
        """(B, H, W, 3) SDR RGB (uint8, uint16 or float in [0, 1]; H and W even) → :class:`HDRBatch`:
        :meth:`submit`, then wait for its result."""
        return self.submit(frames, keep_signal).result()

    @torch.no_grad()
    def submit(self, frames: np.ndarray | torch.Tensor, keep_signal: bool = False) -> PendingBatch:
        """:meth:`process` without waiting for the codes to come back: on a GPU the batch's work is
        queued and its download runs on a stream of its own, so a caller that submits the next
        batch before taking this one's :meth:`~.frames.PendingBatch.result` keeps the GPU busy
        while the host stacks frames and the copies overlap compute (one batch in flight is
        enough; staged frames live in two alternating buffers, :meth:`~.frames.HostTransfer.stack`).
        On a CPU the work is done when it returns. Batches must be collected in order.

        Out of device memory, it never fails while a smaller step can work: the batch is split in
        halves (and later batches are split up front), then, for a single frame, the network's
        full-resolution branches run in tiles of 1024, 512 … 128 pixels (exact: issue 2). Each
        step down is noted once in :attr:`notes`. A batch that failed part-way may already have
        advanced the temporal filter; it then sees those frames twice, which it tolerates.
        """
        n = len(frames)
        step = self.max_batch or n
        if self.net_every > 1:
            # the network's output is carried frame by frame: a batch (stream --batch-size above 1,
            # when it fell behind) would otherwise run the network on every frame of it
            step = 1
        if self.device.type == "cpu" and n > 1:
            h, w = np.shape(frames)[1:3]
            cap = cpu_batch_limit(h, w)
            if n > cap:
                self._note(f"{w}×{h} frames on a CPU: batches of {cap} frame{'s' if cap > 1 else ''}, to keep "
                           f"memory within {batching.CPU_BATCH_BYTES / 1e9:g} GB (the look-ahead sees only those)")  # fmt: skip
                step = min(step, cap)
        if n > step:
            return PendingBatch.concat([self.submit(frames[i : i + step], keep_signal) for i in range(0, n, step)])
        try:
            return self._process(frames, keep_signal)
        except Exception as e:  # noqa: BLE001 - only out-of-memory is handled; the rest is re-raised
            if not is_oom(e):
                raise
        self._free_cached()
        if n > 1:
            self.max_batch = max(1, n // 2)
            self._note(f"out of {self.device.type} memory: batches of {self.max_batch} frames from here on")
            return self.submit(frames, keep_signal)
        if self.model is None or (self.tile is not None and self.tile <= MIN_TILE):
            raise MemoryError(f"out of {self.device.type} memory for a single frame, even in {MIN_TILE}-pixel tiles")
        self.tile = 1024 if self.tile is None else self.tile // 2
        self._note(f"out of {self.device.type} memory: the network runs in {self.tile}-pixel tiles from here on")
        return self.submit(frames, keep_signal)

    def _note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def _free_cached(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _process(self, frames: np.ndarray | torch.Tensor, keep_signal: bool) -> PendingBatch:
        raw = self.host.upload(frames)
        _, h, w, _ = raw.shape
        if h % 2 or w % 2:
            raise ValueError(f"frame size must be even for 4:2:0, got {w}×{h} (pad or crop first)")
        if (
            raw.dtype == torch.uint8
            and self.transfer == "pq"
            and self.sdr_eotf == "bt1886"
            and self._fused is not None
            and self._fused.usable
            and self.method is None
        ):
            return self._process_fused(raw, keep_signal)
        signal = to_signal(raw)
        if self.method is not None:
            sdr_linear = self.formula_light(signal)
        elif raw.dtype == torch.uint8:  # exact for 8-bit input, and much cheaper than the EOTF
            sdr_linear = torch.take(self._decode_lut(), raw.permute(0, 3, 1, 2).long())
        else:
            sdr_linear = self.decode_sdr(signal)
        del raw
        gain, params = self.log_gain(signal, sdr_linear)
        del signal
        y, uv, hdr, stats = self._encode_bands(sdr_linear, gain, keep_signal)
        del sdr_linear, gain
        return self._finish(y.to(torch.int16), uv.to(torch.int16), stats, params, hdr)

    def _finish(self, y, uv, stats, params, hdr) -> PendingBatch:
        """The planes (int16 codes), statistics and parameters on their way to the host."""
        down = self.host.download_async(y, uv, stats, params.float())

        def arrived() -> HDRBatch:
            y, uv, stats, params = down.result()
            return HDRBatch(y=y.view(np.uint16), uv=uv.view(np.uint16), max_cll=stats[:, 0], max_fall=stats[:, 1],
                            params=params, signal=hdr)  # fmt: skip

        return PendingBatch(arrived)

    def _process_fused(self, raw: torch.Tensor, keep_signal: bool) -> PendingBatch:
        """The compiled path for 8-bit frames (B, H, W, 3), PQ and BT.1886: the network's gain
        at its own resolution, carried up, then frame by frame (one compiled graph per frame
        size, whatever the batch) through the :class:`~.colour_paths.FusedPath` of this device.
        Where compiling fails, this batch runs the same functions eagerly and the next ones take
        the banded eager path."""
        b, h, w, _ = raw.shape
        raw_gain, shoulders = None, []
        params = default_params(b, self.device)
        if self.model is not None:
            small = self._net_input_size(h, w)
            if small is None:
                net_in = to_signal(raw)
            else:  # frame by frame, as below: a short last batch compiles nothing new
                with self._small_work():  # (on two threads its sums ran 100× slower)
                    net_in = torch.cat([self._net_input(raw[i : i + 1], small) for i in range(b)])
            raw_gain, params = self._filtered_gain(net_in, self._decode_small(net_in))
            shoulders = self._shoulders(raw_gain)
            if small is not None and not self._fused.on_quads:  # (the quads carry it up themselves)
                raw_gain = F.interpolate(raw_gain, size=(h, w), mode="bilinear", align_corners=False)
            del net_in
        y, uv, stats, sig = self._fused.frames(raw, raw_gain, shoulders, self.stage, self.cfg, keep_signal)
        return self._finish(y, uv, stats, params, sig)

    # the fused path's parts, as tests and tools reach them
    @property
    def _fused_light(self) -> Compiled | None:
        return None if self._fused is None else self._fused.light

    @property
    def _tables(self):
        return None if self._fused is None else self._fused.tables

    @property
    def _quad_planes(self) -> Compiled | None:
        return None if self._fused is None else self._fused.quad_planes

    def _quads(self, frame: torch.Tensor, log_gain: torch.Tensor | None, keep_signal: bool, shoulder: bool):
        """One frame through the CPU's quad loops (:meth:`~.colour_paths.FusedPath.quads`)."""
        return self._fused.quads(frame, log_gain, self.stage, self.cfg, keep_signal, shoulder)

    def _encode_bands(self, sdr_linear: torch.Tensor, gain: torch.Tensor, keep_signal: bool):
        """The eager colour stage in bands (:func:`~.colour_paths.encode_bands`)."""
        return encode_bands(sdr_linear, gain, self.stage, keep_signal, self.limit_to_peak)

    def _shoulders(self, log_gain: torch.Tensor) -> list[bool]:
        """For each frame of the raw log gain (B, 1, h, w), whether any pixel can pass the
        shoulder's knee. SDR light is at most SDR white and the gain at most e^max(g) (the light
        gate is at most 1; carrying the gain up bilinearly keeps its maximum), so a frame whose
        white · e^max(g) stays below the knee has a shoulder of exactly 1, which the fused stage
        then skips (2.4 ms per 1080p frame on the 2-core CPU). On a GPU (no host sync): all True."""
        if self.device.type != "cpu":
            return [True] * log_gain.shape[0]
        c = self.stage
        reach = c.white_nits * torch.exp(log_gain.flatten(1).amax(1).float() + self.cfg.curve_max)
        return (reach >= c.knee_nits * (1 - 1e-4)).tolist()

    def limit_to_peak(self, y: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`~hdrvideo.pipeline.colour_stage.limit_to_peak` at this processor's peak."""
        return colour_stage.limit_to_peak(y, uv, self.stage.peak_signal)

    @torch.no_grad()
    def warm_up(self, height: int, width: int, keep_signal: bool = False) -> None:
        """Compile (or load from the cache) every graph frames of this size can need, so that none
        is compiled mid-stream (a frame that first brings a highlight past the shoulder's knee, or
        the first one with a highlight at all, would otherwise stall a live stream for seconds):
        a black frame, a frame with a clipped patch, and the quad loops with and without the
        shoulder. Then :meth:`reset`."""
        frame = np.zeros((1, height, width, 3), np.uint8)
        self.process(frame, keep_signal)
        frame[:, height // 4 : height // 2, width // 4 : width // 2] = 255
        self.process(frame, keep_signal)
        if self._tables is not None and self.model is not None and self._fused_light.usable:
            small = self._net_input_size(height, width) or (height, width)
            gain = torch.zeros(1, 1, *small, device=self.device)
            for shoulder in (True, False):
                self._quads(torch.from_numpy(frame).to(self.device), gain, keep_signal, shoulder)
        self.reset()

    def reset(self) -> None:
        """Forget state carried between batches (call between unrelated clips)."""
        self._last_params = None
        self._net_cache = None
        self._rnn_state = None
        if self.temporal is not None and hasattr(self.temporal, "reset"):
            self.temporal.reset()
