"""``hdrvideo bench``: end-to-end conversion speed and time per stage, in one process.

Modes, run one after another on the same clip (generated, or ``--input``):

- ``null``: decode → colour (BT.2408 SDR-in-HDR, no network) → encode: the I/O ceiling;
- ``fast``: the network on a frame with long side 480, its gain carried up (the CPU default);
- ``full``: the network at full resolution.

For each: end-to-end fps through :func:`~hdrvideo.commands.convert.convert_video` (threads and queues as
``convert`` runs them), and, measured separately on the same frames, the milliseconds per frame of
each stage: ``decode`` (PyAV decode + conversion to RGB), ``colour`` (the processor with no
network), ``network`` (the processor's extra time with the network), ``encode`` (10-bit planes to
the encoder). On a CPU, upload and download are part of ``colour``.
"""

from __future__ import annotations

import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from ..media.decode import VideoInfo, frame_to_input, probe, short_error
from ..media.encode import EncoderSettings, HDRWriter
from ..media.hw_decode import open_decoding
from ..pipeline.processor import FrameProcessor
from ..pipeline.settings import ConversionSettings, pick_device
from .convert import convert_video

__all__ = ["make_bench_clip", "pace", "run_bench", "format_bench", "bench_network", "format_network", "network_flops"]

MODES = ("null", "fast", "full")


def make_bench_clip(path: Path, width: int, height: int, frames: int, fps: int = 25) -> Path:
    """An 8-bit BT.709 H.264 clip: moving gradients with a clipped highlight, as x264 ultrafast."""
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.options = {"preset": "ultrafast", "crf": "20"}
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(frames):
        img = np.stack(
            [0.3 + 0.4 * xx / width, 0.25 + 0.4 * yy / height, 0.4 + 0.2 * np.sin(xx / width * 6 + i / 5)], -1
        )
        cx = (0.2 + 0.6 * (i % fps) / fps) * width
        img[(xx - cx) ** 2 + (yy - 0.4 * height) ** 2 < (0.1 * height) ** 2] = 1.0
        frame = av.VideoFrame.from_ndarray((img.clip(0, 1) * 255).astype(np.uint8), format="rgb24")
        for p in vs.encode(frame.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range=1)):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    return path


def _decode_all(path: Path, planes: bool, decoder: str, device: str) -> tuple[list, VideoInfo, float]:
    """Every frame as ``convert`` hands it over (R'G'B', or Y'CbCr planes where ``planes``: on a
    GPU; decoded by ``decoder``, nvdec | software), the input's info, and the decode time per frame (s)."""
    container = open_decoding(path, decoder, device)
    info = probe(container, path)
    t = time.perf_counter()
    frames = [frame_to_input(f, info, planes) for f in container.decode(container.streams.video[0])]
    container.close()
    return frames, info, (time.perf_counter() - t) / max(1, len(frames))


def _process_time(proc: FrameProcessor, frames: list, info: VideoInfo, batch: int) -> tuple[list, float, float]:
    """The frames through ``proc`` in batches after two warm-up batches → the batches, seconds per
    frame, and the first warm-up batch's seconds (compiling, or loading compiled kernels from
    the cache: what a conversion's first batch waits)."""

    def stack(items: list):
        return proc.host.stack(items, info.matrix, info.full_range)

    # warm-up: compiling, first-call allocations, kernel selection, page faults
    t = time.perf_counter()
    proc.process(stack(frames[:batch]))
    first = time.perf_counter() - t
    proc.process(stack(frames[:batch]))
    proc.reset()
    out, submitted = [], []
    t = time.perf_counter()
    for i in range(0, len(frames), batch):  # as convert runs them: on a GPU, one batch in flight
        submitted.append(proc.submit(stack(frames[i : i + batch])))
        while len(submitted) > proc.host.in_flight:
            out.append(submitted.pop(0).result())
    out += [p.result() for p in submitted]
    return out, (time.perf_counter() - t) / len(frames), first


