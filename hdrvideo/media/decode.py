"""Reading SDR video with PyAV: probing, input colour, and frames as RGB arrays.

The input's Y'CbCr matrix and range come from its tags; untagged input is taken as BT.709 from
720 lines up and BT.601 below (what players do). Frames are converted to R'G'B' by swscale with
those settings explicitly (PyAV otherwise decodes untagged HD with BT.601), to ``rgb24`` for 8-bit
sources and ``rgb48le`` for deeper ones. Odd sizes are padded to even by repeating the last row
or column (4:2:0 output needs even sizes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

__all__ = ["InputError", "VideoInfo", "probe", "open_input", "frame_to_rgb", "frame_to_input", "read_rgb_frames",
           "short_error", "to_planar"]

PLANAR_420 = ("yuv420p", "yuvj420p")
"""Decoder formats whose planes can go to the processor as they are (8-bit, 4:2:0, planar)."""
SEMI_PLANAR = {"nv12": "yuv420p", "p010le": "yuv420p10le", "p016le": "yuv420p16le"}
"""Hardware decoders' frame layouts (NVDEC: interleaved CbCr) → the planar layout with the same codes."""

TRC_PQ, TRC_HLG = 16, 18
# AVColorSpace values → our matrix names (H.273 matrix_coefficients)
_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_SWS = {"bt709": Colorspace.ITU709, "bt601": Colorspace.ITU601, "bt2020": Colorspace.BT2020}


class InputError(Exception):
    """The input cannot be read as video: one clear line for the user."""


@dataclass
class VideoInfo:
    """What the converter needs to know about the input's video stream."""

    path: Path
    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    frames: int  # as the container presents them (header; an edit list's estimate); 0 where unknown
    duration_s: float | None
    matrix: str  # bt601 | bt709 | bt2020 (as read, or guessed)
    matrix_guessed: bool
    full_range: bool
    transfer: int  # AVColorTransferCharacteristic
    bit_depth: int
    codec: str = ""
    other_streams: list[str] = field(default_factory=list)
    sample_aspect: Fraction | None = None
    """The pixels' aspect ratio (SAR) where it is not square (anamorphic PAL/NTSC DVD: 16:15, 64:45 …)."""
    has_alpha: bool = False
    timecode: str | None = None  # the source's start timecode (a MOV/MP4 tmcd track, a tag), as HH:MM:SS:FF
    frames_exact: bool = True
    """False where ``frames`` is an estimate (duration × rate): an edit list hides some of the
    stream's samples (pre-roll, trimmed ends), so its sample count is not what plays."""

    @property
    def is_hdr(self) -> bool:
        return self.transfer in (TRC_PQ, TRC_HLG)

    @property
    def padded_size(self) -> tuple[int, int]:
        """(width, height) rounded up to even."""
        return self.width + self.width % 2, self.height + self.height % 2


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a directory, not a video file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"input is empty (0 bytes): {path}")


PIPE = "-"
"""The name of standard input or output, as ffmpeg takes it."""


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a media file (or ``-``: a stream piped into standard input, e.g. from ``ffmpeg -f nut -``)
    for reading, or raise :class:`InputError` with a one-line reason."""
    if str(path) == PIPE:
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no input on standard input: pipe a stream into it "
                             "(e.g. ffmpeg -i in.mp4 -f nut - | hdrvideo convert - out.mkv)")  # fmt: skip
        try:
            return av.open("pipe:0", metadata_errors="ignore")
        except (av.error.FFmpegError, OSError) as e:
            raise InputError(f"not a readable media stream on standard input ({short_error(e)})") from None
    path = Path(path)
    _check_path(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise InputError(f"not a readable media file: {path} ({short_error(e)})") from None


def short_error(e: BaseException) -> str:
    """The first line of an exception's message, for one-line user errors."""
    msg = getattr(e, "strerror", None) or str(e)
    return msg.strip().splitlines()[0] if msg else type(e).__name__


def presented_frames(samples: int, duration_s: float | None, rate: Fraction | None) -> tuple[int, bool]:
    """How many frames a stream presents: (count, exact). Its sample count where the presented
    duration agrees with it (within a frame and 1%); where it is clearly shorter, an edit list
    (MP4/MOV: phone cameras and editors write them) hides samples such as a GOP's pre-roll, and
    the decoder returns only what it presents: then duration × rate, not exact."""
    if samples and duration_s and rate:
        shown = round(duration_s * float(rate))
        if shown < samples - (1 + 0.01 * samples):
            return shown, False
    return samples, True


def _tag(tags, key: str) -> str | None:
    """A metadata tag whatever its case (Matroska writes TIMECODE, MOV timecode)."""
    return next((v for k, v in tags.items() if k.lower() == key and v), None)


def _data_timecode(container) -> str | None:
    """The timecode of a timecode track (QuickTime tmcd, a data stream), where there is one."""
    return next((_tag(t.metadata, "timecode") for t in container.streams if t.type == "data" and _tag(t.metadata, "timecode")), None)


def _sample_aspect(s) -> Fraction | None:
    """The stream's SAR (the container's, else the codec's), None where square or unknown."""
    for sar in (getattr(s, "sample_aspect_ratio", None), s.codec_context.sample_aspect_ratio):
        if sar and sar.numerator > 0 and sar != 1:
            return Fraction(sar.numerator, sar.denominator)
    return None


