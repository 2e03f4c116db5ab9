"""The command line: parse the options, then call one function of :mod:`hdrvideo.commands`.

Nothing heavy is imported at start-up (torch loads when a command runs), and every problem the
user can fix is one line (:class:`~hdrvideo.commands.ui.UserError`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from . import __version__
from .commands.ui import UserError, conversion_options, say
from .media.encoder_settings import PIPE_FORMATS

__all__ = ["main", "train_command", "UserError"]

PATH = click.Path(path_type=Path)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _compiles(args: list[str]) -> bool:
    """Whether a command with these arguments would compile the colour stage on a CPU:
    ``--compile`` (default :func:`~hdrvideo.pipeline.settings.compile_mode`) not ``off``, and a C++
    compiler present (:func:`~hdrvideo.pipeline.memory.cxx_compiler`). Without importing torch."""
    from .pipeline.memory import cxx_compiler
    from .pipeline.settings import compile_mode

    choice = compile_mode()
    for i, a in enumerate(args):
        if a == "--compile" and i + 1 < len(args):
            choice = args[i + 1]
        elif a.startswith("--compile="):
            choice = a.split("=", 1)[1]
    return choice != "off" and cxx_compiler() is not None


class _Main(click.Group):
    """The command group: from the moment a command starts, SIGTERM stops it like Ctrl-C, and an
    interruption before a command's own handling (importing torch, loading the model) is one line
    and exit status 130, never a traceback."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        if name not in ("train", "eval") and _compiles(rest):
            # The compiled colour stage shares the cores with the decoder's and x265's threads:
            # OpenMP threads that spin while they wait take the cycles x265 needs (x265 ran at
            # half speed beside them; docs/speed.md). The eager path's many short parallel
            # regions are faster with spinning. Set before torch loads; the user's value wins.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return name, cmd, rest

    def invoke(self, ctx: click.Context):
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            say("interrupted; no output written")
            sys.exit(130)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdrvideo")
def main() -> None:
    """Turn SDR video (8-bit BT.709) into HDR10 (PQ) or HLG video (10-bit BT.2020) with ExpandNet."""
    from .pipeline.memory import keep_freed_memory

    keep_freed_memory()  # frame-sized CPU tensors: reuse freed memory instead of page-faulting it in again


@main.command()
@click.argument("input", type=PATH)
@click.argument("output", type=PATH)
@conversion_options()
@click.option("--preview", type=PATH, help="Also write a PNG: SDR input | HDR tone-mapped for SDR screens | stops raised.")
@click.option("--preview-frame", type=click.IntRange(0), help="Frame for --preview (default: the middle one).")
@click.option("-f", "--format", "pipe_format", type=click.Choice(PIPE_FORMATS), default="matroska", show_default=True,
              help="Container of OUTPUT '-' (standard output; MaxCLL/MaxFALL signalled as unknown).")
@click.option("-y", "--overwrite", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def convert(input, output, settings, preview, preview_frame, pipe_format, overwrite, quiet):
    """Convert an SDR video INPUT to an HDR video OUTPUT (.mkv, .mp4 or .mov; '-': a pipe).

    Image mode: an SDR image (or a folder of them) to linear HDR (.exr, .hdr) or an HDR photo
    viewers show: Ultra HDR JPEG (.jpg: the SDR photo with our gain map) or AVIF (.avif, 10-bit).
    """
    from .commands import terminal

    terminal.convert(input, output, settings, preview=preview, preview_frame=preview_frame, overwrite=overwrite,
                     quiet=quiet, pipe_format=pipe_format)  # fmt: skip


@main.command()
@click.option("-i", "--input", "source", required=True,
              help="Camera (/dev/video0), file or FFmpeg URL (rtsp, udp, http …).")
@click.option("-o", "--output", required=True, help="A .mkv or .ts file, or a URL: udp://, srt://, rtmp://, tcp:// …")
@click.option("-f", "--input-format", help="FFmpeg input format: video4linux2, lavfi … (default: probed).")
@click.option("--video-size", help="Capture size, WxH (cameras).")
@click.option("--framerate", help="Capture frame rate (cameras).")
@click.option("--pixel-format", help="Camera pixel format: mjpeg, yuyv422 …")
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="Stop after this many seconds.")
@click.option("--max-latency", type=click.FloatRange(0, min_open=True), default=0.5, show_default=True,
              help="Seconds a captured frame may wait for processing before it is dropped.")
@conversion_options(live=True)
@click.option("--realtime/--no-realtime", default=None,
              help="Read the input at its own frame rate, as a live source (default: on for files, off for live).")