def _processing_fps(path: Path, proc: FrameProcessor, batch: int, decoder: str) -> float:
    """Frames per second from decode to 10-bit planes in host memory, with no encoder: a reader
    thread decodes as ``convert``'s does, this thread processes batches and drops the planes."""
    import queue
    import threading

    container = open_decoding(path, decoder, str(proc.device))
    info = probe(container, path)
    frames: queue.Queue = queue.Queue(maxsize=2 * batch)

    def read() -> None:
        for f in container.decode(container.streams.video[0]):
            frames.put(frame_to_input(f, info, proc.host.takes_planes))
        frames.put(None)

    proc.reset()
    t = time.perf_counter()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    n, pending, submitted, done = 0, [], [], False
    while not done:
        item = frames.get()
        done = item is None
        if item is not None:
            pending.append(item)
        if pending and (done or len(pending) == batch):
            submitted.append(proc.submit(proc.host.stack(pending, info.matrix, info.full_range)))
            n += len(pending)
            pending.clear()
        while len(submitted) > (0 if done else proc.host.in_flight):  # one in flight on a GPU, as convert
            submitted.pop(0).result()  # the planes in host memory, dropped
    seconds = time.perf_counter() - t
    reader.join()
    container.close()
    return n / seconds


def _serial_fps(path: Path, proc: FrameProcessor, batch: int, decoder: str) -> float:
    """:func:`_processing_fps` with no batch in flight: each batch's codes back before the next is
    stacked (the processor as it ran before copies overlapped compute)."""
    keep, proc.host.in_flight = proc.host.in_flight, 0
    try:
        return _processing_fps(path, proc, batch, decoder)
    finally:
        proc.host.in_flight = keep


def pace(stages: dict[str, float]) -> str:
    """Which stage sets the pace: the one with the most milliseconds per frame (the stages run in
    parallel threads: decode, the processor (colour + network), the encoder)."""
    work = {"decode": stages["decode_ms"], "processing": stages["colour_ms"] + stages["network_ms"],
            "encode": stages["encode_ms"]}  # fmt: skip
    return max(work, key=work.get)


def _encode_time(batches, path: Path, settings: EncoderSettings, rate: int) -> float:
    b0 = batches[0]
    h, w = b0.y.shape[1:]
    writer = HDRWriter(path, w, h, Fraction(1, rate), Fraction(rate), settings)
    n = 0
    t = time.perf_counter()
    for b in batches:
        for i in range(len(b)):
            writer.write_planes(b.y[i], b.uv[i], n, b.max_cll[i], b.max_fall[i])
            n += 1
    writer.close()
    return (time.perf_counter() - t) / n


