"""The command line: a thin layer over the package (options → objects → one call)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from . import __version__


class UserError(click.ClickException):
    """A problem with the user's input or environment: one clear line, exit status 1."""

    def show(self, file=None) -> None:  # one line, prefixed with the program's name
        click.echo(f"hdrvideo: error: {self.format_message()}", err=True, file=file)


# options shared by convert, stream and batch
PRECISION_OPTION = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="The network's number format (auto: fp16 on a GPU; bf16 on a CPU that has it natively, else fp32).",
)
QUALITY_OPTION = click.option(
    "--quality",
    type=click.Choice(["fast", "balanced", "full"]),
    help="Network resolution (default: full on GPU, fast on CPU).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdrvideo")
def main() -> None:
    """Turn SDR video (8-bit BT.709) into HDR10 (PQ) or HLG video (10-bit BT.2020) with ExpandNet."""
    from .pipeline.memory import keep_freed_memory

    keep_freed_memory()  # frame-sized CPU tensors: reuse freed memory instead of page-faulting it in again


def _pick_device(device: str | None) -> str:
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available here")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def network_dtype(precision: str, device: str):
    """--precision → the network's dtype. auto: float16 on a GPU; on a CPU bfloat16 where the CPU
    computes it natively (AVX512-BF16 or AMX: 1.4× faster for the same PU21 to 0.003 dB, see the
    README), else float32. Colour math is float32 whatever this says."""
    import torch

    from .pipeline.memory import cpu_has_native_bf16

    if precision == "auto":
        if device.startswith("cuda"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def build_processor(
    weights, device, transfer, peak_nits, quality, quiet, tile=None, temporal=False, lookahead=0, precision="auto"
):
    """Options → FrameProcessor (shared by convert, stream and bench)."""

    from .model import WeightsError, load_model
    from .pipeline.processor import QUALITY_LONG_SIDE, FrameProcessor

    device = _pick_device(device)
    if quality is None:
        quality = "full" if device.startswith("cuda") else "fast"
        if quality == "fast" and not quiet:
            click.echo("hdrvideo: no GPU: using --quality fast (the network runs on a reduced frame)", err=True)
    try:
        model = load_model(weights, device=device, dtype=network_dtype(precision, device))
    except WeightsError as e:
        raise UserError(str(e)) from None
    long_side = QUALITY_LONG_SIDE[quality]
    hook = None
    if temporal:
        from .pipeline.temporal import TemporalConfig, TemporalFilter

        hook = TemporalFilter(TemporalConfig(lookahead=lookahead))
    try:
        return FrameProcessor(model, transfer, peak_nits, net_long_side=long_side, tile=tile, temporal=hook)
    except ValueError as e:
        raise UserError(str(e)) from None


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    help="ExpandNet weights (.safetensors or the authors' .pth); default: shipped model.",
)
@click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True)
@click.option("--peak-nits", type=float, default=1000.0, show_default=True, help="Peak light of the output, cd/m².")
@click.option("--codec", type=click.Choice(["hevc", "av1", "prores", "ffv1"]), default="hevc", show_default=True)
@click.option("--crf", type=int, help="Quality (lower is better): default 18 for hevc, 30 for av1.")
@click.option(
    "--encoder",
    type=click.Choice(["pyav", "ffmpeg"]),
    default="pyav",
    show_default=True,
    help="Who encodes: PyAV's bundled FFmpeg, or a system ffmpeg (hevc/av1, constant frame rate).",
)
@click.option("--preset", help="Encoder preset (x265: ultrafast … veryslow; SVT-AV1: 0 … 13).")
@click.option("--device", help="cuda, cuda:1, cpu … (default: CUDA when present).")
@PRECISION_OPTION
@QUALITY_OPTION
@click.option(
    "--batch-size", type=click.IntRange(1, 256), help="Frames per network batch (default: 8 on GPU, 2 on CPU)."
)
@click.option(
    "--temporal",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Temporal stabilisation (scene-cut aware smoothing of calibration and gain).",
)
@click.option(
    "--lookahead",
    type=click.IntRange(0, 32),
    default=4,
    show_default=True,
    help="Frames of look-ahead for the calibration (within each batch; the batch grows to hold it).",
)
@click.option(
    "--preview",
    type=click.Path(path_type=Path),
    help="Also write a PNG: SDR input | HDR tone-mapped for SDR screens | stops raised.",
)
@click.option("--preview-frame", type=click.IntRange(0), help="Frame for --preview (default: the middle one).")
@click.option("--force", is_flag=True, help="Convert input that is already HDR.")
@click.option("-y", "--overwrite", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def convert(
    input,
    output,
    weights,
    transfer,
    peak_nits,
    codec,
    crf,
    encoder,
    preset,
    device,
    precision,
    quality,
    batch_size,
    temporal,
    lookahead,
    preview,
    preview_frame,
    force,
    overwrite,
    quiet,
):
    """Convert an SDR video INPUT to an HDR video OUTPUT (.mkv, .mp4 or .mov).

    Image mode: an SDR image (or a folder of them) to linear HDR (.exr or .hdr; a folder of .exr).
    """
    from .commands.convert import ConvertError, convert_video
    from .commands.images import HDR_OUTPUTS, IMAGE_INPUTS, ImageError, convert_images
    from .media.decode import InputError
    from .media.encode import EncodeError, EncoderSettings

    if not 100 < peak_nits <= 10000:
        raise UserError(f"--peak-nits must be in (100, 10000], got {peak_nits:g}")
    image_mode = (
        input.suffix.lower() in IMAGE_INPUTS
        or output.suffix.lower() in HDR_OUTPUTS
        or (input.is_dir() and not output.suffix)
    )
    if image_mode:
        if not input.exists():
            raise UserError(f"input not found: {input}")
        processor = build_processor(weights, device, transfer, peak_nits, quality or "full", quiet, precision=precision)
        try:
            written = convert_images(input, output, processor, overwrite=overwrite)
        except ImageError as e:
            raise UserError(str(e)) from None
        if not quiet:
            click.echo(f"wrote {len(written)} HDR image(s): {written[0]}{' …' if len(written) > 1 else ''}", err=True)
        return
    if preview is not None and preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--preview writes a .png or .jpg image, not {preview.suffix or '(none)'!r}")
    processor = build_processor(
        weights, device, transfer, peak_nits, quality, quiet, temporal=temporal == "on", lookahead=lookahead,
        precision=precision,
    )  # fmt: skip
    if batch_size is None:
        batch_size = 8 if processor.device.type == "cuda" else 2
    if temporal == "on":
        batch_size = max(batch_size, lookahead + 1)
    settings = EncoderSettings(
        codec=codec, transfer=transfer, peak_nits=peak_nits, crf=crf, preset=preset, encoder=encoder
    )
    bar = None

    def on_info(info) -> None:
        nonlocal bar
        if quiet:
            return
        from tqdm import tqdm

        bar = tqdm(total=info.frames or None, unit="frame", desc=input.name, dynamic_ncols=True, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    # SIGTERM behaves like Ctrl-C: stop, remove the temporary file, exit
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        result = convert_video(
            input,
            output,
            processor,
            settings,
            batch_size=batch_size,
            overwrite=overwrite,
            force=force,
            progress=progress,
            on_info=on_info,
        )
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        click.echo("hdrvideo: interrupted; no output written", err=True)
        sys.exit(130)
    except (ConvertError, InputError, EncodeError) as e:
        if bar is not None:
            bar.close()
        raise UserError(str(e)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if bar is not None:
        bar.close()
    if not quiet:
        for note in result.notes:
            click.echo(f"hdrvideo: note: {note}", err=True)
        for s in result.dropped_streams:
            click.echo(f"hdrvideo: warning: {output.suffix} cannot hold {s}; not copied", err=True)
        light = f", MaxCLL {result.max_cll} cd/m², MaxFALL {result.max_fall} cd/m²" if transfer == "pq" else ""
        click.echo(
            f"wrote {result.output}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} fps), "
            f"{result.size_bytes / 1e6:.1f} MB{light}",
            err=True,
        )
    if preview is not None:
        from .commands.preview import preview_from_video, write_preview

        try:
            write_preview(preview, preview_from_video(input, preview_frame, processor))
        except (InputError, OSError) as e:
            raise UserError(f"cannot write the preview {preview}: {e}") from None
        if not quiet:
            click.echo(f"wrote preview {preview}", err=True)
    if result.lost_frames:
        click.echo(
            f"hdrvideo: error: {result.lost_frames} frame(s) of the input could not be decoded; "
            f"{result.output} holds the {result.frames} that could",
            err=True,
        )
        sys.exit(2)


@main.command()
@click.option(
    "-i", "--input", "source", required=True, help="Camera (/dev/video0), file or FFmpeg URL (rtsp, udp, http …)."
)
@click.option("-o", "--output", required=True, help="A .mkv or .ts file, or a URL: udp://, srt://, rtmp://, tcp:// …")
@click.option("-f", "--input-format", help="FFmpeg input format: video4linux2, lavfi … (default: probed).")
@click.option("--video-size", help="Capture size, WxH (cameras).")
@click.option("--framerate", help="Capture frame rate (cameras).")
@click.option("--pixel-format", help="Camera pixel format: mjpeg, yuyv422 …")
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="Stop after this many seconds.")
@click.option(
    "--max-latency",
    type=click.FloatRange(0, min_open=True),
    default=0.5,
    show_default=True,
    help="Seconds a captured frame may wait for processing before it is dropped.",
)
@click.option("--weights", type=click.Path(path_type=Path), help="ExpandNet weights (default: shipped model).")
@click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True)
@click.option("--peak-nits", type=float, default=1000.0, show_default=True, help="Peak light of the output, cd/m².")
@click.option("--codec", type=click.Choice(["hevc", "av1"]), default="hevc", show_default=True)
@click.option("--crf", type=int, help="Quality (lower is better): default 18 for hevc, 30 for av1.")
@click.option("--preset", help="Encoder preset (default: x265 ultrafast / SVT-AV1 12, zero-latency).")
@click.option("--device", help="cuda, cpu … (default: CUDA when present).")
@PRECISION_OPTION
@QUALITY_OPTION
@click.option("--batch-size", type=click.IntRange(1, 64), default=1, show_default=True, help="Frames per batch.")
@click.option("--temporal", type=click.Choice(["on", "off"]), default="on", show_default=True)
@click.option(
    "--realtime/--no-realtime",
    default=None,
    help="Read the input at its own frame rate, as a live source (default: on for files, off for live sources).",
)
@click.option("--preview", is_flag=True, help="A window with the camera picture beside the HDR result.")
@click.option("-y", "--overwrite", is_flag=True, help="Overwrite an existing output file.")
@click.option("-q", "--quiet", is_flag=True, help="No status line or report.")
def stream(
    source,
    output,
    input_format,
    video_size,
    framerate,
    pixel_format,
    duration,
    max_latency,
    weights,
    transfer,
    peak_nits,
    codec,
    crf,
    preset,
    device,
    precision,
    quality,
    batch_size,
    temporal,
    realtime,
    preview,
    overwrite,
    quiet,
):
    """Live HDR from a camera or any live source, in real time (causal: no look-ahead).

    Frames that processing cannot keep up with are dropped (the newest wins) and counted; the
    output's timestamps come from the capture clock. Stops at the source's end, after --duration,
    or on Ctrl-C / SIGTERM, leaving a playable file.
    """
    import threading

    from .commands.stream import StreamError, StreamOptions, run_stream
    from .media.encode import EncoderSettings

    if not 100 < peak_nits <= 10000:
        raise UserError(f"--peak-nits must be in (100, 10000], got {peak_nits:g}")
    opts = StreamOptions(
        input=source,
        output=output,
        input_format=input_format,
        video_size=video_size,
        framerate=framerate,
        pixel_format=pixel_format,
        duration=duration,
        max_latency=max_latency,
        batch_size=batch_size,
        overwrite=overwrite,
        realtime=realtime,
    )
    processor = build_processor(
        weights, device, transfer, peak_nits, quality, quiet, temporal=temporal == "on", precision=precision
    )
    settings = EncoderSettings(codec=codec, transfer=transfer, peak_nits=peak_nits, crf=crf, preset=preset)
    stop = threading.Event()
    on_frame = None
    window = None
    if preview:
        from .commands.preview import PreviewWindow

        try:
            window = PreviewWindow(transfer, peak_nits)
        except RuntimeError as e:
            click.echo(f"hdrvideo: warning: {e}; streaming without a preview", err=True)
        if window is not None:

            def on_frame(rgb, batch) -> None:
                if not window.show(rgb, batch.signal):
                    stop.set()

    def on_status(r) -> None:
        if not quiet:
            click.echo(
                f"\r{r.seconds:6.1f} s  captured {r.captured}  processed {r.processed}  dropped {r.dropped}  "
                f"{r.fps:5.1f} fps",
                err=True,
                nl=False,
            )

    def on_start(info) -> None:
        if not quiet:
            rate = f" at {float(info.rate):g} fps" if info.rate else ""
            click.echo(f"hdrvideo: streaming {source} ({info.width}×{info.height}{rate}) → {output}", err=True)

    handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = run_stream(opts, processor, settings, stop=stop, on_frame=on_frame, on_status=on_status,
                            on_start=on_start)  # fmt: skip
    except StreamError as e:
        raise UserError(str(e)) from None
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        if window is not None:
            window.close()
    if not quiet:
        click.echo("", err=True)
        light = f"; MaxCLL {report.max_cll}, MaxFALL {report.max_fall} cd/m²" if transfer == "pq" else ""
        click.echo(f"hdrvideo: {report.summary()}{light}", err=True)
        for note in report.notes:
            click.echo(f"hdrvideo: note: {note}", err=True)
    if report.failed:  # the output is finalised and valid up to here, but the stream did not end as asked
        click.echo(f"hdrvideo: error: {report.stop_reason}", err=True)
        sys.exit(1)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder for the outputs.")
@click.option("--ext", type=click.Choice([".mkv", ".mp4", ".mov"]), default=".mkv", show_default=True)
@click.option(
    "--workers", type=click.IntRange(1, 1024), help="Local workers (default: one per GPU, else one per 2 cores)."
)
@click.option("--threads", type=click.IntRange(1, 256), help="Torch threads per CPU worker.")
@click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True,
              help="Times a file is retried after its worker died.")  # fmt: skip
