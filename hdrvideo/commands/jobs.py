"""Conversion jobs, checked before any model loads (this module imports no torch): one job's input
and output checks and its temporary name; what a batch converts: inputs (files, folders,
manifests) → jobs (input → output), and which outputs are already complete (so that a rerun
converts only what is missing); and their results (frames lost, notes on the input, per file,
and the batch's report)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from ..media.decode import InputError, VideoInfo, open_input, probe
from ..media.encode import CONTAINERS, EncodeError, EncoderSettings
from ..media.info import made_by
from ..pipeline.provenance import SETTING_WORDS, setting_items

__all__ = [
    "IMAGE_INPUTS",
    "HDR_OUTPUTS",
    "VIEWABLE_OUTPUTS",
    "ConvertError",
    "check_job",
    "check_job_info",
    "temporary_path",
    "BatchError",
    "Job",
    "VIDEO_SUFFIXES",
    "MANIFEST_SUFFIXES",
    "collect_inputs",
    "plan_jobs",
    "is_complete",
    "FileResult",
    "BatchReport",
    "format_report",
    "write_report",
    "lost_frames",
    "input_notes",
    "one_line_error",
]


IMAGE_INPUTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".avif"}
VIEWABLE_OUTPUTS = {".jpg", ".jpeg", ".avif"}
"""HDR photos for viewers: Ultra HDR JPEG (gain map) and 10-bit AVIF."""
HDR_OUTPUTS = {".exr", ".hdr"} | VIEWABLE_OUTPUTS
"""Image mode (``convert``): SDR stills in, HDR stills out (linear for compositors, or viewable)."""


class ConvertError(Exception):
    """Conversion failed: one clear line for the user."""


def temporary_path(output: Path) -> Path:
    """The name the output is written under until it is complete (same folder, same suffix)."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def _check_output(inp: Path, out: Path, overwrite: bool) -> None:
    if str(out) == "-":  # standard output: its container is --format's
        return
    if out.is_dir():
        raise ConvertError(f"output is a folder: {out} (name the file, e.g. {out / (inp.stem + '_hdr.mkv')})")
    if out.suffix.lower() not in CONTAINERS:
        raise ConvertError(f"unknown output container {out.suffix or '(none)'!r}; use {', '.join(CONTAINERS)}")
    if str(inp) != "-" and out.resolve() == inp.resolve():
        raise ConvertError("output would overwrite the input; choose another name")
    if out.exists() and not overwrite:
        raise ConvertError(f"output exists: {out} (use -y to overwrite)")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConvertError(f"output folder {problem}: {folder}")
    if not os.access(folder, os.W_OK):
        raise ConvertError(f"output folder is not writable: {folder}")


def check_job(inp: str | Path, out: str | Path, overwrite: bool = False, force: bool = False) -> VideoInfo:
    """What can be known about a conversion before any model is loaded: the input opens and has a
    video stream, is SDR (unless ``force``), and the output may be written. → the input's
    :class:`VideoInfo`; raises ``InputError`` or :class:`ConvertError` (one line each)."""
    inp, out = Path(inp), Path(out)
    container = open_input(inp)
    try:
        info = probe(container, inp)
    finally:
        container.close()
    check_job_info(inp, out, info, overwrite, force)
    return info


def check_job_info(inp: Path, out: Path, info: VideoInfo, overwrite: bool, force: bool) -> None:
    _check_output(inp, out, overwrite)
    if info.is_hdr and not force:
        kind = "PQ" if info.transfer == 16 else "HLG"
        raise ConvertError(f"input is already HDR ({kind} transfer); use --force to convert it anyway")


class BatchError(Exception):
    """The batch cannot start: one clear line for the user."""


VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".wmv",
    ".flv", ".y4m", ".mxf", ".3gp", ".ogv",
}  # fmt: skip
MANIFEST_SUFFIXES = {".txt", ".list", ".lst", ".manifest"}


@dataclass
class Job:
    input: str
    output: str