def run_bench(
    settings: ConversionSettings,
    size: tuple[int, int] = (1920, 1080),
    frames: int = 48,
    modes: tuple[str, ...] = MODES,
    input_path: Path | None = None,
    log=lambda *_: None,
) -> dict:
    """Run the modes with the conversion ``settings`` (model, device, precision, batch size,
    encoder; the ``quality`` of each mode is the mode's; no temporal stage: the per-frame path);
    returns ``{"device", "size", "frames", "null_fps", "fast_fps", "full_fps", "null_processing_fps",
    …, "stages": {mode: {stage: ms per frame}}, "pace": {mode: stage}, "encoder": …}`` (modes not
    run are absent). ``MODE_processing_fps``: decode → processor → planes in host memory, no
    encoder (:func:`_processing_fps`), with one batch in flight on a GPU, and there also
    ``MODE_processing_fps_serial`` without; ``MODE_first_batch_s``: the first batch's seconds
    (compiling, or loading the compiled kernels from the cache); ``pace``: the stage with the
    most time per frame."""
    settings = settings.with_(temporal=False, preset=settings.preset or "ultrafast")
    device = pick_device(settings.device)
    enc = settings.encoder_settings()
    batch = settings.batch_for(torch.device(device).type)
    decoder = settings.decoding(device)[0]
    with tempfile.TemporaryDirectory(prefix="hdrvideo-bench-") as tmp:
        tmpd = Path(tmp)
        clip = input_path or make_bench_clip(tmpd / "bench.mp4", size[0], size[1], frames)
        colour_proc = FrameProcessor(None, "pq", device=device, compile=settings.compile_resolved != "off")
        # (frames as convert hands them to a processor on this device: planes on a GPU)
        decoded, info, decode_ms = _decode_all(Path(clip), colour_proc.host.takes_planes, decoder, device)
        w, h = info.padded_size
        result: dict = {
            "device": str(device),
            "size": f"{w}x{h}",
            "frames": len(decoded),
            "encoder": f"libx265 preset {enc.preset}, crf {enc.crf or 18}" + (f", {enc.jobs} at once" if enc.jobs > 1 else ""),
            "decoder": decoder,
            "threads": torch.get_num_threads(),
            "compile": settings.compile_resolved,
            "stages": {},
        }
        _, colour_s, first = _process_time(colour_proc, decoded, info, batch)
        result["null_first_batch_s"] = round(first, 4)
        for mode in modes:
            proc = colour_proc if mode == "null" else settings.with_(quality=mode).build_processor()
            batches, proc_s, first = _process_time(proc, decoded, info, batch)
            if mode != "null":
                result[f"{mode}_first_batch_s"] = round(first, 4)
            enc_s = _encode_time(batches, tmpd / f"enc_{mode}.mkv", enc, 25)
            t = time.perf_counter()
            r = convert_video(clip, tmpd / f"out_{mode}.mkv", proc, enc, batch_size=batch, overwrite=True, decoder=decoder)
            fps = r.frames / (time.perf_counter() - t)
            result[f"{mode}_fps"] = round(fps, 3)
            result[f"{mode}_processing_fps"] = round(_processing_fps(Path(clip), proc, batch, decoder), 3)
            if proc.host.in_flight:  # on a GPU: the same without a batch in flight, what the overlap gains
                result[f"{mode}_processing_fps_serial"] = round(_serial_fps(Path(clip), proc, batch, decoder), 3)
            result["stages"][mode] = {
                "decode_ms": round(1000 * decode_ms, 2),
                "colour_ms": round(1000 * colour_s, 2),
                "network_ms": 0.0 if mode == "null" else round(1000 * max(0.0, proc_s - colour_s), 2),
                "encode_ms": round(1000 * enc_s, 2),
            }
            result.setdefault("pace", {})[mode] = pace(result["stages"][mode])
            log(f"{mode}: {fps:.2f} fps end to end, {result[f'{mode}_processing_fps']:.2f} without the encoder; "
                f"stages {result['stages'][mode]}")
        result["notes"] = sorted({n for p in (colour_proc, proc) for n in p.notes})
        return result


