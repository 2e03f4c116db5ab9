"""Several software encoders at once on consecutive chunks of one video (``--encode-jobs N``).

One x265 does not use 16 cores at 4K: its parallelism (wavefront rows, a few frames in flight)
runs out long before the cores do, so a GPU that expands 80 frames a second waits on an encoder
that writes 25. Av1an's answer, taken here inside the one streaming pass: cut the video into
chunks (at scene cuts where there are any), give each chunk an encoder of its own with
``cores / N`` threads, and let N of them work at once. Each chunk starts with an IDR frame and
carries its parameter sets and HDR SEI in band (``repeat-headers``), so the chunks' packets,
muxed one chunk after the other, are one valid stream; their timestamps need no change (every
encoder keeps the same reorder delay, so decode times run on without a gap or overlap).

The cost is memory and a little size: a chunk's frames wait in memory until its encoder takes
them, so at most ``N × max_frames`` frames are held (``max_frames`` is sized to a memory budget),
and every chunk boundary that is not a scene cut is one extra IDR frame. Packets come out in
order: the oldest chunk's as soon as its encoder writes them, later chunks' once it is done.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator

import av
import numpy as np

__all__ = ["ChunkedEncoder", "SceneCuts", "chunk_limits", "cores"]

CUT_LEVEL = 0.08
"""Mean absolute change of a frame's luma thumbnail (10-bit codes / 1023) that counts as a scene cut."""
MEMORY_SHARE = 0.25
"""The share of the machine's memory that frames waiting for their chunk's encoder may take."""


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def chunk_limits(frame_bytes: int, jobs: int, rate: float, memory: int | None = None) -> tuple[int, int]:
    """(fewest, most) frames in a chunk: at least one second (a boundary costs an IDR frame), at
    most three (the frames wait in memory), and no more than ``jobs`` chunks of frames of ``frame_bytes`` fit in
    :data:`MEMORY_SHARE` of ``memory`` (bytes; default: this machine's)."""
    if memory is None:
        try:
            memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            memory = 8 << 30
    fewest = max(8, round(rate))
    most = min(max(fewest, round(3 * rate)), int(MEMORY_SHARE * memory) // max(1, jobs * frame_bytes))
    return max(1, min(fewest, most)), max(1, most)


class SceneCuts:
    """Scene cuts from 10-bit luma planes: a frame whose 1/16-scale thumbnail differs from the
    previous one by more than :data:`CUT_LEVEL` on average."""

    def __init__(self, level: float = CUT_LEVEL) -> None:
        self.level = level
        self._last: np.ndarray | None = None

    def feed(self, y: np.ndarray) -> bool:
        """y: (H, W) uint16 10-bit luma codes → whether this frame starts a new scene."""
        thumb = y[::16, ::16].astype(np.float32) / 1023
        last, self._last = self._last, thumb
        return last is not None and float(np.abs(thumb - last).mean()) > self.level


class _Chunk:
    """One chunk: its encoder in a thread of its own, its frames' queue, the packets it wrote."""

    def __init__(self, context: av.CodecContext) -> None:
        self.frames: queue.Queue = queue.Queue()
        self.packets: list[av.Packet] = []
        self.taken = 0  # packets handed out
        self.count = 0  # frames given
        self.closed = False  # its last frame given
        self.stopped = False  # abandoned: frames still queued are dropped
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(context,), daemon=True, name="hdrvideo-chunk")
        self.thread.start()

    def _run(self, context: av.CodecContext) -> None:
        try:
            while True:
                frame = self.frames.get()
                if frame is _STOP or self.stopped:
                    return
                self.packets.extend(context.encode(frame))  # the GIL is released while it encodes
                if frame is None:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the writer's thread
            self.error = e
        finally:
            self.done.set()


_STOP = object()


class ChunkedEncoder:
    """``jobs`` encoders on consecutive chunks, packets in stream order.

    ``open_context()`` returns a new, configured, unopened encoder (each chunk gets one; they must
    be alike: same codec, options and time base). ``encode(frame, cut)`` takes a frame and whether
    it starts a scene (:class:`SceneCuts`) and returns the packets now ready; ``flush()`` yields
    the rest. Frames wait in memory for their chunk's encoder: at most ``jobs × most`` of them."""

    def __init__(self, open_context: Callable[[], av.CodecContext], jobs: int, fewest: int, most: int) -> None:
        if jobs < 2:
            raise ValueError(f"a chunked encode needs 2 or more jobs, got {jobs}")
        self.open_context = open_context
        self.jobs, self.fewest, self.most = jobs, fewest, max(fewest, most)
        self.chunks: list[_Chunk] = []  # not yet fully handed out, oldest first
        self.started = 0  # chunks begun

    def encode(self, frame: av.VideoFrame, cut: bool = False) -> list[av.Packet]:
        current = self.chunks[-1] if self.chunks and not self.chunks[-1].closed else None
        if current is None or (current.count >= self.fewest and cut) or current.count >= self.most:
            if current is not None:
                self._close(current)
            out = self._wait_for_room()
            current = _Chunk(self.open_context())
            self.chunks.append(current)
            self.started += 1
        else:
            out = []
        current.frames.put(frame)
        current.count += 1
        return out + self._ready()

    def flush(self) -> Iterator[av.Packet]:
        """Finish every chunk; yields the remaining packets in order as their encoders write them."""
        if self.chunks and not self.chunks[-1].closed:
            self._close(self.chunks[-1])
        while self.chunks:
            head = self.chunks[0]
            head.done.wait(0.05)
            yield from self._ready()

    def abort(self) -> None:
        """Stop every encoder (the output is about to be deleted); waits briefly for them."""
        for chunk in self.chunks:
            chunk.stopped = True
            chunk.frames.put(_STOP)
        for chunk in self.chunks:
            chunk.thread.join(timeout=5)
        self.chunks.clear()

    def _close(self, chunk: _Chunk) -> None:
        chunk.frames.put(None)  # flush: the encoder writes its last packets and ends
        chunk.closed = True

    def _wait_for_room(self) -> list[av.Packet]:
        """Wait until fewer than ``jobs`` chunks are encoding; → packets that became ready."""
        out: list[av.Packet] = []
        while sum(not c.done.is_set() for c in self.chunks) >= self.jobs:
            self.chunks[0].done.wait(0.05)
            out += self._ready()
        return out

    def _ready(self) -> list[av.Packet]:
        """Packets that may go out now: the oldest chunk's so far, and whole chunks after it
        once it is done. Raises an encoder's error in this thread."""
        out: list[av.Packet] = []
        while self.chunks:
            head = self.chunks[0]
            finished = head.done.is_set()  # read before the packets: none can be added after it
            if head.error is not None:
                self.abort()
                raise head.error
            n = len(head.packets)
            out += head.packets[head.taken : n]
            head.taken = n
            if not (finished and head.taken == len(head.packets)):
                break
            self.chunks.pop(0)
        return out