def probe(container: av.container.InputContainer, path: Path) -> VideoInfo:
    """Describe the first video stream of an open container."""
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise InputError(f"no video stream in {path} (it has: {', '.join(kinds)})")
    s = container.streams.video[0]
    cc = s.codec_context
    if not cc.width or not cc.height:
        raise InputError(f"video stream has no frame size: {path}")
    fmt = cc.format
    bit_depth = 8
    if fmt is not None and fmt.components:
        bit_depth = max(c.bits for c in fmt.components)
    matrix = _MATRIX.get(int(cc.colorspace or 2))
    guessed = matrix is None
    if matrix is None:
        matrix = "bt709" if cc.height >= 720 else "bt601"
    pix = fmt.name if fmt is not None else ""
    full = int(cc.color_range or 0) == 2 or pix.startswith("yuvj")
    duration = (
        float(s.duration * s.time_base) if s.duration else (container.duration / 1e6 if container.duration else None)
    )
    others = [f"{t.type}:{t.codec_context.name if t.codec_context else '?'}" for t in container.streams if t is not s]
    frames, exact = presented_frames(int(s.frames or 0), duration, s.guessed_rate or s.average_rate)
    return VideoInfo(
        path=path,
        width=cc.width,
        height=cc.height,
        time_base=s.time_base or Fraction(1, 90000),
        rate=s.average_rate or s.guessed_rate,
        frames=frames,
        frames_exact=exact,
        sample_aspect=_sample_aspect(s),
        has_alpha=fmt is not None and len(fmt.components) == 4,
        timecode=_tag(s.metadata, "timecode") or _tag(container.metadata, "timecode") or _data_timecode(container),
        duration_s=duration,
        matrix=matrix,
        matrix_guessed=guessed,
        full_range=full,
        transfer=int(cc.color_trc or 2),
        bit_depth=bit_depth,
        codec=cc.name,
        other_streams=others,
    )


def to_planar(frame: av.VideoFrame) -> av.VideoFrame:
    """A frame in a hardware decoder's semi-planar layout (:data:`SEMI_PLANAR`) → the planar
    layout with the same codes (swscale's straight copy: converting ``nv12`` to RGB directly takes
    another chroma path in swscale and differs by up to 19 codes); any other frame as it is."""
    planar = SEMI_PLANAR.get(frame.format.name)
    return frame if planar is None else frame.reformat(format=planar)


def frame_to_rgb(frame: av.VideoFrame, info: VideoInfo) -> np.ndarray:
    """Decoded frame → (H', W', 3) R'G'B' (uint8, or uint16 for sources deeper than 8 bits),
    padded to even size by edge replication. Hardware decoders' layouts read as the software
    decoders' (:func:`to_planar`): the same codes give the same R'G'B'."""
    frame = to_planar(frame)
    fmt = "rgb48le" if info.bit_depth > 8 else "rgb24"
    rgb = frame.reformat(
        format=fmt,
        src_colorspace=_SWS[info.matrix],
        dst_colorspace=_SWS[info.matrix],
        src_color_range=ColorRange.JPEG if info.full_range else ColorRange.MPEG,
        dst_color_range=ColorRange.JPEG,
    ).to_ndarray()
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return rgb


def frame_to_input(frame: av.VideoFrame, info: VideoInfo, planes: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A decoded frame as the processor takes it: with ``planes``, an 8-bit planar 4:2:0 frame of
    even size as its Y' (H, W) and CbCr (2, H/2, W/2) uint8 planes (copies: the decoder may reuse
    its buffers; :mod:`hdrvideo.pipeline.ycbcr_input` turns them into R'G'B' on the device);
    anything else, or without ``planes``, :func:`frame_to_rgb`. NVDEC's ``nv12`` counts as planar
    (:func:`to_planar`)."""
    frame = to_planar(frame)
    if planes and info.bit_depth == 8 and frame.format.name in PLANAR_420 and not (frame.width % 2 or frame.height % 2):
        h, w = frame.height, frame.width
        y = _plane(frame.planes[0], h, w)
        return y, np.stack([_plane(frame.planes[1], h // 2, w // 2), _plane(frame.planes[2], h // 2, w // 2)])
    return frame_to_rgb(frame, info)


def _plane(plane, h: int, w: int) -> np.ndarray:
    """One plane without its line padding (PyAV pads each line to ``line_size`` bytes)."""
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w].copy()


def read_rgb_frames(path: str | Path, count: int | None = None) -> tuple[np.ndarray, VideoInfo]:
    """The first ``count`` frames of a video file (all with None) as (N, H', W', 3) R'G'B'
    (:func:`frame_to_rgb`), and its :class:`VideoInfo`: for scripts and tests that want a clip
    in memory."""
    path = Path(path)
    container = open_input(path)
    try:
        info = probe(container, path)
        frames = []
        for f in container.decode(container.streams.video[0]):
            frames.append(frame_to_rgb(f, info))
            if len(frames) == count:
                break
    finally:
        container.close()
    return np.stack(frames), info
