"""Writing HDR video with PyAV: the video stream, copied streams, and true HDR10 light levels.

Codec settings and HDR signalling live in :mod:`.encoder_settings`.

MaxCLL and MaxFALL must be true for the content written, but a one-pass encoder needs them before
the first frame. We open the encoder with a placeholder equal to the peak (an upper bound: the
processor never writes more than the peak), measure the real values on every frame as we go,
and when the file is complete, overwrite the 4 bytes of every content-light-level message in
the file in place (HEVC SEI payload 144; AV1 metadata OBU of type HDR_CLL), rounded up to whole cd/m² and
nudged so that no byte is zero (no emulation-prevention bytes); Matroska is written without CRC-32 elements.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .chunked_encode import ChunkedEncoder, SceneCuts, chunk_limits
from .decode import short_error
from .decoded_light import DecodedLight
from .encoder_settings import (  # noqa: F401 - re-exported: the writer's public names
    CODECS,
    CONTAINERS,
    HARDWARE,
    MATRIX_BT2020_NCL,
    PIXEL_FORMATS,
    PRIMARIES_BT2020,
    RANGE_LIMITED,
    TRC,
    EncodeError,
    EncoderSettings,
    codec_options,
)
from .hdr_metadata import av1_hdr_obus, hevc_hdr_sei, with_hdr_metadata
from .light_level import cll_placeholder, content_light_level, patch_content_light_level
from .mov_boxes import add_hdr_boxes, clli_box, mdcv_box
from .subtitles import add_mov_text, to_mov_text

__all__ = ["EncoderSettings", "HDRWriter", "CONTAINERS", "CODECS", "patch_content_light_level"]

WRITE_CHECK_S = 1.0
"""How often the writer checks that the output is really being written (seconds)."""
WRITE_LAG_BYTES = 8 << 20
"""Muxed bytes the file on disk may lag behind by (the muxers' own buffering is far less)."""
MIN_FREE_BYTES = 1 << 20
"""Free space below which the output's disk counts as full."""


def _file_size_limit() -> int | None:
    """The process's file-size limit in bytes (``ulimit -f``), None where there is none: FFmpeg
    would find it only when the file is closed, and the muxer's buffering hides it until then."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


class HDRWriter:
    """An output file: one HDR video stream plus streams copied from the input.

    ``write_planes`` takes one frame's 10-bit planes; ``mux`` copies a packet of another stream.
    Not thread-safe: one thread owns a writer.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction | None,
        settings: EncoderSettings,
        container_format: str | None = None,
        metadata: dict[str, str] | None = None,
        container_options: dict[str, str] | None = None,
        sample_aspect: Fraction | None = None,
        timecode: str | None = None,
    ) -> None:
        self.path = Path(path)
        fmt = container_format or CONTAINERS.get(self.path.suffix.lower())
        if fmt is None:
            raise EncodeError(f"unknown output container {self.path.suffix!r}; use one of {', '.join(CONTAINERS)}")
        settings.validate(fmt)
        self.format = fmt
        self.settings = settings
        self.width, self.height = width, height
        self.target = str(path)  # a file, a network URL (stream) or pipe:1 (standard output)
        self.local = "://" not in self.target and not self.target.startswith("pipe:")
        options = {"write_crc32": "0"} if fmt == "matroska" else {}
        if fmt in ("mp4", "mov") and (settings.low_latency or not self.local):  # nothing to seek back into
            options["movflags"] = "+frag_keyframe+empty_moov"
        elif fmt == "mp4":
            options["movflags"] = "+faststart"
        if settings.jobs > 1:  # chunks' packets arrive late: the muxer waits for them (audio is small)
            options["max_interleave_delta"] = "0"
        options.update(container_options or {})
        try:
            self.container = av.open(self.target, "w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as e:
            raise EncodeError(f"cannot write {self.target}: {short_error(e)}") from None
        if metadata:
            self.container.metadata.update(metadata)
        if settings.codec == "av1":  # SVT-AV1's 20-line banner off stderr: errors only (the user's value wins)
            os.environ.setdefault("SVT_LOG", "1")
        stream = self.container.add_stream(CODECS[settings.codec], rate=rate or Fraction(25))
        if settings.codec in ("hevc", "hevc_nvenc") and fmt in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # Apple players want hvc1, not hev1
        stream.time_base = time_base
        self._configure(stream.codec_context, rate, time_base, sample_aspect)
        if sample_aspect is not None:
            stream.sample_aspect_ratio = sample_aspect
        stream.metadata.update({"timecode": timecode} if timecode else {})  # MOV/MP4: a tmcd track; MKV: a tag
        self._chunks: ChunkedEncoder | None = None
        if settings.jobs > 1:
            fewest, most = settings.chunk_frames or chunk_limits(3 * width * height, settings.jobs, float(rate or 25))
            self._chunks = ChunkedEncoder(lambda: self._chunk_context(rate, time_base, sample_aspect), settings.jobs,
                                          fewest, most)  # fmt: skip
            self._cuts = SceneCuts()
        self.stream = stream
        # PQ light levels are measured again on what a decoder shows (encoder ringing; see decoded_light)
        measured = settings.transfer == "pq" and settings.codec not in ("prores", "ffv1") and settings.light_level_known
        self._decoded = DecodedLight(settings.codec) if measured else None
        self._bitstream = settings.codec.split("_")[0]  # hevc_nvenc writes HEVC, av1_nvenc AV1
        self._hdr_messages: bytes | None = None  # NVENC: the mastering display and light level, written by us
        if settings.codec in HARDWARE and settings.transfer == "pq":
            level = cll_placeholder(settings.peak_nits) if settings.light_level_known else 0
            messages = hevc_hdr_sei if settings.codec == "hevc_nvenc" else av1_hdr_obus
            self._hdr_messages = messages(settings.peak_nits, level, level)
        self.rotation = 0  # display rotation (degrees), applied when the first frame is written
        self._started = False
        self._early: list[av.Packet] = []
        self.max_cll = 0.0
        self.max_fall = 0.0
        self.frames = 0
        self.encoded = 0  # video packets muxed: frames the encoder has finished
        self._bytes = 0  # bytes of video packets handed to the muxer
        self._checked = time.monotonic()
        self._size_limit = _file_size_limit()
        self._copied: dict[int, av.stream.Stream] = {}
        self._transcoded: dict[int, tuple[av.audio.AudioStream, av.AudioResampler]] = {}
        self._subtitles: dict[int, tuple[av.subtitles.stream.SubtitleStream, av.stream.Stream]] = {}

    def _configure(self, cc: av.CodecContext, rate: Fraction | None, time_base: Fraction,
                   sample_aspect: Fraction | None) -> None:  # fmt: skip
        """The video encoder's settings: size, 10-bit format, BT.2020 tags, codec options."""
        settings = self.settings
        cc.width, cc.height = self.width, self.height
        cc.pix_fmt = PIXEL_FORMATS[settings.codec]
        cc.time_base = time_base
        cc.color_primaries = PRIMARIES_BT2020
        cc.color_trc = TRC[settings.transfer]
        cc.colorspace = MATRIX_BT2020_NCL
        cc.color_range = RANGE_LIMITED
        if settings.threads:
            cc.thread_count = settings.threads
        cc.options = codec_options(settings)
        if settings.low_latency:
            # a receiver that joins a live stream waits for the next keyframe (with its parameter
            # sets: repeat-headers): one a second, so default ffplay/VLC probing starts at once
            cc.gop_size = max(1, round(float(rate))) if rate else 30
        if sample_aspect is not None:  # anamorphic: the pixels' shape, in the bitstream's VUI and the container
            cc.sample_aspect_ratio = sample_aspect

    def _chunk_context(self, rate: Fraction | None, time_base: Fraction, sample_aspect: Fraction | None) -> av.CodecContext:
        """An encoder for the next chunk: the stream's own for the first (opened here, in the
        writer's thread unless the header, written for an early packet of another stream, opened
        it already), new alike ones after it."""
        if self._chunks is not None and self._chunks.started == 0:
            cc = self.stream.codec_context
        else:
            cc = av.CodecContext.create(CODECS[self.settings.codec], "w")
            cc.flags = self.stream.codec_context.flags
            self._configure(cc, rate, time_base, sample_aspect)
        if not cc.is_open:
            cc.open()
        return cc

    # -- streams copied from the input --------------------------------------------------------
    def add_copy(self, in_stream: av.stream.Stream) -> bool:
        """Copy a stream (audio, subtitles) without re-encoding; False if the container refuses it."""
        try:
            out = self.container.add_stream_from_template(in_stream)
        except (av.error.FFmpegError, ValueError, TypeError, NotImplementedError):
            return False
        for k in ("language", "title", "handler_name"):
            if k in in_stream.metadata:
                out.metadata[k] = in_stream.metadata[k]
        self._copied[in_stream.index] = out
        return True

    def add_transcode(self, in_stream: av.stream.Stream) -> str | None:
        """Re-encode a stream the container cannot hold as it is: audio as FLAC for PCM sources
        (lossless stays lossless), AAC otherwise; text subtitles (SRT, ASS, WebVTT) in MP4 or
        MOV as ``mov_text``, the only text format those carry. Returns the new codec's name, or
        None (bitmap subtitles, or a container that takes neither)."""
        if in_stream.type == "subtitle":
            return self._add_mov_text(in_stream)
        src = in_stream.codec_context
        codec = "flac" if src.name.startswith("pcm_") else "aac"
        try:
            out = self.container.add_stream(codec, rate=src.sample_rate or 48000)
            out.layout = src.layout.name if src.layout and src.layout.nb_channels <= 2 else "stereo"
            if codec == "aac":
                out.bit_rate = 192_000
        except (av.error.FFmpegError, ValueError, TypeError):
            return None
        for k in ("language", "title"):
            if k in in_stream.metadata:
                out.metadata[k] = in_stream.metadata[k]
        resampler = av.AudioResampler(format=out.codec_context.format, layout=out.layout, rate=out.rate)
        self._transcoded[in_stream.index] = (out, resampler)
        return codec

    def _add_mov_text(self, in_stream: av.stream.Stream) -> str | None:
        if self.container.format.name.split(",")[0] not in ("mov", "mp4"):
            return None
        out = add_mov_text(self.container, in_stream)
        if out is None:
            return None
        self._subtitles[in_stream.index] = (in_stream, out)
        return "mov_text"

    def encode_audio(self, index: int, frame: av.AudioFrame | None) -> None:
        """Encode a decoded frame of transcoded input stream ``index`` (None flushes it)."""
        out, resampler = self._transcoded[index]
        frames = resampler.resample(frame) if frame is not None else [*resampler.resample(None), None]
        for f in frames:
            for packet in out.encode(f):
                if not self._started:
                    self._early.append(packet)
                else:
                    self.container.mux(packet)

    def mux(self, packet: av.Packet) -> None:
        """Write a packet of a copied stream, or of a text subtitle stream carried as mov_text
        (demuxer flush packets are skipped)."""
        if packet.dts is None:
            return
        if packet.stream.index in self._subtitles:
            packet = to_mov_text(packet, *self._subtitles[packet.stream.index])
        elif packet.stream.index in self._copied:
            packet.stream = self._copied[packet.stream.index]
        else:
            return
        if packet is None:
            return
        if not self._started:  # the header waits for the video stream's rotation
            self._early.append(packet)
            return
        self.container.mux(packet)

    def _start(self) -> None:
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        self._started = True
        for packet in self._early:
            self.container.mux(packet)
        self._early.clear()

    # -- video -------------------------------------------------------------------------------
    def _frame(self, y: np.ndarray, uv: np.ndarray) -> av.VideoFrame:
        fmt = PIXEL_FORMATS[self.settings.codec]
        frame = av.VideoFrame(self.width, self.height, "yuv420p10le" if fmt == "p010le" else fmt)
        if fmt == "yuv444p10le":  # ProRes 4444: the 4:2:0 chroma up-sampled as a decoder would
            import torch  # here only: the module loads without torch (start-up checks)

            from ..colour.ycbcr import chroma_upsample_420

            up = chroma_upsample_420(torch.from_numpy(uv[None].astype(np.float32)))[0]
            uv = up.round().numpy().astype(np.uint16)
        for plane, data in zip(frame.planes, (y, uv[0], uv[1]), strict=True):
            view = np.frombuffer(plane, dtype=np.uint16).reshape(plane.height, plane.line_size // 2)
            view[:, : plane.width] = data
        if fmt == "p010le":  # NVENC: chroma interleaved, codes in the high 10 bits (a copy, no arithmetic)
            frame = frame.reformat(format="p010le")
        frame.color_primaries = PRIMARIES_BT2020
        frame.color_trc = TRC[self.settings.transfer]
        frame.colorspace = MATRIX_BT2020_NCL
        frame.color_range = RANGE_LIMITED
        return frame

    def write_planes(self, y: np.ndarray, uv: np.ndarray, pts: int | None, max_cll: float, max_fall: float) -> None:
        """Encode one frame: y (H, W), uv (2, H/2, W/2) uint16 10-bit codes; pts in the stream time base."""
        if not self._started:
            self._start()
        frame = self._frame(y, uv)
        frame.pts = pts
        frame.time_base = self.stream.codec_context.time_base
        self.max_cll = max(self.max_cll, float(max_cll))
        self.max_fall = max(self.max_fall, float(max_fall))
        packets = self.stream.encode(frame) if self._chunks is None else self._chunks.encode(frame, self._cuts.feed(y))
        for packet in packets:
            self._mux_video(packet)
        self.frames += 1

    def _mux_video(self, packet: av.Packet) -> None:
        if self._hdr_messages is not None and packet.is_keyframe:
            packet = self._with_messages(packet)
        packet.stream = self.stream  # (a chunk's encoder is not the stream's own)
        # libx265 returns an uninitialised DTS (0x7F7F…) for the only packet of a one-frame
        # encode; a DTS after the PTS is never valid, and the muxer refuses it
        if packet.pts is not None and packet.dts is not None and packet.dts > packet.pts:
            packet.dts = packet.pts
        if self._decoded is not None:
            self._decoded.feed(packet, self.stream.codec_context.extradata)
        self.container.mux(packet)
        self.encoded += 1
        self._bytes += packet.size
        if self.local and self._size_limit is not None and self._bytes > self._size_limit:
            raise OSError(errno.EFBIG, f"{self.path.name} reached the file-size limit (ulimit -f) of {self._size_limit} bytes")
        if self.local and time.monotonic() - self._checked > WRITE_CHECK_S:
            self._check_writing()

    def _with_messages(self, packet: av.Packet) -> av.Packet:
        """A keyframe with the HDR10 messages its encoder did not write (:mod:`.hdr_metadata`)."""
        out = av.Packet(with_hdr_metadata(bytes(packet), self._bitstream, self._hdr_messages))
        out.pts, out.dts, out.time_base, out.duration = packet.pts, packet.dts, packet.time_base, packet.duration
        out.is_keyframe = True
        return out

    def _check_writing(self) -> None:
        """Notice a failing output while the conversion goes on, not at its end: FFmpeg's I/O layer
        keeps a write error (a full disk, a file-size limit) to itself until the file is closed, so
        check that the file grows with what was muxed, and that its disk has room."""
        self._checked = time.monotonic()
        try:
            on_disk = os.path.getsize(self.path) if self.path.exists() else 0
            free = shutil.disk_usage(self.path.parent).free
        except OSError:  # the folder itself went away: the muxer will say so
            return
        if free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, f"the disk of {self.path.parent} is full")
        if self._bytes - on_disk > WRITE_LAG_BYTES:
            raise OSError(errno.EIO, f"{self.path.name} stopped growing after {on_disk} bytes (disk full or a file-size limit?)")

    def close(self) -> None:
        """Flush the encoder, finish the file and write the true MaxCLL/MaxFALL into it."""
        if not self._started:
            self._start()
        for packet in self.stream.encode(None) if self._chunks is None else self._chunks.flush():
            self._mux_video(packet)
        for index in self._transcoded:
            self.encode_audio(index, None)
        self.container.close()
        decoded = self._decoded.close() if self._decoded is not None else None
        if decoded is not None:  # never below what a decoder shows (the processor's own figure is on its input)
            self.max_cll = max(self.max_cll, decoded)
        if (
            self.settings.transfer == "pq"
            and self.settings.codec in ("hevc", "av1", *HARDWARE)
            and self.settings.light_level_known
            and self.local
            and self.path.is_file()
        ):
            placeholder = cll_placeholder(self.settings.peak_nits)
            patch_content_light_level(self.path, self._bitstream, placeholder, self.content_light_level())
        if self.settings.transfer == "pq" and self.settings.light_level_known and self.local and self.format == "mov":
            # QuickTime: in the sample description too (ProRes has no in-band place for them)
            add_hdr_boxes(self.path, mdcv_box(self.settings.peak_nits) + clli_box(*self.content_light_level()))

    def abort(self) -> None:
        """Close without flushing (the file is about to be deleted)."""
        if self._decoded is not None:
            self._decoded.stop()
        if self._chunks is not None:
            self._chunks.abort()
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass

    @property
    def bytes_written(self) -> int:
        """Bytes of video handed to the muxer (a pipe's size; containers add a little)."""
        return self._bytes

    def content_light_level(self) -> tuple[int, int]:
        """(MaxCLL, MaxFALL) as written: measured maxima rounded up, never below the content."""
        return content_light_level(self.max_cll, self.max_fall)