@click.option("--ray-address", help="Run on Ray: auto (the running cluster), ray://host:port, or local (start one).")
@click.option(
    "--report", type=click.Path(path_type=Path), help="JSON report (default: OUT/hdrvideo-batch-report.json)."
)
@click.option("--weights", type=click.Path(path_type=Path), help="ExpandNet weights (default: shipped model).")
@click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True)
@click.option("--peak-nits", type=float, default=1000.0, show_default=True)
@click.option("--codec", type=click.Choice(["hevc", "av1", "prores", "ffv1"]), default="hevc", show_default=True)
@click.option("--crf", type=int)
@click.option("--encoder", type=click.Choice(["pyav", "ffmpeg"]), default="pyav", show_default=True)
@click.option("--preset")
@click.option("--device", help="cuda, cpu … (default: CUDA when present).")
@PRECISION_OPTION
@QUALITY_OPTION
@click.option("--batch-size", type=click.IntRange(1, 256))
@click.option("--temporal", type=click.Choice(["on", "off"]), default="on", show_default=True)
@click.option("--lookahead", type=click.IntRange(0, 32), default=4, show_default=True)
@click.option("--force", is_flag=True, help="Convert inputs that are already HDR.")
@click.option("-y", "--overwrite", is_flag=True, help="Convert again even where a complete output exists.")
@click.option("-q", "--quiet", is_flag=True)
def batch(inputs, out_dir, ext, workers, threads, retries, ray_address, report, weights, transfer, peak_nits, codec,
          crf, encoder, preset, device, precision, quality, batch_size, temporal, lookahead, force, overwrite, quiet):  # fmt: skip
    """Convert many videos: INPUTS are files, folders (searched recursively) or manifests (.txt,
    one path per line). Every file becomes OUT/<name>.mkv with convert's options.

    Complete outputs are skipped, so a rerun finishes what a crash left. A file whose worker died is
    retried elsewhere (--retries); a damaged file is reported and never stops the batch. Exit
    status 1 when any file failed.
    """
    from .commands.batch import BatchError, ConvertOptions, format_report, run_batch, write_report

    if not 100 < peak_nits <= 10000:
        raise UserError(f"--peak-nits must be in (100, 10000], got {peak_nits:g}")
    if device:
        _pick_device(device)
    opts = ConvertOptions(
        weights=str(weights) if weights else None, transfer=transfer, peak_nits=peak_nits, codec=codec, crf=crf,
        preset=preset, encoder=encoder, device=device, precision=precision, quality=quality, batch_size=batch_size,
        temporal=temporal == "on", lookahead=lookahead, force=force, threads=threads,
    )  # fmt: skip
    if ray_address is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("Ray is not installed: pip install 'hdrvideo[ray]'") from None
    bar = None

    def on_result(res, rep) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(unit="file", desc="batch", dynamic_ncols=True, file=sys.stderr)
        bar.total = len(rep.results)
        bar.update(1)
        bar.set_postfix(ok=rep.count("ok"), skipped=rep.count("skipped"), failed=rep.count("failed"),
                        fps=f"{rep.fps:.1f}")  # fmt: skip
        if res.status == "failed":
            bar.write(f"hdrvideo: failed: {res.input}: {res.error}", file=sys.stderr)

    try:
        rep = run_batch(inputs, out_dir, opts, suffix=ext, workers=workers, retries=retries, ray_address=ray_address,
                        use_ray=ray_address is not None, overwrite=overwrite, on_result=on_result)  # fmt: skip
    except BatchError as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        click.echo("hdrvideo: interrupted; finished files are kept, a rerun converts the rest", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
    report_path = report or Path(out_dir) / "hdrvideo-batch-report.json"
    write_report(rep, report_path)
    if not quiet:
        click.echo(format_report(rep), err=True)
        click.echo(f"report: {report_path}", err=True)
    if rep.failed:
        sys.exit(1)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(file, as_json):
    """Describe a media FILE: streams, colour tags and HDR10 metadata."""
    import json

    from .media.decode import InputError
    from .media.info import describe, format_description

    try:
        d = describe(file)
    except InputError as e:
        raise UserError(str(e)) from None
    click.echo(json.dumps(d, indent=2) if as_json else format_description(d))


def _widths(text: str | None):
    from .model import ExpandNetConfig

    if not text:
        return ExpandNetConfig()
    try:
        v = [int(x) for x in text.split(",")]
        if len(v) not in (5, 6) or min(v) < 1:
            raise ValueError
    except ValueError:
        raise UserError(
            f"--widths takes 5 or 6 positive integers (local,local_out,mid,glob,fuse[,mid_depth]), got {text!r}"
        ) from None
    names = ["local_width", "local_out", "mid_width", "glob_width", "fuse_width", "mid_depth"]
    return ExpandNetConfig(**dict(zip(names, v, strict=False)))


@click.command("train")
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of HDR images (.exr, .hdr, float .tif), EXR sequences and PQ/HLG videos; repeatable.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder (checkpoints, logs, weights).")
@click.option("--steps", type=int, default=4000, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True, help="Pairs of frames per step (per process).")
@click.option("--crop", type=int, default=128, show_default=True, help="Crop side in pixels (a multiple of 16).")
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--loss-domain", type=click.Choice(["log", "pu21", "linear"]), default="log", show_default=True)
@click.option("--temporal-weight", type=float, default=0.5, show_default=True)
@click.option(
    "--over-weight", type=float, default=2.0, show_default=True,
    help="Weight of the penalty on light predicted where the target is not above SDR white.",
)
@click.option(
    "--graded-prob", type=click.FloatRange(0, 1), default=0.5, show_default=True,
    help="Share of training inputs made by an SDR grade (BT.2446, filmic, gamut, saturation) instead of a camera.",
)
@click.option("--widths", help="Architecture: local,local_out,mid,glob,fuse[,mid_depth] (default 64,128,64,64,64,4).")
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--ckpt-every", type=int, default=250, show_default=True)
@click.option("--val-fraction", type=float, default=0.1, show_default=True, help="Share of scenes held out.")
@click.option("--max-side", type=int, default=1024, show_default=True, help="Scale training media down to this.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", help="cuda, cpu … (default: CUDA when present; torchrun: the local rank's GPU).")
@click.option("--time-limit", type=float, help="Stop (with a checkpoint) after this many minutes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--init",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Fine-tune: start from these weights (.safetensors or .pth; their architecture wins over --widths).",
)
def train_command(
    data,
    out,
    steps,
    batch_size,
    crop,
    lr,
    loss_domain,
    temporal_weight,
    over_weight,
    graded_prob,
    widths,
    val_every,
    ckpt_every,
    val_fraction,
    max_side,
    seed,
    device,
    time_limit,
    resume,
    init,
):
    """Train ExpandNet on HDR images and clips; writes OUT/model.safetensors and best.safetensors."""
    import json

    from .media.hdrio import MediaError
    from .training.train import TrainConfig, train

    if crop % 16 or crop < 32:
        raise UserError(f"--crop must be a multiple of 16 and at least 32, got {crop}")
    cfg = TrainConfig(
        data=[str(d) for d in data],
        out=str(out),
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        loss_domain=loss_domain,
        temporal_weight=temporal_weight,
        over_weight=over_weight,
        graded_prob=graded_prob,
        model=_widths(widths),
        val_every=val_every,
        ckpt_every=ckpt_every,
        val_fraction=val_fraction,
        max_side=max_side,
        seed=seed,
        device=device,
        time_limit_min=time_limit,
        resume=resume,
        init=str(init) if init else None,
    )
    try:
        summary = train(cfg, log=lambda m: click.echo(m, err=True))
    except (MediaError, FileExistsError) as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        click.echo("hdrvideo: interrupted; the last checkpoint stays in --out (continue with --resume)", err=True)
        sys.exit(130)
    click.echo(json.dumps(summary))


main.add_command(train_command)


@main.command("eval")
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of HDR images; repeatable.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Weights to score (.safetensors or .pth); repeatable. Default: the shipped model.",
)
@click.option(
    "--held-out/--all",
    default=True,
    show_default=True,
    help="Score only the scenes training holds out (same split as `train`), or every scene.",
)
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--max-side", type=int, default=512, show_default=True, help="Evaluate at this size.")
@click.option("--quality", type=click.Choice(["fast", "balanced", "full"]), default="full", show_default=True)
@click.option("--device", help="cuda, cpu … (default: CUDA when present).")
def eval_command(data, models, held_out, val_fraction, max_side, quality, device):
    """Score expansion models on held-out HDR images (PU21) against the linear BT.2408 baseline."""
    from .media.hdrio import MediaError
    from .model import WeightsError, default_weights_path, load_model
    from .pipeline.processor import QUALITY_LONG_SIDE
    from .training.data import load_frames
    from .training.evaluate import evaluate, format_table

    device = _pick_device(device)
    try:
        train, val = load_frames(
            list(data), max_side=max(1024, max_side), val_fraction=val_fraction, log=lambda m: click.echo(m, err=True)
        )
    except MediaError as e:
        raise UserError(str(e)) from None
    scenes = val if held_out else train + val
    if not scenes:
        raise UserError("no held-out scenes in --data; use --all to score every scene")
    long_side = QUALITY_LONG_SIDE[quality]
    results = {"linear (BT.2408, no expansion)": evaluate(None, scenes, device, max_side=max_side)}
    paths = list(models) or [default_weights_path()]
    for p in paths:
        try:
            model = load_model(p, device=device)
        except WeightsError as e:
            raise UserError(str(e)) from None
        results[Path(p).parent.name + "/" + Path(p).name] = evaluate(
            model, scenes, device, max_side=max_side, net_long_side=long_side
        )
    click.echo(format_table(results))