@click.option("--preview", is_flag=True, help="A window with the camera picture beside the HDR result.")
@click.option("-y", "--overwrite", is_flag=True, help="Overwrite an existing output file.")
@click.option("-q", "--quiet", is_flag=True, help="No status line or report.")
def stream(source, output, input_format, video_size, framerate, pixel_format, duration, max_latency, settings,
           realtime, preview, overwrite, quiet):  # fmt: skip
    """Live HDR from a camera or any live source, in real time (causal: no look-ahead).

    Frames that processing cannot keep up with are dropped (the newest wins) and counted; the
    output's timestamps come from the capture clock. Stops at the source's end, after --duration,
    or on Ctrl-C / SIGTERM, leaving a playable file.
    """
    from .commands import terminal
    from .commands.stream import StreamOptions

    opts = StreamOptions(input=source, output=output, input_format=input_format, video_size=video_size,
                         framerate=framerate, pixel_format=pixel_format, duration=duration, max_latency=max_latency,
                         batch_size=settings.batch_size or 1, overwrite=overwrite, realtime=realtime)  # fmt: skip
    terminal.stream(opts, settings, preview=preview, quiet=quiet)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", required=True, type=PATH, help="Folder for the outputs.")
@click.option("--ext", type=click.Choice([".mkv", ".mp4", ".mov"]), default=".mkv", show_default=True)
@click.option("--workers", type=click.IntRange(1, 1024),
              help="Local workers (default: one per GPU, else one per 2 cores).")
@click.option("--threads", type=click.IntRange(1, 256), help="Torch threads per CPU worker.")
@click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True,
              help="Times a file is retried after its worker died.")
@click.option("--ray-address", help="Run on Ray: auto (the running cluster), ray://host:port, or local (start one).")
@click.option("--report", type=PATH, help="JSON report (default: OUT/hdrvideo-batch-report.json).")
@conversion_options()
@click.option("-y", "--overwrite", is_flag=True, help="Convert again even where a complete output exists.")
@click.option("-q", "--quiet", is_flag=True)
def batch(inputs, out_dir, ext, workers, threads, retries, ray_address, report, settings, overwrite, quiet):
    """Convert many videos: INPUTS are files, folders (searched recursively) or manifests (.txt,
    one path per line). Every file becomes OUT/<name>.mkv with convert's options.

    Complete outputs are skipped, so a rerun finishes what a crash left. A file whose worker died is
    retried elsewhere (--retries); a damaged file is reported and never stops the batch. Exit
    status 1 when any file failed.
    """
    from .commands import terminal

    terminal.batch(inputs, out_dir, settings.with_(threads=threads), ext=ext, workers=workers, retries=retries,
                   ray_address=ray_address, report=report, overwrite=overwrite, quiet=quiet)  # fmt: skip


@main.command()
@click.argument("file", type=PATH)
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


@click.command("train")
@click.option("--data", multiple=True, type=PATH,
              help="Folder of HDR images (.exr, .hdr, float .tif), EXR sequences and PQ/HLG videos; repeatable.")
