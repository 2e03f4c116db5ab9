"""One conversion's settings, and the one place that builds the model and the processor from them.

``convert``, ``stream``, ``batch`` and ``bench`` all describe a conversion with
:class:`ConversionSettings` (the model, the processor and the encoder) and get their
:class:`~hdrvideo.pipeline.processor.FrameProcessor` from :meth:`ConversionSettings.build_processor`
and their :class:`~hdrvideo.media.encode.EncoderSettings` from
:meth:`ConversionSettings.encoder_settings`, so a default or a check lives here once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..media.encode import EncodeError, EncoderSettings
from .looks import LOOKS

if TYPE_CHECKING:
    import torch

    from .processor import FrameProcessor

# torch, the model and the processor load when a processor is built: checking settings (and
# reporting a bad one) takes no time

__all__ = [
    "ConversionSettings",
    "SettingsError",
    "PRECISIONS",
    "QUALITIES",
    "COMPILE_MODES",
    "compile_mode",
    "pick_device",
    "network_dtype",
]

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
QUALITIES = ("fast", "balanced", "full")  # processor.QUALITY_LONG_SIDE's keys
COMPILE_MODES = ("auto", "on", "off")


def compile_mode() -> str:
    """The default of ``--compile``: ``$HDRVIDEO_COMPILE`` when it names a mode, else auto."""
    mode = os.environ.get("HDRVIDEO_COMPILE", "auto").strip().lower()
    return mode if mode in COMPILE_MODES else "auto"


class SettingsError(ValueError):
    """Settings that cannot work (a device that is not there, weights that do not load …): one line."""


def pick_device(device: str | None) -> str:
    """``--device`` → a torch device string: the given one (checked), else CUDA when present, else CPU."""
    import torch

    if device:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise SettingsError(f"--device {device}: not a device (use cpu, cuda or cuda:N)") from None
        if dev.type not in ("cpu", "cuda"):
            raise SettingsError(f"--device {device}: only cpu and cuda are supported")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SettingsError(f"--device {device}: no CUDA device is available here")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def network_dtype(precision: str, device: str) -> torch.dtype:
    """``--precision`` → the network's dtype. auto: float16 on a GPU; on a CPU bfloat16 where the CPU
    computes it natively (AVX512-BF16 or AMX: 1.4× faster for the same PU21 to 0.003 dB, see
    docs/speed.md), else float32. Colour math is float32 whatever this says."""
    import torch

    from .memory import cpu_has_native_bf16


    if precision == "auto":
        if device.startswith("cuda"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


METHODS = ("net", "bt2446a", "bt2446c")
"""``--method``: the network, or ITU-R BT.2446-1 Method A or C inverse tone mapping alone."""


@dataclass(frozen=True)
class ConversionSettings:
    """Everything one conversion needs besides its input and output.

    Model: ``method`` (:data:`METHODS`: net, or a BT.2446-1 formula in its place), ``weights`` (None: the shipped model; in fast mode on a CPU its distilled 16-channel
    form, :data:`~hdrvideo.model.CPU_FAST_MODEL_NAME`, where shipped), ``device`` (None: CUDA when present),
    ``precision`` (:data:`PRECISIONS`), ``quality`` (fast | balanced | full; None: full on a GPU,
    fast on a CPU), ``threads`` (torch threads, CPU). Processor: ``transfer`` (pq | hlg),
    ``peak_nits`` (cd/m², in (100, 10000]), ``strength`` (the expansion's log gain × this, in
    [0, 3]), ``look`` (:data:`~hdrvideo.pipeline.looks.LOOKS`: where mid-tones land),
    ``batch_size`` (None: 8 on a GPU, 2 on a CPU),
    ``temporal`` and its ``lookahead`` (frames). Encoder: ``codec``, ``crf``, ``preset``,
    ``encoder`` (pyav | ffmpeg). ``force``: convert input that is already HDR. ``compile``
    (:data:`COMPILE_MODES`; None: :func:`compile_mode`): auto compiles the colour stage and the
    network where a compiler works (else runs eagerly, with a note), on requires a compiler, off
    never compiles.
    """

    weights: str | None = None
    method: str = "net"
    transfer: str = "pq"
    peak_nits: float = 1000.0
    strength: float = 1.0
    look: str = "bt2408"
    device: str | None = None
    precision: str = "auto"
    quality: str | None = None
    batch_size: int | None = None
    temporal: bool = True
    lookahead: int = 4
    codec: str | None = "hevc"
    crf: int | None = None
    preset: str | None = None
    encoder: str = "pyav"
    force: bool = False
    threads: int | None = None
    compile: str | None = None
    decoder: str = "auto"
    encode_jobs: int = 1

    @property
    def compile_resolved(self) -> str:
        return self.compile or compile_mode()

    def validate(self) -> ConversionSettings:
        """Check what can be checked before any work starts; → self. Raises :class:`SettingsError`."""
        if not 100 < self.peak_nits <= 10000:
            raise SettingsError(f"--peak-nits must be in (100, 10000], got {self.peak_nits:g}")
        if self.method not in METHODS:
            raise SettingsError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method != "net" and (self.weights is not None or self.strength != 1 or self.look != "bt2408"):
            raise SettingsError(f"--method {self.method} is a formula: it takes neither --weights, --strength nor --look")
        if self.look not in LOOKS:
            raise SettingsError(f"--look must be one of {', '.join(LOOKS)}, got {self.look!r}")
        if not 0 <= self.strength <= 3:
            raise SettingsError(f"--strength must be in [0, 3], got {self.strength:g}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.quality is not None and self.quality not in QUALITIES:
            raise SettingsError(f"--quality must be one of {', '.join(QUALITIES)}, got {self.quality!r}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise SettingsError(f"--compile must be one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")
        if self.device:
            pick_device(self.device)
        from ..media.hw_decode import DECODERS, nvdec_problem

        if self.decoder not in DECODERS:
            raise SettingsError(f"--decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.decoder == "nvdec" and (problem := nvdec_problem(pick_device(self.device))) is not None:
            raise SettingsError(f"--decoder nvdec: no NVDEC opens here ({problem}); use --decoder software")
        try:  # the default codec's choice needs torch (is there a GPU?): checked as x265 here, before it loads
            self.with_(codec=self.codec or "hevc").encoder_settings().check_options()
        except EncodeError as e:
            raise SettingsError(str(e)) from None
        return self

    def with_(self, **changes) -> ConversionSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def resolved_quality(self, device: str) -> str:
        return self.quality or ("full" if device.startswith("cuda") else "fast")

    def batch_for(self, device_type: str) -> int:
        """Frames per batch: the setting or 8 on a GPU / 2 on a CPU, grown to hold the look-ahead."""
        batch = self.batch_size or (8 if device_type == "cuda" else 2)
        return max(batch, self.lookahead + 1) if self.temporal and self.lookahead else batch

    def chosen_codec(self) -> tuple[str, str | None]:
        """The codec, and a note where it was the default's choice on a GPU: ``codec`` None means
        hevc_nvenc where the device is a GPU whose NVENC opens, else x265 (hevc)."""
        if self.codec is not None:
            return self.codec, None
        if self.encoder != "pyav" or not pick_device(self.device).startswith("cuda"):
            return "hevc", None
        from ..media.encoder_settings import hardware_problem

        problem = hardware_problem("hevc_nvenc")
        if problem is None:
            return "hevc_nvenc", "a GPU with NVENC: hevc_nvenc encodes (--codec hevc for x265)"
        return "hevc", f"no NVENC opens on this GPU ({problem}; the H100 and H200 have none): x265 encodes on the CPU"

    def decoding(self, device: str) -> tuple[str, str | None]:
        """Who decodes for a processor on ``device``: (``nvdec`` | ``software``, a note or None);
        :func:`~hdrvideo.media.hw_decode.chosen_decoder`."""
        from ..media.decode import InputError
        from ..media.hw_decode import chosen_decoder

        try:
            return chosen_decoder(self.decoder, device)
        except InputError as e:
            raise SettingsError(str(e)) from None

    def encoder_settings(self, **extra) -> EncoderSettings:
        """The encoder part (``extra``: e.g. ``low_latency=True`` for live outputs)."""
        return EncoderSettings(codec=self.chosen_codec()[0], transfer=self.transfer, peak_nits=self.peak_nits, crf=self.crf,
                               preset=self.preset, encoder=self.encoder, jobs=self.encode_jobs, **extra)  # fmt: skip

    def build_processor(
        self, notify: Callable[[str], None] | None = None, tile: int | None = None
    ) -> FrameProcessor:
        """Load the model and build the processor. ``notify`` hears the one notice a user should get
        (fast mode chosen because there is no GPU). Raises :class:`SettingsError`."""
        import torch

        from ..model import CPU_FAST_MODEL_NAME, WeightsError, default_weights_path, load_model
        from .processor import QUALITY_LONG_SIDE, FrameProcessor

        self.validate()
        if self.threads:
            torch.set_num_threads(self.threads)
        device = pick_device(self.device)
        if self.method != "net":  # a formula: no network, no notice about fast mode
            try:
                return FrameProcessor(None, self.transfer, self.peak_nits, device=device, method=self.method)
            except ValueError as e:
                raise SettingsError(str(e)) from None
        quality = self.resolved_quality(device)
        if self.quality is None and quality == "fast" and notify is not None:
            notify("no GPU: using --quality fast (the network runs on a reduced frame)")
        weights, note = self.weights, None
        if weights is None and quality == "fast" and not device.startswith("cuda"):
            distilled = default_weights_path(CPU_FAST_MODEL_NAME)
            if distilled is not None:  # the shipped model's 16-channel form for CPUs (model card: 2× faster)
                weights = distilled
                note = f"fast mode on a CPU: {CPU_FAST_MODEL_NAME}, the shipped model's 16-channel form"
        try:
            model = load_model(weights, device=device, dtype=network_dtype(self.precision, device))
        except WeightsError as e:
            raise SettingsError(str(e)) from None
        compile = self.compile_resolved != "off"
        if self.compile_resolved == "on":
            from .compiled import compiler_missing

            missing = compiler_missing(torch.device(device))
            if missing:
                raise SettingsError(f"--compile on: {missing} (use --compile auto or off)")
        hook = None
        if self.temporal:
            from .temporal import TemporalConfig, TemporalFilter

            hook = TemporalFilter(TemporalConfig(lookahead=self.lookahead))
        try:
            proc = FrameProcessor(model, self.transfer, self.peak_nits, net_long_side=QUALITY_LONG_SIDE[quality],
                                  tile=tile, temporal=hook, compile=compile, strength=self.strength,
                                  look=self.look)  # fmt: skip
        except ValueError as e:
            raise SettingsError(str(e)) from None
        if note:
            proc.notes.append(note)
        return proc
