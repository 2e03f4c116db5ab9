"""NVDEC against the CPU's decoders on one clip (issue 28, item 2): rate, and the same codes.

    python scripts/nvdec_check.py [--input clip.mp4] [--size 3840x2160] [--frames 120] [--json]

Decodes ``--input`` (or a generated H.264 clip) three ways and reports frames per second for
each: FFmpeg's software decoder (every core); NVDEC with frames downloaded to host memory (what
``convert --decoder nvdec`` does); and NVDEC with frames left on the GPU (PyAV's ``is_hw_owned``,
read through DLPack capsules, in FFmpeg's own CUDA context and in PyTorch's: the path that would
also save the upload, not wired into ``convert`` until this has run on a GPU). For the downloaded
path it checks that every frame reads as the software decoder's R'G'B' (``frame_to_rgb``); for
the on-GPU path it reports the planes' layout and device and whether the first frame's luma
equals the software decoder's. Where NVDEC does not open
(no NVIDIA GPU), the hardware rows say why and the script still exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdrvideo.commands.bench import make_bench_clip  # noqa: E402
from hdrvideo.media.decode import frame_to_rgb, open_input, probe  # noqa: E402
from hdrvideo.media.hw_decode import nvdec_problem, open_decoding  # noqa: E402


def _rate(container, limit: int, keep) -> tuple[float, int, list]:
    """Decode up to ``limit`` frames; → fps, frames, and ``keep(frame)`` of each."""
    kept, n = [], 0
    t = time.perf_counter()
    for f in container.decode(container.streams.video[0]):
        kept.append(keep(f))
        n += 1
        if n == limit:
            break
    return n / (time.perf_counter() - t), n, kept


def software(clip: Path, frames: int) -> tuple[dict, list, object]:
    c = open_input(clip)
    info = probe(c, clip)
    c.streams.video[0].thread_type = "AUTO"
    fps, n, rgb = _rate(c, frames, lambda f: frame_to_rgb(f, info))
    c.close()
    return {"path": "software", "fps": round(fps, 1), "frames": n}, rgb, info


def nvdec_downloaded(clip: Path, frames: int, reference: list, info) -> dict:
    c = open_decoding(clip, "nvdec", "cuda")
    fmt = []
    fps, n, rgb = _rate(c, frames, lambda f: (fmt.append(f.format.name), frame_to_rgb(f, info))[1])
    c.close()
    same = all(np.array_equal(a, b) for a, b in zip(rgb, reference, strict=False)) and n == len(reference)
    return {"path": "nvdec (downloaded)", "fps": round(fps, 1), "frames": n, "format": fmt[0] if fmt else None,
            "same_rgb_as_software": same}  # fmt: skip


def gpu_planes(frame) -> list:
    """A decoded frame's planes as tensors on their device, without a copy: through DLPack
    capsules (``plane.__dlpack__()``). ``torch.from_dlpack(plane)`` would hand PyAV the current
    CUDA stream, which PyAV refuses for hardware frames ("CUDA stream synchronization is not
    supported"); a capsule carries no stream. NV12: Y (H, W), CbCr (H/2, W/2, 2), strided by the
    line size."""
    from torch.utils.dlpack import from_dlpack

    return [from_dlpack(p.__dlpack__()) for p in frame.planes]


def nvdec_on_gpu(clip: Path, frames: int, reference_y: np.ndarray, options: dict[str, str]) -> dict:
    """NVDEC's frames left on the GPU (``is_hw_owned``), each frame's planes cloned as ``convert``
    would keep them (the decoder reuses its surfaces). ``options`` go to FFmpeg's CUDA device
    (``primary_ctx``: decode in the CUDA context PyTorch uses, so its default stream orders after
    the decoder's copies)."""
    import torch
    from av.codec.hwaccel import HWAccel

    row: dict = {"path": f"nvdec (on the GPU{', ' + ', '.join(f'{k}={v}' for k, v in options.items()) if options else ''})"}
    try:
        hw = HWAccel("cuda", allow_software_fallback=False, is_hw_owned=True, options=options or None)
        c = av.open(str(clip), hwaccel=hw)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return {**row, "error": str(e).splitlines()[0]}
    try:
        def keep(f):
            planes = [p.clone() for p in gpu_planes(f)]
            if "format" not in row:
                torch.cuda.synchronize()
                y = planes[0].cpu().numpy()
                h, w = reference_y.shape
                row.update(format=f.format.name, planes=[[*p.shape] for p in planes], device=str(planes[0].device),
                           same_luma_as_software=bool(np.array_equal(y[:h, :w], reference_y)))  # fmt: skip
            return None

        fps, n, _ = _rate(c, frames, keep)
        torch.cuda.synchronize()
        row.update(fps=round(fps, 1), frames=n)
    except Exception as e:  # noqa: BLE001 - a probe: report what failed, never stop the others
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        c.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path)
    ap.add_argument("--size", default="3840x2160", help="WxH of the generated clip (without --input)")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdrvideo-nvdec-") as tmp:
        w, h = (int(v) for v in a.size.split("x"))
        clip = a.input or make_bench_clip(Path(tmp) / "clip.mp4", w, h, a.frames)
        row, reference, info = software(clip, a.frames)
        rows = [row]
        problem = nvdec_problem("cuda")
        if problem is not None:
            rows.append({"path": "nvdec", "error": f"no NVDEC here ({problem})"})
        else:
            rows.append(nvdec_downloaded(clip, a.frames, reference, info))
            with av.open(str(clip)) as c:  # the software decoder's first luma plane, for the on-GPU path
                f = next(c.decode(video=0))
                y = np.frombuffer(f.planes[0], np.uint8).reshape(f.planes[0].height, -1)[:, : f.width].copy()
            rows += [nvdec_on_gpu(clip, a.frames, y, {}), nvdec_on_gpu(clip, a.frames, y, {"primary_ctx": "1"})]
    if a.json:
        print(json.dumps(rows))
        return
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