def format_bench(r: dict) -> str:
    """A markdown table of a :func:`run_bench` result."""
    rows = [
        f"{r['size']}, {r['frames']} frames, device {r['device']} ({r['threads']} threads), {r['encoder']}, "
        f"compile {r.get('compile', 'off')}, decoder {r.get('decoder', 'software')}",
        "",
        "| mode | fps end to end | fps without the encoder | decode ms | colour ms | network ms | encode ms | pace set by |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for mode, st in r["stages"].items():
        proc_fps = r.get(f"{mode}_processing_fps")
        rows.append(
            f"| {mode} | {r[f'{mode}_fps']:.2f} | {'—' if proc_fps is None else f'{proc_fps:.2f}'} | "
            f"{st['decode_ms']:.1f} | {st['colour_ms']:.1f} | {st['network_ms']:.1f} | {st['encode_ms']:.1f} | "
            f"{r.get('pace', {}).get(mode, pace(st))} |"
        )
    for mode in r["stages"]:
        serial = r.get(f"{mode}_processing_fps_serial")
        if serial:
            rows.append(f"\n{mode}: {r[f'{mode}_processing_fps']:.2f} fps without the encoder with one batch in flight, "
                        f"{serial:.2f} without (×{r[f'{mode}_processing_fps'] / serial:.2f})")  # fmt: skip
    firsts = [f"{m} {r[f'{m}_first_batch_s']:.1f} s" for m in dict.fromkeys(("null", *r["stages"])) if f"{m}_first_batch_s" in r]
    if firsts:
        rows.append(f"\nfirst batch (compiling, or loading compiled kernels from the cache): {', '.join(firsts)}")
    if "null_fps" in r and "fast_fps" in r:
        rows.append(f"\nfast / null = {r['fast_fps'] / r['null_fps']:.2f}")
    rows += [f"note: {n}" for n in r.get("notes", [])]
    return "\n".join(rows)


# -- the network alone ---------------------------------------------------------------------------
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
VARIANTS = ("eager", "channels_last", "compile", "inference", "cudagraphs")
"""``inference``: the compiled :class:`~hdrvideo.pipeline.inference.InferenceNet` (what a CPU runs)."""


def network_flops(model: torch.nn.Module, width: int, height: int) -> int:
    """FLOPs (2 per multiply-add) of one forward pass on a (1, 3, height, width) frame, counted by
    PyTorch's FlopCounterMode on the meta device (no memory, no time)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta", torch.float32)  # whatever dtype the last row left it in
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(1, 3, height, width, device="meta"))
    return int(counter.get_total_flops())


def _runner(model, x: torch.Tensor, variant: str):
    """A zero-argument callable that runs the network once on x in the given variant."""
    if variant in ("channels_last", "compile", "inference", "cudagraphs"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if variant == "inference":
        from ..pipeline.inference import InferenceNet

        model, variant = InferenceNet(model).eval(), "compile"
    if variant == "compile":
        compiled = torch.compile(model, mode="max-autotune-no-cudagraphs" if x.is_cuda else "default")
        return lambda: compiled(x)
    if variant == "cudagraphs":
        if not x.is_cuda:
            raise RuntimeError("CUDA graphs need a CUDA device")
        static_x = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream before capture
                model(static_x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = model(static_x)

        def replay():
            graph.replay()
            return static_y

        return replay
    return lambda: model(x)


@torch.no_grad()
def bench_network(
    model: torch.nn.Module,
    sizes: list[tuple[int, int]],
    dtypes: list[str],
    variants: list[str],
    device: str = "cpu",
    batch: int = 1,
    seconds: float = 2.0,
    log=lambda *_: None,
) -> list[dict]:
    """Time ExpandNet alone for every size × dtype × variant: ms per frame, frames per second,
    achieved TFLOP/s (from :func:`network_flops`) and peak memory (CUDA: max allocated, MiB).
    A combination that cannot run here (CUDA graphs on a CPU, no compiler for torch.compile, out
    of memory) is a row with its ``error``; it never stops the others."""
    rows = []
    dev = torch.device(device)
    for w, h in sizes:
        flops = network_flops(model, w, h)
        for dname in dtypes:
            for variant in variants:
                row = {"size": f"{w}x{h}", "dtype": dname, "variant": variant, "batch": batch,
                       "gflop_per_frame": round(flops / 1e9, 1)}  # fmt: skip
                try:
                    m = model.to(dev, DTYPES[dname]).eval()
                    x = torch.rand(batch, 3, h, w, device=dev, dtype=DTYPES[dname])
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats(dev)
                    run = _runner(m, x, variant)
                    for _ in range(2):
                        run()
                    _sync(dev)
                    n, t0 = 0, time.perf_counter()
                    while n < 3 or time.perf_counter() - t0 < seconds:
                        run()
                        n += 1
                    _sync(dev)
                    per_frame = (time.perf_counter() - t0) / (n * batch)
                    row.update(ms=round(1000 * per_frame, 2), fps=round(1 / per_frame, 2),
                               tflops=round(flops / per_frame / 1e12, 2))  # fmt: skip
                    if dev.type == "cuda":
                        row["peak_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20)
                except Exception as e:  # noqa: BLE001 - reported in the row
                    row["error"] = f"{type(e).__name__}: {short_error(e)}"[:160]
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                log(format_network_row(row))
                rows.append(row)
    model.to(torch.float32)
    return rows


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def format_network_row(r: dict) -> str:
    if "error" in r:
        return f"| {r['size']} | {r['dtype']} | {r['variant']} | — | — | — | — | {r['error']} |"
    mem = r.get("peak_mib", "—")
    return f"| {r['size']} | {r['dtype']} | {r['variant']} | {r['ms']:.2f} | {r['fps']:.1f} | {r['tflops']:.2f} | {mem} | |"


def format_network(rows: list[dict], device: str) -> str:
    head = [
        f"ExpandNet alone on {device} (batch {rows[0]['batch'] if rows else 1}); "
        f"{rows[0]['gflop_per_frame'] if rows else 0} GFLOP per frame at {rows[0]['size'] if rows else ''}",
        "",
        "| size | dtype | variant | ms/frame | fps | TFLOP/s | peak MiB | note |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    return "\n".join(head + [format_network_row(r) for r in rows])