# -- what to convert -----------------------------------------------------------------------------
def _read_manifest(path: Path) -> list[Path]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def collect_inputs(
    inputs: Iterable[str | Path], skip: Path | None = None
) -> list[tuple[Path, Path | None]]:
    """Files, folders (searched recursively for video files) and manifests (one path per line,
    ``#`` comments, relative to the manifest) → [(input, folder it was found under or None)],
    in order, without repeats. A path that does not exist is kept: it fails as that file's error.
    ``skip``: a folder whose files a folder search never takes (the batch's own output folder,
    when it lies inside an input folder: a second run must not convert its own outputs)."""
    skip_key = skip.resolve() if skip is not None else None
    seen: set[Path] = set()
    out: list[tuple[Path, Path | None]] = []

    def add(p: Path, root: Path | None) -> None:
        key = p.resolve() if p.exists() else p.absolute()
        if key not in seen:
            seen.add(key)
            out.append((p, root))

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES and not f.name.startswith("."):
                    if skip_key is not None and f.resolve().is_relative_to(skip_key):
                        continue
                    add(f, p)
        elif p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file():
            for f in _read_manifest(p):
                add(f, None)
        else:
            add(p, None)
    return out


def plan_jobs(inputs: list[tuple[Path, Path | None]], out_dir: Path, suffix: str = ".mkv") -> list[Job]:
    """Output paths: ``OUT/<path under its folder>`` for files found in a folder, ``OUT/<name>``
    otherwise, with the container's suffix. Two inputs that would share an output are refused."""
    jobs, owners = [], {}
    for inp, root in inputs:
        rel = inp.relative_to(root) if root is not None else Path(inp.name)
        out = out_dir / rel.with_suffix(suffix)
        key = str(out.absolute())
        if key in owners:
            raise BatchError(f"{owners[key]} and {inp} would both be written to {out}; rename one or use folders")
        owners[key] = inp
        jobs.append(Job(str(inp), str(out)))
    return jobs


def _duration(path: Path) -> float | None:
    with av.open(str(path), metadata_errors="ignore") as c:
        s = c.streams.video[0]
        if s.duration and s.time_base:
            return float(s.duration * s.time_base)
        return c.duration / 1e6 if c.duration else None


def _end_time(path: Path) -> float | None:
    """Where the video stream of a file really ends (seconds): the end of its last packet, found by
    seeking near the end the header claims and reading on (a file cut short has no packets there)."""
    with av.open(str(path), metadata_errors="ignore") as c:
        s = c.streams.video[0]
        claimed = _duration(path)
        if claimed and s.time_base:
            try:
                c.seek(int(max(0.0, claimed - 2.0) / s.time_base), stream=s, backward=True)
            except av.error.FFmpegError:
                c.seek(0)
        end = None
        for packet in c.demux(s):
            if packet.pts is not None and packet.time_base is not None:
                t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                end = t if end is None else max(end, t)
        return end


def is_complete(job: Job) -> bool:
    """The output exists, is HDR-tagged video, and its last frame ends where the input's does
    (±2 frames or 2 %), read from the packets at its end, not only from its header.

    ``convert`` only ever renames a finished file into place, so a present output is normally
    complete; the check also catches outputs left by other tools or cut short by a full disk."""
    out = Path(job.output)
    if not out.is_file():
        return False
    try:
        with av.open(str(out), metadata_errors="ignore") as c:
            if not c.streams.video or int(c.streams.video[0].codec_context.color_trc or 0) not in (16, 18):
                return False
        d_out, d_in = _end_time(out), _end_time(Path(job.input))
    except (av.error.FFmpegError, OSError, IndexError):
        return False
    if d_out is None:
        return False
    if d_in is None:
        return True
    return d_out >= d_in - max(0.1, 0.02 * d_in)


def made_otherwise(job: Job, settings) -> str:
    """Where a complete output says it was made (its made-by tag, :mod:`hdrvideo.pipeline.provenance`)
    with another method, look, strength, transfer or peak than ``settings`` (a
    :class:`~hdrvideo.pipeline.settings.ConversionSettings`): a note saying so, for a batch that
    keeps it; "" where they agree or the output does not say (MP4, MOV, other tools' files)."""
    try:
        with av.open(str(job.output), metadata_errors="ignore") as c:
            line = made_by(c.metadata)
    except (av.error.FFmpegError, OSError):
        return ""
    if not line:
        return ""
    have = line.split(", ")
    method = None if settings.method == "net" else settings.method
    want = setting_items(method, settings.look, settings.strength, settings.transfer, settings.peak_nits)
    if set(want) <= set(have):
        return ""
    theirs = [h for h in have if h.split(" ", 1)[0] in SETTING_WORDS]
    return f"kept, made with {', '.join(theirs)} (this run: {', '.join(want)}; -y converts it again)"


