"""NVDEC against the CPU's decoders on one clip (issue 28, item 2): rate, and the same codes.

    python scripts/nvdec_check.py [--input clip.mp4] [--size 3840x2160] [--frames 120] [--json]

Decodes ``--input`` (or a generated H.264 clip) three ways and reports frames per second for
each: FFmpeg's software decoder (every core); NVDEC with frames downloaded to host memory (what
``convert --decoder nvdec`` does); and NVDEC with frames left on the GPU (PyAV's ``is_hw_owned``,
read through DLPack: the path that would also save the upload, not wired into ``convert`` until
this has run on a GPU). For the downloaded path it checks that every frame reads as the software
decoder's R'G'B' (``frame_to_rgb``); for the on-GPU path it reports the planes' layout and device
and whether the first frame's luma equals the software decoder's. Where NVDEC does not open
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


def nvdec_on_gpu(clip: Path, frames: int, reference_y: np.ndarray) -> dict:
    import torch
    from av.codec.hwaccel import HWAccel

    try:
        c = av.open(str(clip), hwaccel=HWAccel("cuda", allow_software_fallback=False, is_hw_owned=True))
    except (av.error.FFmpegError, OSError) as e:
        return {"path": "nvdec (on the GPU)", "error": str(e).splitlines()[0]}
    row: dict = {"path": "nvdec (on the GPU)"}
    try:
        first = []

        def keep(f):
            if not first:
                planes = [torch.from_dlpack(p) for p in f.planes]
                first.append(f)
                row.update(format=f.format.name, planes=[[*p.shape] for p in planes], device=str(planes[0].device))
                y = planes[0].cpu().numpy()
                h, w = reference_y.shape
                row["same_luma_as_software"] = bool(np.array_equal(y.reshape(y.shape[0], -1)[:h, :w], reference_y))
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
            rows.append(nvdec_on_gpu(clip, a.frames, y))
    if a.json:
        print(json.dumps(rows))
        return
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
