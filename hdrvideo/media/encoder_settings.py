"""How an HDR video stream is encoded: containers, codecs, their options and complete HDR signalling.

Signalling (see ../shared/notes/hdr-video-facts.md, checked with PyAV 18 / x265 4.2 / SVT-AV1 4.1):
PQ with libx265 sets ``hdr10=1``, the mastering display (BT.2020 primaries, D65, max = peak,
min 0.0001 cd/m², SMPTE ST 2086) and the content light level (CTA-861.3) in ``x265-params``;
SVT-AV1 the same through ``svtav1-params``; HLG sets the ARIB STD-B67 transfer and x265's
alternative-transfer SEI. Colour tags use the H.273 code points below.
"""

from __future__ import annotations

from dataclasses import dataclass

from .light_level import cll_placeholder
from .mov_boxes import BT2020_D65_XY

__all__ = ["CODECS", "CONTAINERS", "HARDWARE", "PIPE_FORMATS", "hardware_problem", "EncodeError", "EncoderSettings", "PIXEL_FORMATS", "codec_options"]

CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".ts": "mpegts", ".m2ts": "mpegts"}
PIPE_FORMATS = ("matroska", "nut", "mpegts", "mp4")
"""Containers for a piped output (``convert IN -``): streamable, written front to back."""
CODECS = {"hevc": "libx265", "av1": "libsvtav1", "prores": "prores_ks", "ffv1": "ffv1",
          "hevc_nvenc": "hevc_nvenc", "av1_nvenc": "av1_nvenc"}  # fmt: skip
PIXEL_FORMATS = {"hevc": "yuv420p10le", "av1": "yuv420p10le", "prores": "yuv444p10le", "ffv1": "yuv420p10le",
                 "hevc_nvenc": "p010le", "av1_nvenc": "p010le"}  # fmt: skip
HARDWARE = ("hevc_nvenc", "av1_nvenc")
"""NVIDIA's encoders (NVENC): 10-bit P010 input, constant-quality VBR; where no NVENC opens, one line."""
NVENC_PRESETS = tuple(f"p{i}" for i in range(1, 8))
X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")  # fmt: skip
CRF_RANGE = {"hevc": (0, 51), "av1": (0, 63), "hevc_nvenc": (0, 51), "av1_nvenc": (0, 63)}
_CAN_HOLD = {  # which codecs each container takes
    "matroska": {"hevc", "av1", "prores", "ffv1", *HARDWARE},
    "mp4": {"hevc", "av1", *HARDWARE},
    "mov": {"hevc", "prores", "hevc_nvenc"},  # FFmpeg's QuickTime muxer refuses AV1 (it writes it in .mp4 only)
    "mpegts": {"hevc", "av1", *HARDWARE},
    "nut": {"hevc", "av1", "prores", "ffv1", *HARDWARE},  # pipes only (``--format nut``)
}

# H.273 code points
PRIMARIES_BT2020 = 9
MATRIX_BT2020_NCL = 9
RANGE_LIMITED = 1
TRC = {"pq": 16, "hlg": 18}

# BT.2020 primaries and D65 (mov_boxes.BT2020_D65_XY, one source): x265 in units of 0.00002,
# SVT-AV1 as decimals; order G, B, R, white point (SMPTE ST 2086)
_XY = tuple(zip(("G", "B", "R", "WP"), BT2020_D65_XY, strict=True))
MASTER_XY = "".join(f"{k}({round(x / 0.00002)},{round(y / 0.00002)})" for k, (x, y) in _XY)
MASTER_XY_FLOAT = "".join(f"{k}({x:.4f},{y:.4f})" if k == "WP" else f"{k}({x:.3f},{y:.3f})" for k, (x, y) in _XY)


class EncodeError(Exception):
    """The output cannot be written: one clear line for the user."""


