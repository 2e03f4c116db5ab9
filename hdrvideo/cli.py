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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdrvideo")
def main() -> None:
    """Turn SDR video (8-bit BT.709) into HDR10 (PQ) or HLG video (10-bit BT.2020) with ExpandNet."""


def _pick_device(device: str | None) -> str:
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available here")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_processor(weights, device, transfer, peak_nits, quality, quiet, tile=None):
    """Options → FrameProcessor (shared by convert, stream and bench)."""
    import torch

    from .model import WeightsError, load_model
    from .processor import FrameProcessor

    device = _pick_device(device)
    if quality is None:
        quality = "full" if device.startswith("cuda") else "fast"
        if quality == "fast" and not quiet:
            click.echo("hdrvideo: no GPU: using --quality fast (the network runs on a reduced frame)", err=True)
    try:
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        model = load_model(weights, device=device, dtype=dtype)
    except WeightsError as e:
        raise UserError(str(e)) from None
    long_side = {"fast": 480, "balanced": 960, "full": None}[quality]
    try:
        return FrameProcessor(model, transfer, peak_nits, net_long_side=long_side, tile=tile)
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
@click.option("--preset", help="Encoder preset (x265: ultrafast … veryslow; SVT-AV1: 0 … 13).")
@click.option("--device", help="cuda, cuda:1, cpu … (default: CUDA when present).")
@click.option(
    "--quality",
    type=click.Choice(["fast", "balanced", "full"]),
    help="Network resolution (default: full on GPU, fast on CPU).",
)
@click.option(
    "--batch-size", type=click.IntRange(1, 256), help="Frames per network batch (default: 8 on GPU, 2 on CPU)."
)
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
    preset,
    device,
    quality,
    batch_size,
    force,
    overwrite,
    quiet,
):
    """Convert an SDR video INPUT to an HDR video OUTPUT (.mkv, .mp4 or .mov).

    Image mode: an SDR image (or a folder of them) to linear HDR (.exr or .hdr; a folder of .exr).
    """
    from .convert import ConvertError, convert_video
    from .decode import InputError
    from .encode import EncodeError, EncoderSettings
    from .images import HDR_OUTPUTS, IMAGE_INPUTS, ImageError, convert_images

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
        processor = build_processor(weights, device, transfer, peak_nits, quality or "full", quiet)
        try:
            written = convert_images(input, output, processor, overwrite=overwrite)
        except ImageError as e:
            raise UserError(str(e)) from None
        if not quiet:
            click.echo(f"wrote {len(written)} HDR image(s): {written[0]}{' …' if len(written) > 1 else ''}", err=True)
        return
    processor = build_processor(weights, device, transfer, peak_nits, quality, quiet)
    if batch_size is None:
        batch_size = 8 if processor.device.type == "cuda" else 2
    settings = EncoderSettings(codec=codec, transfer=transfer, peak_nits=peak_nits, crf=crf, preset=preset)
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
    if result.lost_frames:
        click.echo(
            f"hdrvideo: error: {result.lost_frames} frame(s) of the input could not be decoded; "
            f"{result.output} holds the {result.frames} that could",
            err=True,
        )
        sys.exit(2)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(file, as_json):
    """Describe a media FILE: streams, colour tags and HDR10 metadata."""
    import json

    from .decode import InputError
    from .info import describe, format_description

    try:
        d = describe(file)
    except InputError as e:
        raise UserError(str(e)) from None
    click.echo(json.dumps(d, indent=2) if as_json else format_description(d))


def run() -> None:  # pragma: no cover - console entry point used by `python -m hdrvideo`
    sys.exit(main())