# -- results ----------------------------------------------------------------------------------------
@dataclass
class FileResult:
    """One file's outcome. status: ok | skipped | failed."""

    input: str
    output: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    attempts: int = 0
    error: str = ""
    max_cll: int = 0
    max_fall: int = 0
    worker: str = ""
    note: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchReport:
    results: list[FileResult]
    seconds: float
    workers: int
    backend: str
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r is not None and r.status == status for r in self.results)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results if r is not None and r.status == "ok")

    @property
    def fps(self) -> float:
        """Frames converted per second of the whole batch's wall-clock time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        return self.count("failed") > 0


def format_report(report: BatchReport) -> str:
    """A readable table, one row per file, and the totals."""
    rows = [
        "| file | status | frames | seconds | fps | attempts | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report.results:
        note = r.error or r.note or (f"MaxCLL {r.max_cll}, MaxFALL {r.max_fall}" if r.status == "ok" and r.max_cll else "")
        rows.append(f"| {r.input} | {r.status} | {r.frames} | {r.seconds:.1f} | {r.fps:.2f} | {r.attempts} | {note} |")
    rows.append(
        f"\n{len(report.results)} files: {report.count('ok')} converted, {report.count('skipped')} skipped "
        f"(complete), {report.count('failed')} failed; {report.frames} frames in {report.seconds:.1f} s "
        f"({report.fps:.2f} fps overall, {report.workers} {report.backend} workers)"
    )
    return "\n".join(rows)


def write_report(report: BatchReport, path: Path) -> None:
    """The report as JSON, written atomically."""
    data = {
        "backend": report.backend,
        "workers": report.workers,
        "seconds": round(report.seconds, 3),
        "frames": report.frames,
        "fps": round(report.fps, 3),
        "ok": report.count("ok"),
        "skipped": report.count("skipped"),
        "failed": report.count("failed"),
        "files": [{**asdict(r), "fps": round(r.fps, 3)} for r in report.results],
    }
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def lost_frames(info: VideoInfo, state: dict[str, int]) -> tuple[int, int]:
    """(frames expected, frames lost): against an exact count, every frame short; against an
    estimate (no count in the header, or an edit list), more than a frame and 1% short."""
    expected = info.frames
    if expected and info.frames_exact:
        return expected, max(state["lost"], expected - state["written"])
    if not expected:
        expected = round(info.duration_s * info.rate) if info.duration_s and info.rate else 0
    short = expected - state["written"]
    return expected, max(state["lost"], short if short > 1 + 0.01 * expected else 0)


def input_notes(info: VideoInfo, settings: EncoderSettings, out: Path, interlaced: bool) -> list[str]:
    """What the user should know about the input and the output's signalling."""
    notes = []
    if info.width % 2 or info.height % 2:
        w, h = info.padded_size
        notes.append(f"odd frame size {info.width}×{info.height}: padded to {w}×{h} by repeating the edge")
    if info.matrix_guessed:
        notes.append(f"input has no colour matrix tag: taken as {info.matrix.upper()}")
    if info.has_alpha:
        notes.append("input has an alpha channel: dropped (HDR10 and HLG video carry none); the picture is "
                     "converted as it stands, not composited over a background")  # fmt: skip
    if settings.transfer == "pq" and settings.codec not in ("hevc", "av1") and CONTAINERS[out.suffix.lower()] != "mov":
        notes.append(f"{settings.codec} in {out.suffix}: the file carries the PQ and BT.2020 tags but no mastering "
                     "display or MaxCLL/MaxFALL metadata (HEVC and AV1 carry them in-band, .mov in its sample "
                     "description); MaxCLL/MaxFALL above are measured, not stored")  # fmt: skip
    if interlaced:
        notes.append("input is interlaced: its frames were converted as progressive (fields woven); "
                     "deinterlace it first for a clean picture, e.g. ffmpeg -vf bwdif")  # fmt: skip
    return notes


def one_line_error(e: BaseException) -> Exception:
    """What a conversion's failure says to the user: one :class:`ConvertError` line (our own
    errors as they are; a broken pipe, a write failure, FFmpeg's error: their first line); the
    traceback too where ``HDRVIDEO_DEBUG`` is set, for bug reports."""
    if os.environ.get("HDRVIDEO_DEBUG"):  # the full story, for bug reports
        import traceback

        traceback.print_exception(e)
    if isinstance(e, (ConvertError, InputError, EncodeError)):
        return e
    if isinstance(e, OSError):
        if e.errno == errno.EPIPE:
            return ConvertError("the output pipe was closed by its reader (broken pipe); output incomplete")
        return ConvertError(f"cannot write output: {e.strerror or e}")
    if isinstance(e, av.error.FFmpegError):
        return ConvertError(f"media error: {str(e).splitlines()[0]}")
    return ConvertError(f"{type(e).__name__}: {e}")
