"""``hdrvideo convert``: one streaming pass from an SDR file to an HDR file.

Three stages, each in its own thread, joined by bounded queues so memory does not grow with the
length of the video:

    reader (PyAV demux + decode → RGB, or Y'CbCr planes for a GPU)  →  processor (batches → 10-bit planes)  →  writer (encode + mux)

The reader also passes the packets of the streams we copy (audio, subtitles) down the same queues,
in demux order, so the writer muxes everything from one thread. The output is written to a
temporary file beside the target and renamed only when complete; an interruption removes it.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from ..media.decode import PIPE, VideoInfo, frame_to_input, probe
from ..media.encode import CONTAINERS, EncoderSettings, HDRWriter
from ..media.encode_ffmpeg import FFmpegWriter
from ..media.hw_decode import open_decoding
from ..media.info import MADE_BY_FORMATS, MADE_BY_TAG
from ..pipeline.processor import FrameProcessor, cpu_batch_limit
from ..pipeline.provenance import describe
from .jobs import ConvertError, check_job_info, input_notes, lost_frames, one_line_error, temporary_path

__all__ = ["ConvertError", "ConvertResult", "convert_video", "temporary_path"]

_END = object()


@dataclass
class ConvertResult:
    """What a conversion did."""

    output: Path
    frames: int
    expected_frames: int
    lost_frames: int
    seconds: float
    size_bytes: int
    max_cll: int
    max_fall: int
    copied_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Stop(Exception):
    pass


class _Pipe:
    """A bounded queue whose put/get give up when the conversion is stopped."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=size)
        self.stop = stop

    def put(self, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self):
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                continue