@dataclass
class EncoderSettings:
    """How to encode. crf/preset None take the codec's defaults below (``check_options`` checks
    them against the codec before any work starts)."""

    codec: str = "hevc"
    transfer: str = "pq"
    peak_nits: float = 1000.0
    crf: int | None = None
    preset: str | None = None
    low_latency: bool = False
    threads: int = 0
    encoder: str = "pyav"  # or "ffmpeg": a system ffmpeg through ffmpeg-python
    # False for live network outputs, whose light levels cannot be known or patched afterwards:
    # MaxCLL/MaxFALL are then signalled as 0, "unknown" (CTA-861.3)
    light_level_known: bool = True
    jobs: int = 1  # encoders at once on consecutive chunks (chunked_encode), each on cores / jobs threads
    chunk_frames: tuple[int, int] | None = None  # (fewest, most) frames in a chunk; None: chunk_limits's

    def check_options(self) -> None:
        """``crf`` and ``preset`` for this codec (x265: CRF 0–51 and its named presets; SVT-AV1:
        CRF 0–63 and presets 0–13; ProRes and FFV1 take neither), or :class:`EncodeError`."""
        if self.codec not in CODECS:
            raise EncodeError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        if self.crf is not None:
            if self.codec not in CRF_RANGE:
                raise EncodeError(f"--crf applies to hevc and av1, not {self.codec}")
            lo, hi = CRF_RANGE[self.codec]
            if not lo <= self.crf <= hi:
                raise EncodeError(f"--crf for {self.codec} must be in {lo}–{hi}, got {self.crf}")
        if self.preset is not None:
            if self.codec == "hevc" and self.preset not in X265_PRESETS:
                raise EncodeError(f"--preset for hevc must be one of {', '.join(X265_PRESETS)}, got {self.preset!r}")
            if self.codec == "av1" and not (self.preset.isdigit() and 0 <= int(self.preset) <= 13):
                raise EncodeError(f"--preset for av1 (SVT-AV1) must be 0 … 13, got {self.preset!r}")
            if self.codec in HARDWARE and self.preset not in NVENC_PRESETS:
                raise EncodeError(f"--preset for {self.codec} must be p1 (fastest) … p7 (best), got {self.preset!r}")
            if self.codec in ("prores", "ffv1"):
                raise EncodeError(f"--preset applies to hevc and av1, not {self.codec}")
        if self.jobs != 1:
            if self.jobs < 1:
                raise EncodeError(f"--encode-jobs must be 1 or more, got {self.jobs}")
            if self.codec not in ("hevc", "av1") or self.encoder != "pyav" or self.low_latency:
                raise EncodeError("--encode-jobs applies to hevc and av1 (x265, SVT-AV1) through PyAV, "
                                  f"not to {self.codec}{' through ffmpeg' if self.encoder != 'pyav' else ''}"
                                  f"{' live' if self.low_latency else ''}")  # fmt: skip
        if self.codec in HARDWARE and self.encoder == "pyav":
            problem = hardware_problem(self.codec)
            if problem is not None:
                raise EncodeError(f"--codec {self.codec}: no NVENC encoder opens here ({problem}); it needs an "
                                  "NVIDIA GPU with NVENC and its driver (the H100 and H200 have none): use "
                                  f"--codec {self.codec.split('_')[0]}")  # fmt: skip

    def validate(self, container_format: str) -> None:
        import av  # here only: the CLI loads this module at start-up

        self.check_options()
        if self.encoder == "pyav" and CODECS[self.codec] not in av.codecs_available:
            raise EncodeError(f"this PyAV build has no {CODECS[self.codec]} encoder (try --encoder ffmpeg)")
        if self.codec not in _CAN_HOLD.get(container_format, set()):
            holders = [ext for ext, f in CONTAINERS.items() if self.codec in _CAN_HOLD.get(f, set())]
            raise EncodeError(f"{container_format} cannot hold {self.codec}; use {' or '.join(holders)}")


def _threads_per_job(jobs: int) -> int:
    from .chunked_encode import cores

    return max(1, cores() // jobs)


def codec_options(s: EncoderSettings) -> dict[str, str]:
    placeholder = cll_placeholder(s.peak_nits) if s.light_level_known else 0
    if s.codec == "hevc":
        params = ["log-level=error", "repeat-headers=1", "colorprim=bt2020", "colormatrix=bt2020nc", "range=limited"]
        if s.transfer == "pq":
            params += [
                "hdr10=1",
                "hdr10-opt=1",
                "transfer=smpte2084",
                f"master-display={MASTER_XY}L({round(s.peak_nits * 10000)},1)",
                f"max-cll={placeholder},{placeholder}",
            ]
        else:
            params += ["transfer=arib-std-b67", "atc-sei=18"]
        if s.low_latency:
            params += ["bframes=0", "rc-lookahead=0", "frame-threads=1"]
        if s.jobs > 1:  # each chunk's encoder on its share of the cores
            params.append(f"pools={_threads_per_job(s.jobs)}")
        opts = {"x265-params": ":".join(params), "crf": str(s.crf if s.crf is not None else 18)}
        opts["preset"] = s.preset or ("ultrafast" if s.low_latency else "medium")
        if s.low_latency:
            opts["tune"] = "zerolatency"
        return opts
    if s.codec == "av1":
        params = []
        if s.transfer == "pq":
            params += [
                f"mastering-display={MASTER_XY_FLOAT}L({s.peak_nits:g},0.0001)",
                f"content-light={placeholder},{placeholder}",
            ]
        if s.jobs > 1:
            params.append(f"lp={_threads_per_job(s.jobs)}")
        opts = {"crf": str(s.crf if s.crf is not None else 30), "preset": s.preset or ("12" if s.low_latency else "8")}
        if params:
            opts["svtav1-params"] = ":".join(params)
        return opts
    if s.codec in HARDWARE:  # constant quality (VBR with a CQ target), NVIDIA's presets p1 … p7
        opts = {"preset": s.preset or ("p1" if s.low_latency else "p5"), "tune": "ll" if s.low_latency else "hq",
                "rc": "vbr", "cq": str(s.crf if s.crf is not None else 21)}  # fmt: skip
        if s.codec == "hevc_nvenc":
            opts["profile"] = "main10"
        if s.low_latency:
            opts["delay"] = "0"
        return opts
    if s.codec == "prores":
        return {"profile": "4", "vendor": "apl0"}  # ProRes 4444: 10-bit 4:4:4
    return {"level": "3", "slices": "4", "slicecrc": "1"}  # FFV1 version 3


_HARDWARE_PROBLEMS: dict[str, str | None] = {}


def hardware_problem(codec: str) -> str | None:
    """Why ``codec`` (an NVENC encoder) cannot open here, or None when it opens: a 256×256 P010
    encoder is opened once per process (no NVIDIA driver, a GPU without NVENC, a PyAV without it)."""
    if codec not in _HARDWARE_PROBLEMS:
        from fractions import Fraction

        import av  # here only: the CLI loads this module at start-up

        if codec not in av.codecs_available:
            _HARDWARE_PROBLEMS[codec] = f"this PyAV build has no {codec}"
        else:
            try:
                cc = av.CodecContext.create(codec, "w")
                cc.width, cc.height, cc.pix_fmt, cc.time_base = 256, 256, "p010le", Fraction(1, 25)
                cc.open()
                _HARDWARE_PROBLEMS[codec] = None
            except (av.error.FFmpegError, OSError, ValueError) as e:
                _HARDWARE_PROBLEMS[codec] = (getattr(e, "strerror", None) or str(e)).strip().splitlines()[0]
    return _HARDWARE_PROBLEMS[codec]
