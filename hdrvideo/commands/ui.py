"""What the commands share on the terminal: the one-line user error, and the conversion options
that ``convert``, ``stream`` and ``batch`` take, each declared once (one help text, one default)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..pipeline.looks import LOOKS

__all__ = ["UserError", "conversion_options", "say"]


class UserError(click.ClickException):
    """A problem with the user's input or environment: one clear line, exit status 1."""

    def show(self, file=None) -> None:  # one line, prefixed with the program's name
        click.echo(f"hdrvideo: error: {self.format_message()}", err=True, file=file)


def say(message: str) -> None:
    """A notice on stderr, prefixed with the program's name."""
    click.echo(f"hdrvideo: {message}", err=True)


def conversion_options(live: bool = False):
    """Decorate a command with the conversion options; the command receives one ``settings``
    (:class:`~hdrvideo.pipeline.settings.ConversionSettings`) instead of the separate values.

    live: ``stream``'s variant: hevc/av1 only, one frame per batch by default, no look-ahead (it
    is causal), and neither ``--encoder`` nor ``--force``."""
    codecs = ["hevc", "av1", "hevc_nvenc", "av1_nvenc"] + ([] if live else ["prores", "ffv1"])
    options = [
        click.option("--weights", type=click.Path(path_type=Path),
                     help="ExpandNet weights (.safetensors, or the authors' .pth); default: the shipped model."),
        click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True),
        click.option("--peak-nits", type=float, default=1000.0, show_default=True,
                     help="Peak light of the output, cd/m² (the HDR10 mastering peak; HLG's display peak)."),
        click.option("--strength", type=float, default=1.0, show_default=True,
                     help="How bold the expansion is: the log gain × this × the model's own gain scale "
                          "(0: BT.2408 alone; above 1: more light on the same highlights, and more false light)."),
        click.option("--look", type=click.Choice(LOOKS), default=LOOKS[0], show_default=True,
                     help="Where mid-tones land: bt2408 keeps the SDR grade (SDR white at 203 cd/m²); aces "
                          "gives what ACES 2.0's HDR output transform makes of an ACES SDR master "
                          "(darker shadows, the upper half lifted: docs/convert.md, Looks)."),
        click.option("--method", type=click.Choice(["net", "bt2446a", "bt2446c"]), default="net", show_default=True,
                     help="How light is expanded: the network (net), or a broadcast formula alone, ITU-R "
                          "BT.2446-1 Method A or C inverse tone mapping (no network, eager colour path)."),
        click.option("--codec", type=click.Choice(codecs),
                     help="Default: hevc (x265), or hevc_nvenc on a GPU with NVENC."),
        click.option("--crf", type=int, help="Quality (lower is better): default 18 for hevc, 30 for av1."),
        click.option("--preset", help="Encoder preset (x265: ultrafast … veryslow; SVT-AV1: 0 … 13; stream: "
                                      "ultrafast / 12 and zero latency by default)."),
        click.option("--device", help="cuda, cuda:1, cpu … (default: CUDA when present)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
                     show_default=True, help="The network's number format (auto: fp16 on a GPU; bf16 on a CPU "
                                             "that has it natively, else fp32)."),
        click.option("--quality", type=click.Choice(["fast", "balanced", "full"]),
                     help="Network resolution: long side 480 / 960 / full (default: full on a GPU, fast on a CPU)."),
        click.option("--batch-size", type=click.IntRange(1, 256), default=1 if live else None,
                     show_default=live, help="Frames per batch" + (" (1: the lowest latency)." if live else
                                                                  " (default: 8 on a GPU, 2 on a CPU).")),
        click.option("--temporal", type=click.Choice(["on", "off"]), default="on", show_default=True,
                     help="Temporal stabilisation (scene-cut aware smoothing of calibration and gain)."),
        click.option("--compile", "compile_", type=click.Choice(["auto", "on", "off"]),
                     help="Compile the colour stage and the network (TorchInductor; the first run at a frame "
                          "size compiles, later runs load from ~/.cache/hdrvideo). auto: where a compiler "
                          "works. Default: $HDRVIDEO_COMPILE, else auto."),
    ]  # fmt: skip
    if not live:
        options += [
            click.option("--lookahead", type=click.IntRange(0, 32), default=4, show_default=True,
                         help="Frames of look-ahead for the calibration (within each batch; the batch grows "
                              "to hold it)."),
            click.option("--encoder", type=click.Choice(["pyav", "ffmpeg"]), default="pyav", show_default=True,
                         help="Who encodes: PyAV's bundled FFmpeg, or a system ffmpeg (hevc/av1, constant "
                              "frame rate)."),
            click.option("--force", is_flag=True, help="Convert input that is already HDR."),
            click.option("--decoder", type=click.Choice(["auto", "nvdec", "software"]), default="auto",
                         show_default=True, help="Who decodes the input: NVDEC (NVIDIA's hardware decoder) or "
                                                 "the CPU's; auto: NVDEC when the conversion runs on a GPU that has it."),
            click.option("--encode-jobs", type=click.IntRange(1, 64), default=1, show_default=True,
                         help="Encoders at once on consecutive chunks of the video (hevc/av1, cut at scene cuts, "
                              "1–3 s each), each on cores/N threads: for many cores at 4K, where one x265 "
                              "cannot use them all; costs an IDR frame a chunk and frames held in memory."),
        ]  # fmt: skip
    names = ("weights", "method", "transfer", "peak_nits", "strength", "look", "codec", "crf", "preset", "device", "precision", "quality",
             "batch_size", "temporal", "lookahead", "encoder", "force", "compile_", "decoder", "encode_jobs")  # fmt: skip

    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            from ..pipeline.settings import ConversionSettings, SettingsError

            values = {k: kwargs.pop(k) for k in names if k in kwargs}
            values["temporal"] = values["temporal"] == "on"
            values["compile"] = values.pop("compile_")
            if values["weights"] is not None:
                values["weights"] = str(values["weights"])
            if live:
                values["lookahead"] = 0
            try:
                settings = ConversionSettings(**values).validate()
            except SettingsError as e:
                raise UserError(str(e)) from None
            return f(*args, settings=settings, **kwargs)

        for opt in reversed(options):
            wrapper = opt(wrapper)
        return wrapper

    return decorate
