"""The terminal side of the long-running commands: progress, signals, summaries and exit codes.

``cli.py`` parses the options and calls one function here per command; each builds what it needs
from the :class:`~hdrvideo.pipeline.settings.ConversionSettings`, runs the engine (``convert``,
``stream``, ``batch``), and turns its errors into one line (:class:`~.ui.UserError`).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from ..pipeline.settings import ConversionSettings, SettingsError
from .ui import UserError, say

__all__ = ["convert", "stream", "batch"]


def _processor(settings: ConversionSettings, quiet: bool, **kw):
    try:
        processor = settings.build_processor(notify=None if quiet else say, **kw)
    except SettingsError as e:
        raise UserError(str(e)) from None
    codec_note = settings.chosen_codec()[1]
    if codec_note and not quiet:
        say(f"note: {codec_note}")
    return processor


def _decoder(settings: ConversionSettings, processor, quiet: bool) -> str:
    """Who decodes (nvdec | software) for ``processor``, its note said once here."""
    try:
        decoder, note = settings.decoding(str(processor.device))
    except SettingsError as e:
        raise UserError(str(e)) from None
    if note and not quiet:
        say(f"note: {note}")
    return decoder


def convert(
    input: Path, output: Path, settings: ConversionSettings, *, preview: Path | None, preview_frame: int | None,
    overwrite: bool, quiet: bool, pipe_format: str = "matroska",
) -> None:  # fmt: skip
    """``hdrvideo convert``: a video (threads, progress bar, summary), or stills (image mode).
    ``-`` as input or output: standard input, or standard output as ``pipe_format``."""
    from ..media.decode import PIPE, InputError, open_input, probe
    from ..media.encode import EncodeError
    from .jobs import HDR_OUTPUTS, IMAGE_INPUTS, ConvertError, check_job, check_job_info

    image_mode = (
        input.suffix.lower() in IMAGE_INPUTS
        or output.suffix.lower() in HDR_OUTPUTS
        or (input.is_dir() and not output.suffix)
    )
    if preview is not None and preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--preview writes a .png or .jpg image, not {preview.suffix or '(none)'!r}")
    if image_mode:
        if not input.exists():
            raise UserError(f"input not found: {input}")
        from .images import ImageError, convert_images, read_sdr_image

        processor = _processor(settings.with_(quality=settings.quality or "full", temporal=False), quiet)
        try:
            written = convert_images(input, output, processor, overwrite=overwrite, force=settings.force)
        except ImageError as e:
            raise UserError(str(e)) from None
        if not quiet:
            click.echo(f"wrote {len(written)} HDR image(s): {written[0]}{' …' if len(written) > 1 else ''}", err=True)
        if preview is not None:  # of the (first) photo: SDR | HDR tone-mapped for SDR | stops added
            from .preview import render_preview, write_preview

            first = input if input.is_file() else next(p for p in sorted(input.iterdir()) if p.stem == written[0].stem)
            try:
                write_preview(preview, render_preview(processor, read_sdr_image(first)))
            except (OSError, ImageError) as e:
                raise UserError(f"cannot write the preview {preview}: {e}") from None
            if not quiet:
                click.echo(f"wrote preview {preview}", err=True)
        return
    opened = None  # standard input is opened once, here, and read by the conversion
    try:  # bad input or output: one line at once, before torch and the model are loaded
        if str(input) == PIPE:
            if preview is not None:
                raise ConvertError("--preview reads the input a second time: not possible from standard input")
            opened = open_input(input)
            info = probe(opened, input)
            check_job_info(input, output, info, overwrite, settings.force)
        else:
            info = check_job(input, output, overwrite, settings.force)
        if str(output) == PIPE and sys.stdout.isatty():
            raise ConvertError("standard output is a terminal: pipe it into a player or file (… - | mpv -)")
    except (ConvertError, InputError) as e:
        if opened is not None:
            opened.close()
        raise UserError(str(e)) from None
    if preview_frame is not None and info.frames and info.frames_exact and preview_frame >= info.frames:
        raise UserError(f"--preview-frame {preview_frame}: {input.name} has {info.frames} frames (0 to {info.frames - 1})")

    from .convert import convert_video

    in_name = "standard input" if str(input) == PIPE else input.name

    processor = _processor(settings, quiet)
    bar = None

    def on_info(info) -> None:
        nonlocal bar
        if quiet:
            return
        from tqdm import tqdm

        bar = tqdm(total=info.frames or None, unit="frame", desc=in_name, dynamic_ncols=True, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    def on_phase(phase: str) -> None:  # "encode": the encoder finishes the frames it still holds
        if bar is not None:
            bar.set_description(f"{in_name}: encoding the last frames")
            bar.reset(total=bar.n or None)

    # SIGTERM behaves like Ctrl-C: stop, remove the temporary file, exit
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        result = convert_video(input, output, processor, settings.encoder_settings(),
                               batch_size=settings.batch_for(processor.device.type), overwrite=overwrite,
                               force=settings.force, progress=progress, on_info=on_info,
                               on_phase=on_phase, pipe_format=pipe_format, opened=opened,
                               decoder=_decoder(settings, processor, quiet))  # fmt: skip
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        say("interrupted; no output written")
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
            say(f"note: {note}")
        for s in result.dropped_streams:
            say(f"warning: {output.suffix} cannot hold {s}; not copied")
        pq = settings.transfer == "pq"
        light = f", MaxCLL {result.max_cll} cd/m², MaxFALL {result.max_fall} cd/m²" if pq else ""
        if pq and str(output) == PIPE:
            light = ", MaxCLL/MaxFALL signalled as unknown (a pipe cannot be patched afterwards)"
        click.echo(
            f"wrote {'standard output' if str(output) == PIPE else result.output}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} fps), "
            f"{result.size_bytes / 1e6:.1f} MB{light}",
            err=True,
        )
    if preview is not None:
        from .preview import preview_from_video, write_preview

        try:
            write_preview(preview, preview_from_video(input, preview_frame, processor))
        except (InputError, OSError) as e:
            raise UserError(f"cannot write the preview {preview}: {e}") from None
        if not quiet:
            click.echo(f"wrote preview {preview}", err=True)
    if result.lost_frames:
        say(f"error: {result.lost_frames} frame(s) of the input could not be decoded; "
            f"{result.output} holds the {result.frames} that could")  # fmt: skip
        sys.exit(2)


def stream(opts, settings: ConversionSettings, *, preview: bool, quiet: bool) -> None:
    """``hdrvideo stream``: live capture → HDR, a status line, the exit report."""
    from .stream import StreamError, run_stream

    processor = _processor(settings, quiet)
    stop = threading.Event()
    on_frame = None
    window = None
    if preview:
        from .preview import PreviewWindow

        try:
            window = PreviewWindow(settings.transfer, settings.peak_nits)
        except RuntimeError as e:
            say(f"warning: {e}; streaming without a preview")
        if window is not None:

            def on_frame(rgb, batch) -> None:
                if not window.show(rgb, batch.signal):
                    stop.set()

    def on_status(r) -> None:
        if not quiet:
            click.echo(f"\r{r.seconds:6.1f} s  captured {r.captured}  processed {r.processed}  dropped {r.dropped}  "
                       f"{r.fps:5.1f} fps", err=True, nl=False)  # fmt: skip

    def on_start(info) -> None:
        if not quiet:
            rate = f" at {float(info.rate):g} fps" if info.rate else ""
            say(f"streaming {opts.input} ({info.width}×{info.height}{rate}) → {opts.output}")

    handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = run_stream(opts, processor, settings.encoder_settings(), stop=stop, on_frame=on_frame,
                            on_status=on_status, on_start=on_start, compile_ahead=_compile_ahead(settings))  # fmt: skip
    except StreamError as e:
        raise UserError(str(e)) from None
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        if window is not None:
            window.close()
    if not quiet:
        click.echo("", err=True)
        light = f"; MaxCLL {report.max_cll}, MaxFALL {report.max_fall} cd/m²" if settings.transfer == "pq" else ""
        say(f"{report.summary()}{light}")
        for note in report.notes:
            say(f"note: {note}")
    if report.failed:  # the output is finalised and valid up to here, but the stream did not end as asked
        say(f"error: {report.stop_reason}")
        sys.exit(1)


def _compile_ahead(settings):
    """For ``stream``: None where nothing is compiled; else a function of (width, height,
    keep_signal) that says whether the kernels of that frame size are cached, and where they
    are not, starts compiling them in a child process for the next stream (→ a note)."""
    import torch

    from ..pipeline import prewarm
    from ..pipeline.compiled import compiler_missing
    from ..pipeline.settings import pick_device

    if settings.compile_resolved == "off" or compiler_missing(torch.device(pick_device(settings.device))):
        return None

    def ahead(width: int, height: int, keep_signal: bool) -> str | None:
        if prewarm.is_warm(settings, width, height, keep_signal):
            return None
        child = prewarm.start(settings, width, height, keep_signal)
        return (f"the compiled kernels for {width}×{height} were not cached: this stream ran the eager code "
                f"(same picture, about 1.4× the time per frame); they are being compiled in the background "
                f"(pid {child.pid}) for the next stream")  # fmt: skip

    return ahead


def batch(
    inputs, out_dir: Path, settings: ConversionSettings, *, ext: str, workers: int | None, retries: int,
    ray_address: str | None, report: Path | None, overwrite: bool, quiet: bool,
) -> None:  # fmt: skip
    """``hdrvideo batch``: many files, a progress bar over files, the report table and JSON."""
    from .batch import BatchError, format_report, run_batch, write_report

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
        rep = run_batch(inputs, out_dir, settings, suffix=ext, workers=workers, retries=retries,
                        ray_address=ray_address, use_ray=ray_address is not None, overwrite=overwrite,
                        on_result=on_result)  # fmt: skip
    except BatchError as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        say("interrupted; finished files are kept, a rerun converts the rest")
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
