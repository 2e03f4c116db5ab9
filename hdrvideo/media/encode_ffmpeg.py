"""``--encoder ffmpeg``: hand the 10-bit planes to a system ``ffmpeg`` through ffmpeg-python.

For encoders that PyAV's bundled FFmpeg lacks (a newer x265, SVT-AV1, hardware encoders in a
local build). The same planes, colour tags and HDR10 metadata as :class:`~hdrvideo.media.encode.HDRWriter`
(the x265 / SVT-AV1 parameters are built by the same function), and the same true MaxCLL/MaxFALL
patch after the file is complete. Differences, by the nature of a raw-video pipe:

- the video is written at a constant frame rate (the input's); variable-frame-rate input is
  refused at its first irregular frame, with a message pointing at the default encoder;
- audio and subtitle streams are copied by ffmpeg itself from the input file (``-map 1:N -c copy``);
- display rotation is not carried over: a rotated input is refused with one line.

The writer has the interface of ``HDRWriter`` that ``convert`` uses.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .decoded_light import file_peak_nits
from .encoder_settings import CODECS, PIXEL_FORMATS, EncodeError, EncoderSettings, codec_options
from .light_level import cll_placeholder, content_light_level, patch_content_light_level

__all__ = ["FFmpegWriter", "ffmpeg_has_encoder"]

_TRC_NAMES = {"pq": "smpte2084", "hlg": "arib-std-b67"}


def ffmpeg_has_encoder(name: str, exe: str = "ffmpeg") -> bool:
    """Whether the ffmpeg binary lists the encoder ``name``."""
    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" "))


class FFmpegWriter:
    """An output file written by a system ffmpeg process fed raw yuv420p10le frames on stdin."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction | None,
        settings: EncoderSettings,
        container_format: str,
        metadata: dict[str, str] | None = None,
        source: str | Path | None = None,
        sample_aspect: Fraction | None = None,
        timecode: str | None = None,
    ) -> None:
        import ffmpeg

        exe = shutil.which("ffmpeg")
        if exe is None:
            raise EncodeError("--encoder ffmpeg needs an ffmpeg program on PATH (none found)")
        if settings.codec not in ("hevc", "av1"):
            raise EncodeError("--encoder ffmpeg writes --codec hevc or av1")
        encoder = CODECS[settings.codec]
        if not ffmpeg_has_encoder(encoder, exe):
            raise EncodeError(f"the ffmpeg at {exe} has no {encoder} encoder")
        self.path, self.settings = Path(path), settings
        self.width, self.height = width, height
        self._sample_aspect = sample_aspect
        self._timecode = timecode
        self.rate = rate or Fraction(25)
        self.step = 1 / (self.rate * time_base)  # pts per frame in the input time base
        self._rotation = 0
        self.max_cll = self.max_fall = 0.0
        self.frames = 0
        self._first_pts: int | None = None
        self._copies: list[int] = []
        self._source = source
        self._proc: subprocess.Popen | None = None
        self._stderr: list[bytes] = []
        opts = dict(codec_options(settings))
        out_opts: dict[str, str] = {
            "vcodec": encoder,
            "pix_fmt": "yuv420p10le",
            "color_primaries": "bt2020",
            "color_trc": _TRC_NAMES[settings.transfer],
            "colorspace": "bt2020nc",
            "color_range": "tv",
            "format": container_format,
            **opts,
        }
        if container_format == "matroska":
            out_opts["write_crc32"] = "0"  # so that the MaxCLL patch keeps the file valid
        if container_format in ("mp4", "mov"):
            out_opts["movflags"] = "+faststart"
            if settings.codec == "hevc":
                out_opts["tag:v"] = "hvc1"
        self._metadata = [f"{k}={v}" for k, v in (metadata or {}).items()]
        self._ffmpeg, self._exe, self._out_opts = ffmpeg, exe, out_opts
        self._pipe_input = ffmpeg.input(
            "pipe:", format="rawvideo", pix_fmt=PIXEL_FORMATS[settings.codec], s=f"{width}x{height}", framerate=str(self.rate)
        )

    # -- streams copied by ffmpeg from the input ------------------------------------------------

    @property
    def encoded(self) -> int:
        """Frames handed to ffmpeg (its encoder's own progress is not visible from here)."""
        return self.frames

    @property
    def rotation(self) -> int:
        return self._rotation

    @rotation.setter
    def rotation(self, degrees: int) -> None:
        """The input's display rotation: this path cannot carry it, so a rotated input is refused
        (one line) rather than written to play sideways."""
        if degrees % 360:
            raise EncodeError(
                f"--encoder ffmpeg cannot carry the input's display rotation ({degrees}°): the output would "
                "play sideways; use the default encoder (pyav), which keeps it"
            )
        self._rotation = 0
    def add_copy(self, in_stream: av.stream.Stream) -> bool:
        if self._source is None:
            return False
        self._copies.append(in_stream.index)
        return True

    def add_transcode(self, in_stream: av.stream.Stream) -> str | None:
        return None

    def mux(self, packet: av.Packet) -> None:
        """Copied streams are read by ffmpeg from the input file: nothing to do per packet."""

    def encode_audio(self, index: int, frame: av.AudioFrame | None) -> None:
        raise EncodeError("--encoder ffmpeg does not re-encode audio")

    # -- video ----------------------------------------------------------------------------------
    def _start(self) -> None:
        ffmpeg = self._ffmpeg
        streams = [self._pipe_input]
        if self._copies:
            src = ffmpeg.input(str(self._source))
            streams += [src[str(i)] for i in self._copies]
        opts = dict(self._out_opts)
        if self._sample_aspect is not None:  # anamorphic: the same pixel shape, as a display aspect
            dar = self._sample_aspect * Fraction(self.width, self.height)
            opts["aspect"] = f"{dar.numerator}:{dar.denominator}"
        if self._timecode:
            opts["timecode"] = self._timecode
        if self._copies:
            opts.update({"acodec": "copy", "scodec": "copy"})
        out = ffmpeg.output(*streams, str(self.path), **opts)
        out = out.global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        args = out.overwrite_output().compile(cmd=self._exe)
        # -metadata is an output option: it goes just before the output's name (as a global
        # argument it came before the inputs, where ffmpeg dropped it: no title, no made-by line)
        at = len(args) - 1 - args[::-1].index(str(self.path))
        args[at:at] = sum((["-metadata", m] for m in self._metadata), [])
        # in a session of its own: Ctrl-C or SIGTERM to our process group reaches us, not ffmpeg, so
        # the interruption is ours to report (exit 130) and abort() ends ffmpeg; without us, its
        # stdin closes and it ends too
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    def _failure(self) -> str:
        text = b"".join(self._stderr[-5:]).decode(errors="replace").strip().splitlines()
        return text[-1] if text else "ffmpeg stopped"

    def write_planes(self, y: np.ndarray, uv: np.ndarray, pts: int | None, max_cll: float, max_fall: float) -> None:
        """Send one frame: y (H, W), uv (2, H/2, W/2) uint16 10-bit codes."""
        if self._proc is None:
            self._start()
        if pts is not None:
            if self._first_pts is None:
                self._first_pts = pts
            expected = self._first_pts + self.frames * self.step
            if abs(pts - expected) > 0.1 * self.step + 1:  # beyond rounding of the container's clock
                raise EncodeError(
                    "variable frame rate input: --encoder ffmpeg writes a constant rate; use the default encoder"
                )
        try:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write(np.ascontiguousarray(y, dtype="<u2").tobytes())
            self._proc.stdin.write(np.ascontiguousarray(uv, dtype="<u2").tobytes())
        except (BrokenPipeError, OSError):
            self._proc.wait()
            raise EncodeError(f"ffmpeg failed: {self._failure()}") from None
        self.max_cll = max(self.max_cll, float(max_cll))
        self.max_fall = max(self.max_fall, float(max_fall))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and write the true MaxCLL/MaxFALL into it."""
        if self._proc is None:
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        if self._proc.wait() != 0:
            raise EncodeError(f"ffmpeg failed: {self._failure()}")
        if self.settings.transfer == "pq":  # HEVC or AV1: in-band messages
            shown = file_peak_nits(self.path)  # what a decoder shows, the encoder's ringing included
            self.max_cll = max(self.max_cll, shown or 0.0)
            placeholder = cll_placeholder(self.settings.peak_nits)
            patch_content_light_level(self.path, self.settings.codec, placeholder, self.content_light_level())

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def content_light_level(self) -> tuple[int, int]:
        """(MaxCLL, MaxFALL) as written: measured maxima rounded up, never below the content."""
        return content_light_level(self.max_cll, self.max_fall)
