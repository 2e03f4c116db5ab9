"""Hardware decoding (NVIDIA NVDEC through PyAV's ``hwaccel``), and the software decoder otherwise.

``--decoder`` takes ``auto`` (the default: NVDEC where the conversion runs on a CUDA device and a
decoder opens on it, FFmpeg's software decoders otherwise), ``nvdec`` (NVDEC or one line and exit
1, before any work) or ``software``.

NVDEC hands its frames down to host memory as semi-planar 4:2:0 (``nv12``; ``p010le`` for
10-bit), which :func:`~.decode.to_planar` turns into the planar layout the software decoders give
(``yuv420p``; ``yuv420p10le``) by moving bytes, no arithmetic. Decoding is bit-exact in both
(H.264, HEVC, AV1 and VP9 decoders are conformant), so the output is the same file whichever
decoded: a test converts a clip through the NVDEC frame layout and compares it to the software
path code for code. Streams NVDEC cannot take (MPEG-4 Part 2, ProRes …) decode in software
(FFmpeg's ``allow_software_fallback``).

Frames that stay on the GPU (PyAV's ``is_hw_owned`` with DLPack capsules: PyAV refuses
``torch.from_dlpack`` for hardware frames) would save the upload as well;
``scripts/gpu_check.sh nvdec`` measures both on a lent GPU before that path is wired in.
"""

from __future__ import annotations

from pathlib import Path

import av

from .decode import InputError, open_input, short_error

__all__ = ["DECODERS", "nvdec_problem", "chosen_decoder", "open_decoding"]

DECODERS = ("auto", "nvdec", "software")
_NVDEC_PROBLEMS: dict[int, str | None] = {}


def _cuda_index(device: str) -> int:
    """``cuda`` → 0, ``cuda:1`` → 1."""
    return int(device.split(":", 1)[1]) if ":" in device else 0


def nvdec_problem(device: str = "cuda") -> str | None:
    """Why NVDEC cannot decode on ``device`` (a torch device string), or None where it can: an
    H.264 decoder with a CUDA device context is created once per process and device (no NVIDIA
    driver, no CUDA in this PyAV's FFmpeg, not a CUDA device)."""
    if not device.startswith("cuda"):
        return f"the conversion runs on {device}, not on an NVIDIA GPU"
    index = _cuda_index(device)
    if index not in _NVDEC_PROBLEMS:
        from av.codec.hwaccel import HWAccel, hwdevices_available

        if "cuda" not in hwdevices_available():
            _NVDEC_PROBLEMS[index] = "this PyAV's FFmpeg has no CUDA hardware device"
        else:
            try:
                hw = HWAccel("cuda", device=str(index), allow_software_fallback=False)
                av.CodecContext.create("h264", "r", hwaccel=hw)
                _NVDEC_PROBLEMS[index] = None
            except (av.error.FFmpegError, OSError, ValueError) as e:
                _NVDEC_PROBLEMS[index] = short_error(e)
    return _NVDEC_PROBLEMS[index]


def chosen_decoder(decoder: str, device: str) -> tuple[str, str | None]:
    """``--decoder`` and the processor's device → (``nvdec`` | ``software``, a note or None).

    ``auto``: NVDEC where the device is a GPU on which it opens (a note says so), else software
    (a note only where the device is a GPU: why NVDEC did not open). ``nvdec`` where none opens
    raises :class:`InputError` with one line."""
    if decoder not in DECODERS:
        raise InputError(f"--decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    if decoder == "software":
        return "software", None
    problem = nvdec_problem(device)
    if problem is None:
        return "nvdec", "NVDEC decodes (--decoder software for the CPU's decoders)"
    if decoder == "nvdec":
        raise InputError(f"--decoder nvdec: no NVDEC opens here ({problem}); use --decoder software")
    return "software", (f"no NVDEC on {device} ({problem}): the CPU decodes" if device.startswith("cuda") else None)


def open_decoding(path: str | Path, decoder: str, device: str = "cuda") -> av.container.InputContainer:
    """Open ``path`` for reading, its video decoded by ``decoder`` (``nvdec`` | ``software``, as
    :func:`chosen_decoder` resolves it): NVDEC with FFmpeg's software fallback for codecs it
    lacks. If the hardware open fails (a device lost since the probe, or a path that is no media
    file), the software open is tried instead, which raises :class:`InputError` with its one line
    where the file itself is the problem."""
    if decoder != "nvdec" or str(path) == "-":  # standard input: opened once, never retried
        return open_input(path)
    from av.codec.hwaccel import HWAccel

    try:
        return av.open(str(path), metadata_errors="ignore",
                       hwaccel=HWAccel("cuda", device=str(_cuda_index(device)), allow_software_fallback=True))  # fmt: skip
    except (av.error.FFmpegError, OSError):
        return open_input(path)