def convert_video(
    inp: str | Path,
    out: str | Path,
    processor: FrameProcessor,
    settings: EncoderSettings,
    *,
    batch_size: int = 4,
    overwrite: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_info: Callable[[VideoInfo], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    pipe_format: str = "matroska",
    opened: av.container.InputContainer | None = None,
    decoder: str = "software",
) -> ConvertResult:
    """Convert one SDR video file to HDR. ``progress(done, total)`` is called after each batch.

    ``inp`` or ``out`` may be ``-``: standard input (any stream FFmpeg can probe: NUT, Matroska,
    MPEG-TS …) or standard output, written as ``pipe_format`` (:data:`PIPE_FORMATS`; MaxCLL and
    MaxFALL are then signalled as unknown, 0: a pipe cannot be patched afterwards). ``opened``:
    the input's container, already opened (standard input cannot be opened twice). ``decoder``: nvdec | software."""
    inp, out = Path(inp), Path(out)
    container = opened if opened is not None else open_decoding(inp, decoder, str(processor.device))
    try:
        info = probe(container, inp)
        check_job_info(inp, out, info, overwrite, force)
        if on_info is not None:
            on_info(info)
        tmp = temporary_path(out) if str(out) != PIPE else None
        try:
            return _run(container, info, out, tmp, processor, settings, batch_size, progress, on_phase, pipe_format)
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
    finally:
        container.close()


def _run(
    container: av.container.InputContainer,
    info: VideoInfo,
    out: Path,
    tmp: Path | None,
    processor: FrameProcessor,
    settings: EncoderSettings,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
    on_phase: Callable[[str], None] | None = None,
    pipe_format: str = "matroska",
) -> ConvertResult:
    t0 = time.perf_counter()
    vstream = container.streams.video[0]
    vstream.thread_type = "AUTO"
    width, height = info.padded_size
    writer = _open_writer(container, info, out, tmp, settings, pipe_format, describe(processor))
    streams = _carry_streams(container, vstream, writer, out)
    copy_streams, transcoded, notes = streams.carried, streams.transcoded, streams.notes
    _copy_chapters(container, writer)

    if processor.device.type == "cpu" and batch_size > cpu_batch_limit(height, width):
        # the queues hold batches too: size them by the processor's rule (4K: one frame)
        batch_size = cpu_batch_limit(height, width)
        notes.append(f"{width}×{height} frames on a CPU: batches of {batch_size} frame{'s' if batch_size > 1 else ''} "
                     f"to keep memory within budget (the look-ahead sees only those)")  # fmt: skip
    stop = threading.Event()
    to_proc = _Pipe(max(2, 2 * batch_size), stop)
    to_write = _Pipe(4, stop)
    errors: list[BaseException] = []
    state = {"decoded": 0, "lost": 0, "written": 0, "interlaced": 0}

    # a file whose timeline starts late (MPEG-TS: often 1.4 s or more) starts at zero in the
    # output, every stream shifted alike, so durations and sync stay those of the input
    start = max(0.0, (container.start_time or 0) / 1e6)

    def offset(stream) -> int:
        return round(start / stream.time_base) if start and stream.time_base else 0

    offsets = {s.index: offset(s) for s in (vstream, *copy_streams)}

    def reader() -> None:
        try:
            step = _frame_step(info)
            last_pts = None
            v_off = offsets[vstream.index]
            for packet in container.demux([vstream, *copy_streams]):
                if packet.stream is not vstream:
                    off = offsets[packet.stream.index]
                    if packet.stream.index in transcoded:
                        for af in packet.decode():
                            if af.pts is not None:
                                af.pts -= off
                            to_proc.put(("audio", packet.stream.index, af))
                    elif packet.dts is not None:
                        packet.dts -= off
                        if packet.pts is not None:
                            packet.pts -= off
                        to_proc.put(("packet", packet))
                    continue
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    state["lost"] += 1
                    continue
                for frame in frames:
                    pts = frame.pts - v_off if frame.pts is not None else (0 if last_pts is None else last_pts + step)
                    last_pts = pts
                    if state["decoded"] == 0:
                        writer.rotation = int(round(frame.rotation or 0)) % 360
                        state["interlaced"] = int(bool(frame.interlaced_frame))
                    state["decoded"] += 1
                    to_proc.put(("frame", frame_to_input(frame, info, processor.host.takes_planes), pts))
            to_proc.put(_END)
        except _Stop:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)
            stop.set()

    def write() -> None:
        try:
            while True:
                item = to_write.get()
                if item is _END:
                    break
                if item[0] == "packet":
                    writer.mux(item[1])
                    continue
                if item[0] == "audio":
                    writer.encode_audio(item[1], item[2])
                    continue
                _, batch, pts_list = item
                for i, pts in enumerate(pts_list):
                    writer.write_planes(batch.y[i], batch.uv[i], pts, batch.max_cll[i], batch.max_fall[i])
                    state["written"] += 1
            writer.close()
        except _Stop:
            pass
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=write, daemon=True)]
    for t in threads:
        t.start()
    try:
        _process_loop(to_proc, to_write, processor, batch_size, progress, info, state)
        # every frame is processed; the encoder may still hold many (x265's look-ahead and frame
        # threads): a phase of its own, with the frames it has finished, not a bar stuck at 100%
        if on_phase is not None and threads[1].is_alive():
            on_phase("encode")
        while threads[1].is_alive():
            threads[1].join(0.25)
            if progress is not None and on_phase is not None:
                progress(writer.encoded, state["decoded"])
        threads[0].join()
    except BaseException as e:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        writer.abort()
        if errors:
            raise one_line_error(errors[0]) from None
        if isinstance(e, Exception):  # the processor's own failure (e.g. out of memory): one line
            raise one_line_error(e) from None
        raise
    if errors:
        writer.abort()
        raise one_line_error(errors[0]) from None
    if state["written"] == 0:
        writer.abort()
        raise ConvertError(f"no frame could be decoded from {info.path}")
    if tmp is not None:
        os.replace(tmp, out)
    pq_known = settings.transfer == "pq" and settings.light_level_known
    cll, fall = writer.content_light_level() if pq_known else (0, 0)
    expected, lost = lost_frames(info, state)
    notes += input_notes(info, settings, out, bool(state["interlaced"])) + processor.notes
    return ConvertResult(
        output=out,
        frames=state["written"],
        expected_frames=expected,
        lost_frames=lost,
        seconds=time.perf_counter() - t0,
        size_bytes=out.stat().st_size if tmp is not None else writer.bytes_written,
        max_cll=cll,
        max_fall=fall,
        copied_streams=streams.copied,
        dropped_streams=streams.dropped,
        notes=notes,
    )


