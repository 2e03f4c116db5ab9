"""``hdrvideo stream``: live SDR → HDR from a webcam or any live FFmpeg input, in real time.

Three threads, joined so that capture never waits on anything (capture and its buffer:
:mod:`.capture`):

    capture (PyAV demux + decode → RGB, stamped with the capture clock)
        → newest-wins buffer (frames older than --max-latency, or pushed out by newer ones,
          are dropped and counted)
    process (the caller's thread: FrameProcessor, causal temporal filtering, optional preview)
        → bounded queue
    write (low-latency encode + mux; latency measured from capture to the encoded frame)

Output timestamps come from the capture clock, so the output plays at the true speed however
many frames were dropped. Network outputs (``udp://``, ``srt://``, ``rtmp://``, ``tcp://`` …) are
MPEG-TS (FLV for RTMP); files are Matroska with clusters of at most a second, flushed as they
close, so a file cut short by a kill or power loss still plays up to its last cluster.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from ..media.decode import InputError, VideoInfo, frame_to_input, probe, short_error
from ..media.encode import CONTAINERS, EncodeError, EncoderSettings, HDRWriter
from ..media.info import MADE_BY_FORMATS, MADE_BY_TAG
from ..pipeline.compiled import Compiled
from ..pipeline.processor import FrameProcessor
from ..pipeline.provenance import describe
from ..pipeline.ycbcr_input import stack_frames
from .capture import (  # noqa: F401 - re-exported: the stream's options and errors are its API
    LatestFrames,
    StreamError,
    StreamOptions,
    input_options,
    is_regular_file,
    is_url,
    open_source,
)

__all__ = [
    "StreamError",
    "StreamOptions",
    "StreamReport",
    "input_options",
    "output_format",
    "run_stream",
]

# the clock the output is stamped with: 1/90000 s (MPEG-TS's own; Matroska rescales to ms)
TIME_BASE = Fraction(1, 90000)


@dataclass
class StreamReport:
    """What a stream did. Latency is from capture to the encoded frame, in seconds."""

    output: str
    width: int
    height: int
    captured: int
    processed: int
    dropped: int
    seconds: float
    stop_reason: str
    failed: bool = False
    latencies: list[float] = field(default_factory=list, repr=False)
    max_cll: int = 0
    max_fall: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames processed per second of wall-clock time."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def latency_mean(self) -> float:
        return float(np.mean(self.latencies)) if self.latencies else math.nan

    @property
    def latency_p95(self) -> float:
        return float(np.percentile(self.latencies, 95)) if self.latencies else math.nan

    def summary(self) -> str:
        lat = (
            f"latency mean {self.latency_mean * 1000:.0f} ms, p95 {self.latency_p95 * 1000:.0f} ms"
            if self.latencies
            else "no latency measured"
        )
        return (
            f"{self.stop_reason}: {self.seconds:.1f} s, {self.width}×{self.height}; frames captured {self.captured}, "
            f"processed {self.processed} ({self.fps:.1f} fps), dropped {self.dropped}; {lat}"
        )


# -- where from, where to ----------------------------------------------------------------------
def output_format(output: str) -> tuple[str, str]:
    """Output target → (FFmpeg URL or path, muxer): MPEG-TS for network outputs (FLV for RTMP),
    Matroska for files (MPEG-TS for a .ts file)."""
    if is_url(output):
        scheme = output.split("://", 1)[0].lower()
        if scheme in ("rtmp", "rtmps"):
            return output, "flv"
        if scheme == "udp" and "pkt_size" not in output:  # 7 TS packets per datagram
            output += ("&" if "?" in output else "?") + "pkt_size=1316"
        return output, "mpegts"
    suffix = Path(output).suffix.lower()
    if suffix in (".mkv", ".ts", ".m2ts"):
        return output, CONTAINERS[suffix]
    raise StreamError(f"stream writes .mkv or .ts files (or a network URL), not {suffix or '(no extension)'!r}")


def _muxer_options(fmt: str) -> dict[str, str]:
    o = {"flush_packets": "1"}  # every packet reaches the file or the network at once
    if fmt == "matroska":
        # the segment starts with an unknown size and each cluster (at most 1 s) reaches the disk
        # as it closes, so what is on disk plays at every moment; a clean end adds duration and cues
        o.update(cluster_time_limit="1000", write_crc32="0")
    return o


# -- the stream ----------------------------------------------------------------------------------
def run_stream(
    opts: StreamOptions,
    processor: FrameProcessor,
    settings: EncoderSettings,
    *,
    stop: threading.Event | None = None,
    on_frame: Callable[[np.ndarray, object], None] | None = None,
    on_status: Callable[[StreamReport], None] | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
    compile_ahead: Callable[[int, int, bool], str | None] | None = None,
) -> StreamReport:
    """Capture, process and write until the source ends, ``opts.duration`` passes, ``stop`` is set
    (SIGINT/SIGTERM), or the source or the output is lost. Returns the report; raises
    :class:`StreamError` only when the stream cannot start.

    on_frame(rgb, batch) is called in this thread after each processed batch (the preview);
    on_status(report) about twice a second with the counts so far. compile_ahead(width, height,
    keep_signal) → None where the compiled kernels of this frame size are cached, else a note:
    the stream then runs the eager code (:mod:`~hdrvideo.pipeline.prewarm`).
    """
    stop = stop or threading.Event()
    target, fmt = output_format(opts.output)
    if not is_url(opts.output):
        out_path = Path(target)
        if out_path.exists() and not opts.overwrite:
            raise StreamError(f"output exists: {out_path} (use -y to overwrite)")
        folder = out_path.parent if str(out_path.parent) else Path(".")
        if not folder.is_dir():
            raise StreamError(f"output folder does not exist: {folder}")
    container, _ = open_source(opts)
    busy: list[threading.Thread] = []  # a capture thread still inside FFmpeg (a silent source)
    try:
        info = _probe(container, opts)
        # warm the processor up for this frame size before capture starts (the first call of a
        # network is slow, and a graph compiled mid-stream would stall it: FrameProcessor.warm_up).
        # A live source keeps producing meanwhile and would hand over a burst of stale frames, so
        # it is opened again afterwards where it can be (not a pipe).
        width, height = info.padded_size
        # compiling takes 35 s at 720p on 2 cores (7 s from the cache): a viewer cannot wait
        ahead = compile_ahead(width, height, on_frame is not None) if compile_ahead else None
        Compiled.hold = ahead is not None
        try:
            processor.warm_up(height, width, keep_signal=on_frame is not None)
            rate = float(info.rate or (Fraction(opts.framerate) if opts.framerate else 30))
            net_note = choose_net_every(processor, width, height, rate)
        except Exception as e:  # noqa: BLE001 - e.g. out of memory for this frame size: one line
            raise StreamError(f"cannot process {width}×{height} frames: {type(e).__name__}: {e}") from None
        processor.reset()
        if not is_regular_file(opts.input) and not opts.input.startswith(("pipe:", "-")):
            container.close()
            container, _ = open_source(opts)
            info = _probe(container, opts)
        if on_start is not None:
            on_start(info)
        report = _run(opts, container, info, target, fmt, processor, settings, stop, on_frame, on_status, busy)
        if net_note:
            report.notes.insert(0, net_note)
        if ahead:
            report.notes.append(ahead)
        return report
    finally:
        Compiled.hold = False
        if not any(t.is_alive() for t in busy):  # never free the demuxer under a reading thread
            container.close()


FRAME_SHARE = 0.7
"""Share of a frame interval the processor may take (decoding and encoding run beside it)."""

MAX_NET_EVERY = 8


def choose_net_every(processor: FrameProcessor, width: int, height: int, fps: float) -> str | None:
    """Run the network on every k-th frame where it cannot run on each in real time: k from the
    measured time of the whole processor and of the network alone on this frame size, so that
    their mean per frame fits :data:`FRAME_SHARE` of the frame interval. Sets
    ``processor.net_every``; → a note for the report, or None when every frame gets the network."""
    if processor.model is None or fps <= 0:
        return None
    frame = np.zeros((1, height, width, 3), np.uint8)
    frame[:, height // 4 : height // 2, width // 4 : width // 2] = 255  # a highlight: the gain path runs
    h, w = processor._net_input_size(height, width) or (height, width)
    x = torch.rand(1, 3, h, w, device=processor.device)

    def median_s(fn) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            if processor.device.type == "cuda":
                torch.cuda.synchronize(processor.device)
            times.append(time.perf_counter() - t)
        return sorted(times)[1]

    processor.net_every = 1
    t_all = median_s(lambda: processor.process(frame))
    t_net = min(t_all, median_s(lambda: processor.expand(x)))
    budget = FRAME_SHARE / fps
    if t_all <= budget:
        return None
    spare = budget - (t_all - t_net)
    k = MAX_NET_EVERY if spare <= 0 else min(MAX_NET_EVERY, max(2, math.ceil(t_net / spare)))
    processor.net_every = k
    nth = {2: "2nd", 3: "3rd"}.get(k, f"{k}th")
    return (f"the network runs on every {nth} frame and its output is carried between (measured: network "
            f"{1000 * t_net:.0f} ms, the rest {1000 * (t_all - t_net):.0f} ms per frame, for {fps:g} fps)")  # fmt: skip


def _probe(container, opts: StreamOptions) -> VideoInfo:
    try:
        return probe(container, Path(opts.input))
    except InputError as e:
        container.close()
        raise StreamError(str(e)) from None


def _run(opts, container, info, target, fmt, processor, settings, stop, on_frame, on_status, busy) -> StreamReport:
    width, height = info.padded_size

    settings.low_latency = True
    settings.light_level_known = not is_url(opts.output)
    try:
        writer = HDRWriter(
            target,
            width,
            height,
            TIME_BASE,
            info.rate or (Fraction(opts.framerate) if opts.framerate else Fraction(30)),
            settings,
            container_format=fmt,
            container_options=_muxer_options(fmt),
            metadata={MADE_BY_TAG: describe(processor)} if fmt in MADE_BY_FORMATS else None,
        )
    except EncodeError as e:
        raise StreamError(str(e)) from None

    buffer = LatestFrames(opts.batch_size, opts.max_latency)
    to_write: queue.Queue = queue.Queue(maxsize=1)  # latency first: at most one batch waits for the encoder
    report = StreamReport(opts.output, width, height, 0, 0, 0, 0.0, "stopped")
    state = {"t0": None, "reason": None, "failed": False, "last_pts": -1}
    lock = threading.Lock()

    def end(reason: str, failed: bool = False) -> None:
        with lock:
            if state["reason"] is None:
                state["reason"], state["failed"] = reason, failed
                state["t_end"] = time.monotonic()
        stop.set()

    pace = opts.realtime if opts.realtime is not None else is_regular_file(opts.input)
    planes = processor.host.takes_planes and on_frame is None  # (the preview shows the RGB frame)

    def capture() -> None:
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO" if info.codec not in ("rawvideo",) else "SLICE"
        try:
            first_pts = None
            for frame in container.decode(vstream):
                if pace and frame.pts is not None and frame.time_base is not None and state["t0"] is not None:
                    # a file plays as a live source would: each frame is released at its own time
                    due = state["t0"] + float((frame.pts - first_pts) * frame.time_base)
                    while (wait_s := due - time.monotonic()) > 0 and not stop.is_set():
                        time.sleep(min(wait_s, 0.1))
                now = time.monotonic()
                if state["t0"] is None:
                    state["t0"], first_pts = now, frame.pts or 0
                if opts.duration is not None and now - state["t0"] >= opts.duration:
                    end("duration reached")
                    break
                if stop.is_set():
                    end("interrupted")  # by a signal or the preview window (no-op if already ending)
                    break
                buffer.put(now, frame_to_input(frame, info, planes))
                report.captured += 1
            else:
                end("source ended")
        except av.error.ExitError:
            end("source ended")
        except (av.error.FFmpegError, OSError) as e:
            end(f"source lost ({short_error(e)})", failed=True)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            end(f"capture failed ({type(e).__name__}: {e})", failed=True)
        finally:
            buffer.close()

    def write() -> None:
        try:
            while True:
                item = to_write.get()
                if item is None:
                    break
                batch, stamps = item
                for i, stamp in enumerate(stamps):
                    pts = max(round((stamp - state["t0"]) / TIME_BASE), state["last_pts"] + 1)
                    state["last_pts"] = pts
                    writer.write_planes(batch.y[i], batch.uv[i], pts, batch.max_cll[i], batch.max_fall[i])
                    report.latencies.append(time.monotonic() - stamp)
                    report.processed += 1
        except (av.error.FFmpegError, OSError) as e:
            end(f"output lost ({short_error(e)})", failed=True)
            while to_write.get() is not None:  # let the processor finish
                pass

    t_start = time.monotonic()
    threads = [threading.Thread(target=capture, daemon=True, name="capture"),
               threading.Thread(target=write, daemon=True, name="write")]  # fmt: skip
    for t in threads:
        t.start()
    busy.append(threads[0])
    last_status = 0.0
    try:
        while True:
            frames = buffer.take(opts.batch_size)
            if frames is None:
                break
            if stop.is_set() and state["reason"] is None:
                end("interrupted")
            if frames:
                stamps = [f[0] for f in frames]
                sdr = stack_frames([f[1] for f in frames], info.matrix, info.full_range)
                batch = processor.process(sdr, keep_signal=on_frame is not None)
                if on_frame is not None:
                    on_frame(frames[-1][1], batch)
                batch.signal = None
                to_write.put((batch, stamps))
            if stop.is_set() and (state["reason"] == "interrupted" or state["failed"]):
                # do not wait for the capture thread: a silent source would hold it until its
                # read timeout. What is left in the buffer is counted as dropped.
                break
            if on_status is not None and time.monotonic() - last_status > 0.5:
                last_status = time.monotonic()
                report.dropped = buffer.dropped
                report.seconds = time.monotonic() - t_start
                on_status(report)
    except KeyboardInterrupt:
        end("interrupted")
    except Exception as e:  # noqa: BLE001 - the output is still finalised; the report says why it stopped
        end(f"processing failed ({type(e).__name__}: {short_error(e)})", failed=True)
    finally:
        stop.set()
        to_write.put(None)
        threads[1].join()
        threads[0].join(timeout=opts.read_timeout + 1)
    try:
        writer.close()
    except (av.error.FFmpegError, OSError) as e:
        writer.abort()
        if not state["failed"]:
            state["reason"], state["failed"] = f"output lost ({short_error(e)})", True
    report.dropped = buffer.dropped + buffer.discard()
    # the span of the capture clock: first frame to the moment the stream was told to end
    report.seconds = state.get("t_end", time.monotonic()) - (state["t0"] if state["t0"] is not None else t_start)
    report.stop_reason = state["reason"] or "stopped"
    report.failed = state["failed"]
    if settings.transfer == "pq":
        report.max_cll, report.max_fall = writer.content_light_level()
    report.notes.extend(processor.notes)
    if report.captured == 0:
        report.notes.append("no frame was captured")
    return report
