"""Which software encoder keeps up where there is no NVENC (issue 28, item 4): the 10-bit PQ planes
``convert`` makes, encoded by each candidate through the same writer, timed, sized and scored.

    python scripts/encoder_race.py [--input clip.mp4] [--size 3840x2160] [--frames 48]
        [--candidate hevc:ultrafast:22 --candidate av1:12:34 ...] [--json]

The planes come from the BT.2408 processor (no network: the encoder's input is what matters) on
``--input`` or on ``hdrvideo bench``'s generated clip, held in memory, so only the encoder is
timed (``HDRWriter.write_planes`` to ``close``, x265 / SVT-AV1 on every core). Each candidate is
``codec:preset:crf``, or ``codec:preset:crf:xN`` for N encoders at once on consecutive chunks
(``--encode-jobs N``; here chunks of frames / N, the steady state of a long video in which every
encoder has a chunk, so the bytes include N IDR frames). For each: frames per second, file size, and PSNR of the decoded luma
against the planes it was given (10-bit codes, peak 1023), so speed is read beside size and
quality: a faster encoder that needs twice the bytes for the same PSNR is no win.
Default candidates: x265 ultrafast (alone, 2 and 4 at once) and superfast at CRF 20, SVT-AV1
presets 10, 12 (alone, 2 at once) and 13 at CRF 32 (about x265 CRF 20's size on the bench clip; adjust for real content).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdrvideo.commands.bench import make_bench_clip  # noqa: E402
from hdrvideo.media.decode import read_rgb_frames  # noqa: E402
from hdrvideo.media.encode import EncoderSettings, HDRWriter  # noqa: E402
from hdrvideo.pipeline.processor import FrameProcessor  # noqa: E402

DEFAULT = ("hevc:ultrafast:20", "hevc:ultrafast:20:x2", "hevc:ultrafast:20:x4", "hevc:superfast:20", "av1:10:32",
           "av1:12:32", "av1:12:32:x2", "av1:13:32")  # fmt: skip


def hdr_planes(clip: Path, frames: int) -> tuple[list, float]:
    """The first ``frames`` of ``clip`` as the 10-bit PQ planes convert hands the encoder, and its rate."""
    rgb, info = read_rgb_frames(clip, frames)
    proc = FrameProcessor(None, "pq")
    planes = []
    for i in range(0, len(rgb), 4):
        b = proc.process(np.stack(rgb[i : i + 4]))
        planes += [(b.y[k], b.uv[k], b.max_cll[k], b.max_fall[k]) for k in range(len(b))]
    return planes, float(info.rate or 25)


def race(planes: list, rate: float, candidate: str, out: Path) -> dict:
    """Encode ``planes`` with ``codec:preset:crf[:xN]``; → fps, bytes, luma PSNR (dB)."""
    codec, preset, crf, *more = candidate.split(":")
    jobs = int(more[0].lstrip("x")) if more else 1
    chunk = -(-len(planes) // jobs)
    h, w = planes[0][0].shape
    fps = Fraction(rate).limit_denominator(1001)
    settings = EncoderSettings(codec=codec, preset=preset, crf=int(crf), jobs=jobs, chunk_frames=(chunk, chunk))
    writer = HDRWriter(out, w, h, 1 / fps, fps, settings)
    t = time.perf_counter()
    for n, (y, uv, cll, fall) in enumerate(planes):
        writer.write_planes(y, uv, n, cll, fall)
    writer.close()
    seconds = time.perf_counter() - t
    mse = []
    with av.open(str(out)) as c:
        for f, (y, _, _, _) in zip(c.decode(video=0), planes, strict=False):
            got = np.frombuffer(f.planes[0], np.uint16).reshape(f.planes[0].height, -1)[:h, :w]
            mse.append(np.mean((got.astype(np.float64) - y) ** 2))
    psnr = 10 * np.log10(1023**2 / max(float(np.mean(mse)), 1e-9))
    return {"candidate": candidate, "fps": round(len(planes) / seconds, 2), "bytes": out.stat().st_size,
            "psnr_y": round(psnr, 2), "frames": len(mse)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path)
    ap.add_argument("--size", default="3840x2160", help="WxH of the generated clip (without --input)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--candidate", action="append", help="codec:preset:crf; repeatable")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdrvideo-race-") as tmp:
        tmpd = Path(tmp)
        w, h = (int(v) for v in a.size.split("x"))
        clip = a.input or make_bench_clip(tmpd / "clip.mp4", w, h, a.frames)
        planes, rate = hdr_planes(clip, a.frames)
        rows = [race(planes, rate, c, tmpd / f"out{i}.mkv") for i, c in enumerate(a.candidate or DEFAULT)]
    if a.json:
        print(json.dumps(rows))
        return
    h, w = planes[0][0].shape
    print(f"{w}×{h}, {len(planes)} frames, 10-bit PQ planes from the BT.2408 processor")
    print("| codec:preset:crf | fps | MB | PSNR Y dB |\n| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['candidate']} | {r['fps']:.2f} | {r['bytes'] / 1e6:.2f} | {r['psnr_y']:.2f} |")


if __name__ == "__main__":
    main()
