"""Live input for ``hdrvideo stream``: what to capture, opening a camera or any FFmpeg input, and
the newest-wins buffer between capture and processing.

A camera path (``/dev/video*``) is read through video4linux2 with its size, rate and pixel format;
anything else (a capture device of another kind, ``lavfi``, a network URL, a file) is probed by
FFmpeg. Problems are one line each (:class:`StreamError`): no camera, no permission, no such
input format, an input that does not open.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass

import av
import numpy as np

from ..media.decode import short_error

__all__ = ["StreamError", "StreamOptions", "LatestFrames", "input_options", "open_source", "is_url", "is_regular_file"]


class StreamError(Exception):
    """The stream cannot start (or could not go on): one clear line for the user."""


@dataclass
class StreamOptions:
    """What to capture and where to send it."""

    input: str
    output: str
    input_format: str | None = None  # video4linux2, lavfi, … (None: FFmpeg probes)
    video_size: str | None = None  # WxH
    framerate: str | None = None
    pixel_format: str | None = None  # mjpeg, yuyv422 … (the camera's format)
    duration: float | None = None  # seconds of capture, then stop
    max_latency: float = 0.5  # seconds a captured frame may wait for processing
    batch_size: int = 1
    overwrite: bool = False
    realtime: bool | None = None  # read at the source's own frame rate (None: for regular files only)
    open_timeout: float = 10.0  # network inputs: seconds to connect / between packets
    read_timeout: float = 5.0


def is_url(s: str) -> bool:
    return "://" in s and not s.startswith("file://")


def is_regular_file(source: str) -> bool:
    """A file on disk (not a device, pipe or URL): it would be read as fast as it decodes."""
    return not is_url(source) and os.path.isfile(source)


def guess_input_format(source: str) -> str | None:
    """A camera device path means video4linux2; everything else is probed by FFmpeg."""
    if source.startswith("/dev/video"):
        return "video4linux2"
    return None


def input_options(opts: StreamOptions, fmt: str | None) -> dict[str, str]:
    """The FFmpeg demuxer options for the capture settings (what ``ffmpeg -f FMT -video_size …`` sets).

    video4linux2 names the camera's pixel format ``input_format``; other devices ``pixel_format``.
    """
    o: dict[str, str] = {}
    if opts.video_size:
        o["video_size"] = opts.video_size
    if opts.framerate:
        o["framerate"] = opts.framerate
    if opts.pixel_format:
        o["input_format" if fmt in ("video4linux2", "v4l2") else "pixel_format"] = opts.pixel_format
    if fmt is None and is_url(opts.input):
        o.setdefault("fflags", "nobuffer")  # live network input: do not buffer ahead
    return o


def open_source(opts: StreamOptions) -> tuple[av.container.InputContainer, str | None]:
    fmt = opts.input_format or guess_input_format(opts.input)
    if fmt in ("video4linux2", "v4l2"):
        if not os.path.exists(opts.input):
            raise StreamError(f"camera not found: {opts.input} (is it plugged in? `ls /dev/video*` lists cameras)")
        if not os.access(opts.input, os.R_OK):
            raise StreamError(f"no permission to read the camera {opts.input} (add yourself to the 'video' group)")
    elif fmt is None and not is_url(opts.input) and not os.path.exists(opts.input):
        raise StreamError(f"input not found: {opts.input}")
    if fmt is not None and fmt not in av.formats_available and fmt not in ("v4l2",):
        known = {n for f in av.formats_available for n in f.split(",")}
        if fmt not in known:
            raise StreamError(f"this FFmpeg has no input format {fmt!r}")
    try:
        container = av.open(
            opts.input,
            format=fmt,
            options=input_options(opts, fmt),
            timeout=(opts.open_timeout, opts.read_timeout),
            metadata_errors="ignore",
        )
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise StreamError(f"cannot open the input {opts.input}: {short_error(e)}") from None
    return container, fmt


# -- the newest-wins buffer ----------------------------------------------------------------------
class LatestFrames:
    """Captured frames waiting for the processor. ``put`` never blocks: when the buffer is full the
    oldest frame is dropped; ``take`` returns up to ``n`` newest frames and drops the older ones,
    and any frame older than ``max_latency``."""

    def __init__(self, capacity: int, max_latency: float) -> None:
        self._frames: collections.deque = collections.deque()
        self._capacity = max(1, capacity)
        self._max_latency = max_latency
        self._cond = threading.Condition()
        self.dropped = 0
        self.closed = False

    def put(self, stamp: float, rgb: np.ndarray) -> None:
        with self._cond:
            self._frames.append((stamp, rgb))
            while len(self._frames) > self._capacity:
                self._frames.popleft()
                self.dropped += 1
            self._cond.notify()

    def discard(self) -> int:
        """Empty the buffer; returns how many frames were in it."""
        with self._cond:
            n = len(self._frames)
            self._frames.clear()
            return n

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def take(self, n: int, timeout: float = 0.1) -> list[tuple[float, np.ndarray]] | None:
        """Up to n frames, oldest first; [] on timeout, None once closed and empty."""
        with self._cond:
            if not self._frames and not self.closed:
                self._cond.wait(timeout)
            if not self._frames:
                return None if self.closed else []
            now = time.monotonic()
            while len(self._frames) > n or (len(self._frames) > 1 and now - self._frames[0][0] > self._max_latency):
                self._frames.popleft()
                self.dropped += 1
            out = list(self._frames)
            self._frames.clear()
            return out