@click.option("--pairs", "pair_files", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Studio-made SDR/HDR pairs packed by scripts/pack_aces_pairs.py (sampled with the gain-map "
                   "photos, --photo-prob); repeatable.")
@click.option("--curve", help="IP,C: train the network on what this smooth curve leaves (BT.2446-1 Method C's "
                              "shape; the model's expansion settings at inference).")
@click.option("--out", required=True, type=PATH, help="Run folder (checkpoints, logs, weights).")
@click.option("--steps", type=int, default=4000, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True, help="Pairs of frames per step (per process).")
@click.option("--crop", type=int, default=128, show_default=True, help="Crop side in pixels (a multiple of 16).")
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--loss-domain", type=click.Choice(["log", "pu21", "linear"]), default="log", show_default=True)
@click.option("--temporal-weight", type=float, default=0.5, show_default=True)
@click.option("--over-weight", type=float, default=2.0, show_default=True,
              help="Weight of the penalty on light predicted where the target is not above SDR white.")
@click.option("--graded-prob", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of inputs made by an SDR grade (BT.2446, filmic, gamut, saturation) instead of a camera.")
@click.option("--recurrent", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Train the recurrent variant with this many state channels (widens --init's model; 0: per frame).")
@click.option("--photo-prob", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="Share of samples taken from gain-map photos (Ultra HDR JPEGs in --data: real SDR/HDR pairs).")
@click.option("--widths", help="Architecture: local,local_out,mid,glob,fuse[,mid_depth] (default 64,128,64,64,64,4).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.999, show_default=True,
              help="Decay of the moving average of the weights that is validated and saved (0: the raw weights). "
                   "It starts from the first step's weights: for a short run from scratch, lower it.")
@click.option("--val-pairs", multiple=True, type=PATH,
              help="Graded validation: PQ/HLG videos (frames between those eval --pairs scores); best.safetensors "
                   "is chosen on them. Repeatable.")
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--ckpt-every", type=int, default=250, show_default=True)
@click.option("--val-fraction", type=float, default=0.1, show_default=True, help="Share of scenes held out.")
@click.option("--max-side", type=int, default=1024, show_default=True, help="Scale training media down to this.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", help="cuda, cpu … (default: CUDA when present; torchrun: the local rank's GPU).")
@click.option("--time-limit", type=float, help="Stop (with a checkpoint) after this many minutes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--teacher", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Distil: learn this network's output instead of the HDR; without --init the student starts "
                   "from its strongest channels at --widths (narrower, same mid depth).")
@click.option("--init", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Fine-tune: start from these weights (.safetensors or .pth; their architecture wins over --widths).")
def train_command(**options):
    """Train ExpandNet on HDR images and clips; writes OUT/model.safetensors and best.safetensors."""
    from .commands import measure

    measure.train(**options)


main.add_command(train_command)


@main.command("eval")
@click.option("--data", multiple=True, required=True, type=PATH,
              help="Folder of HDR images; with --pairs also PQ/HLG videos (graded references); repeatable.")
@click.option("--model", "models", multiple=True, type=PATH,
              help="Weights to score (.safetensors or .pth); repeatable. Default: the shipped model.")
@click.option("--pairs", is_flag=True,
              help="Graded pairs: SDR renderings of HDR references (BT.2446, filmic, gamut, saturation), "
                   "scored against the HDR (PQ/PU21-PSNR, ΔE_ITP, false highlights, headroom).")
@click.option("--renderings", help="--pairs: comma list of renderings (default: all).")
@click.option("--sets", default="aces,photos,renderings", show_default=True,
              help="--pairs: sets scored apart: aces (HDR stills through ACES 2.0 SDR/HDR output transforms), "
                   "photos (gain-map photos), renderings (formula SDR of HDR references).")
@click.option("--aces-target", default="1000", show_default=True, help="--pairs: ACES HDR nits (500 … 4000; -p3).")
@click.option("--aces-split", type=click.Choice(["test", "validation"]), default="test", show_default=True)
@click.option("--aces-stops", default="0", show_default=True, help="--pairs: exposures, stops from a 0.18 median.")
@click.option("--frames-per-clip", type=click.IntRange(1, 100), default=2, show_default=True, help="--pairs.")
@click.option("--crf", type=click.IntRange(0, 51), default=20, show_default=True, help="--pairs: the SDR's x264 CRF.")
@click.option("--look", "looks", default="bt2408", show_default=True, help="--pairs: comma list of looks (bt2408, aces).")
@click.option("--strength", "strengths", default="1", show_default=True,
              help="--pairs: comma list of expansion strengths (convert's --strength) to score each model at.")
@click.option("--peak-nits", type=click.FloatRange(100, 10000, min_open=True), default=1000.0, show_default=True,
              help="--pairs: the output's peak, as convert's --peak-nits.")
@click.option("--held-out/--all", default=True, show_default=True,
              help="Score only the scenes training holds out (same split as `train`), or every scene.")
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--max-side", type=int, default=512, show_default=True, help="Evaluate at this size.")
@click.option("--quality", type=click.Choice(["fast", "balanced", "full"]), default="full", show_default=True)
@click.option("--device", help="cuda, cpu … (default: CUDA when present).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(**options):
    """Score expansion models against BT.2408 alone: on held-out HDR stills through a virtual
    camera (PU21), or with --pairs on graded SDR/HDR pairs."""
    from .commands import measure

    measure.evaluate(**options)


@main.command("bench")
@click.option("--input", "input_path", type=click.Path(path_type=Path, exists=True),
              help="Clip to use (default: generated).")
@click.option("--size", default="1920x1080", show_default=True, help="WxH of the generated clip.")
@click.option("--frames", type=click.IntRange(4), default=48, show_default=True)
@click.option("--modes", default="null,fast,full", show_default=True, help="Comma list of null, fast, full.")
@click.option("--device", help="cuda, cpu … (default: CUDA when present).")
@click.option("--weights", type=PATH, help="Default: the shipped model.")
@click.option("--batch-size", type=click.IntRange(1, 256))
@click.option("--preset", default="ultrafast", show_default=True, help="x265 preset for all modes.")
@click.option("--compile", "compile_", type=click.Choice(["auto", "on", "off"]),
              help="As for convert (default: $HDRVIDEO_COMPILE, else auto); compiling is paid in the warm-up.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--network", is_flag=True,
              help="Instead: the network alone at --sizes × --dtypes × --variants (TFLOP/s, memory).")
@click.option("--sizes", default="1920x1080,3840x2160", show_default=True, help="--network: comma list of WxH.")
@click.option("--dtypes", default="fp32,fp16,bf16", show_default=True, help="--network: comma list.")
@click.option("--variants", default="eager,channels_last,compile,inference,cudagraphs", show_default=True,
              help="--network: comma list.")
@click.option("--seconds", type=click.FloatRange(0.1), default=3.0, show_default=True, help="--network: per row.")
def bench_command(**options):
    """Measure conversion speed: the null pipeline, fast and full quality, with time per stage.

    With --network: the network alone (a micro-benchmark for GPUs: precisions, channels-last,
    torch.compile, CUDA graphs)."""
    from .commands import measure

    measure.bench(**options)


def run() -> None:  # pragma: no cover - console entry point used by `python -m hdrvideo`
    sys.exit(main())