@main.command("bench")
@click.option(
    "--input", "input_path", type=click.Path(path_type=Path, exists=True), help="Clip to use (default: generated)."
)
@click.option("--size", default="1920x1080", show_default=True, help="WxH of the generated clip.")
@click.option("--frames", type=click.IntRange(4), default=48, show_default=True)
@click.option("--modes", default="null,fast,full", show_default=True, help="Comma list of null, fast, full.")
@click.option("--device", help="cuda, cpu … (default: CUDA when present).")
@click.option("--weights", type=click.Path(path_type=Path), help="Default: the shipped model.")
@click.option("--batch-size", type=click.IntRange(1, 256))
@click.option("--preset", default="ultrafast", show_default=True, help="x265 preset for all modes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--network",
    is_flag=True,
    help="Instead: the network alone at --sizes × --dtypes × --variants (TFLOP/s, memory).",
)
@click.option("--sizes", default="1920x1080,3840x2160", show_default=True, help="--network: comma list of WxH.")
@click.option("--dtypes", default="fp32,fp16,bf16", show_default=True, help="--network: comma list.")
@click.option(
    "--variants", default="eager,channels_last,compile,cudagraphs", show_default=True, help="--network: comma list."
)
@click.option("--seconds", type=click.FloatRange(0.1), default=3.0, show_default=True, help="--network: per row.")
def bench_command(
    input_path, size, frames, modes, device, weights, batch_size, preset, as_json, network, sizes, dtypes, variants,
    seconds,
):  # fmt: skip
    """Measure conversion speed: the null pipeline, fast and full quality, with time per stage.

    With --network: the network alone (a micro-benchmark for GPUs: precisions, channels-last,
    torch.compile, CUDA graphs)."""
    import json

    from .commands.bench import DTYPES, MODES, VARIANTS, bench_network, format_bench, format_network, run_bench
    from .media.encode import EncoderSettings
    from .model import WeightsError, load_model

    if network:
        device = _pick_device(device)
        try:
            dims = [tuple(int(v) for v in s.lower().split("x")) for s in sizes.split(",") if s.strip()]
            if not dims or any(len(d) != 2 or min(d) < 16 for d in dims):
                raise ValueError
        except ValueError:
            raise UserError(f"--sizes takes a comma list of WxH, got {sizes!r}") from None
        dt = [d.strip() for d in dtypes.split(",") if d.strip()]
        vs = [v.strip() for v in variants.split(",") if v.strip()]
        if not dt or any(d not in DTYPES for d in dt):
            raise UserError(f"--dtypes takes a comma list of {', '.join(DTYPES)}, got {dtypes!r}")
        if not vs or any(v not in VARIANTS for v in vs):
            raise UserError(f"--variants takes a comma list of {', '.join(VARIANTS)}, got {variants!r}")
        try:
            model = load_model(weights, device=device)
        except WeightsError as e:
            raise UserError(str(e)) from None
        rows = bench_network(model, dims, dt, vs, device, batch_size or 1, seconds,
                             log=(lambda m: None) if as_json else (lambda m: click.echo(m, err=True)))  # fmt: skip
        click.echo(json.dumps({"device": device, "rows": rows}) if as_json else format_network(rows, device))
        return

    try:
        w, h = (int(v) for v in size.lower().split("x"))
        if w < 16 or h < 16 or w % 2 or h % 2:
            raise ValueError
    except ValueError:
        raise UserError(f"--size must be WxH with even sides of at least 16, got {size!r}") from None
    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    if not chosen or any(m not in MODES for m in chosen):
        raise UserError(f"--modes takes a comma list of {', '.join(MODES)}, got {modes!r}")
    device = _pick_device(device)
    model = None
    if any(m != "null" for m in chosen):
        try:  # in the number format convert picks by default
            model = load_model(weights, device=device, dtype=network_dtype("auto", device))
        except WeightsError as e:
            raise UserError(str(e)) from None
    result = run_bench(
        model, (w, h), frames, chosen, input_path, batch_size, EncoderSettings(preset=preset), device,
        log=(lambda m: None) if as_json else (lambda m: click.echo(m, err=True)),
    )  # fmt: skip
    click.echo(json.dumps(result) if as_json else format_bench(result))


def run() -> None:  # pragma: no cover - console entry point used by `python -m hdrvideo`
    sys.exit(main())