def _open_writer(container, info: VideoInfo, out: Path, tmp: Path | None, settings: EncoderSettings,
                 pipe_format: str = "matroska", made: str | None = None):  # fmt: skip
    """The writer of the output (PyAV's, or a system ffmpeg's), with the input's title, comment,
    language and timecode, at the padded frame size and the input's pixel aspect, and ``made``
    (what made it) where the container keeps it. ``tmp`` None:
    standard output, as ``pipe_format``, light levels unknown (nothing can be patched)."""
    width, height = info.padded_size
    if tmp is None:
        if settings.encoder == "ffmpeg":
            raise ConvertError("--encoder ffmpeg writes files only; write to standard output with PyAV's encoders")
        settings.light_level_known = False
        tmp, fmt = Path("pipe:1"), pipe_format
    else:
        fmt = CONTAINERS[out.suffix.lower()]
    meta = {k: v for k, v in container.metadata.items() if k in ("title", "comment", "language")}
    if made and fmt in MADE_BY_FORMATS:
        meta[MADE_BY_TAG] = made
    if settings.encoder == "ffmpeg":
        settings.validate(fmt)
        return FFmpegWriter(tmp, width, height, info.time_base, info.rate, settings, fmt, meta, source=info.path,
                            sample_aspect=info.sample_aspect, timecode=info.timecode)  # fmt: skip
    return HDRWriter(tmp, width, height, info.time_base, info.rate, settings, container_format=fmt, metadata=meta,
                     sample_aspect=info.sample_aspect, timecode=info.timecode)  # fmt: skip


@dataclass
class _Streams:
    """What becomes of the input's audio and subtitle streams."""

    carried: list = field(default_factory=list)  # copied or re-encoded: read with the video
    transcoded: list[int] = field(default_factory=list)  # audio stream indices decoded here
    copied: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _carry_streams(container, vstream, writer, out: Path) -> _Streams:
    """Every audio and subtitle stream: copied bit-exact where the container holds it, else
    re-encoded (audio decoded here; subtitle packets re-encoded by the writer), else dropped."""
    r = _Streams()
    for s in container.streams:
        if s.type in ("audio", "subtitle") and s is not vstream:
            label = f"{s.type}#{s.index} {s.codec_context.name if s.codec_context else ''}".strip()
            if writer.add_copy(s):
                r.copied.append(label)
                r.carried.append(s)
                continue
            codec = writer.add_transcode(s)
            if codec is not None:
                r.notes.append(f"{out.suffix} cannot hold {label}: re-encoded as {codec}")
                r.carried.append(s)
                if s.type == "audio":
                    r.transcoded.append(s.index)
            else:
                r.dropped.append(label)
    return r


def _process_loop(to_proc, to_write, processor, batch_size, progress, info, state) -> None:
    pending: list = []  # frames and packets in demux order, up to batch_size frames
    frames: list = []  # R'G'B' arrays, or (y, cbcr) planes
    # batches submitted and not yet handed to the writer: (the batch on its way, its timestamps,
    # the packets demuxed alongside it); on a GPU one stays in flight while the next is stacked
    submitted: list = []

    def hand_over(keep: int) -> None:
        while len(submitted) > keep:
            batch, pts, others = submitted.pop(0)
            if batch is not None:  # the batch's frames go first, then the packets demuxed
                to_write.put(("frames", batch.result(), pts))  # alongside them (the muxer interleaves)
            for it in others:  # copied packets and decoded audio to re-encode
                to_write.put(it)

    def flush() -> None:
        batch = processor.submit(processor.host.stack(frames, info.matrix, info.full_range)) if frames else None
        submitted.append((batch, [it[2] for it in pending if it[0] == "frame"], [it for it in pending if it[0] != "frame"]))
        hand_over(processor.host.in_flight)
        pending.clear()
        frames.clear()
        if progress is not None:
            progress(state["decoded"], info.frames)

    while True:
        item = to_proc.get()
        if item is _END:
            flush()
            hand_over(0)
            to_write.put(_END)
            return
        pending.append(item)
        if item[0] == "frame":
            frames.append(item[1])
            if len(frames) >= batch_size:
                flush()


def _frame_step(info: VideoInfo) -> int:
    if info.rate:
        return max(1, round(1 / (info.rate * info.time_base)))
    return 1


def _copy_chapters(container, writer: HDRWriter) -> None:
    try:
        chapters = container.chapters()
        if chapters:
            writer.container.set_chapters(chapters)
    except Exception:  # noqa: BLE001 - chapters are a nicety; never fail a conversion over them
        pass
