"""Time the colour path alone (SDR uint8 RGB → 10-bit BT.2020 Y'CbCr 4:2:0 planes, no network).

python scripts/bench_colour.py --size 1920x1080 --frames 10 [--batch 2] [--transfer pq] [--device cpu] [--compare-malloc]

--compare-malloc runs it twice in fresh processes, with glibc's default malloc thresholds and with
hdrvideo's (hdrvideo/memory.py), and prints both with their ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def measure(a: argparse.Namespace) -> str:
    if os.environ.get("HDRVIDEO_DEFAULT_MALLOC") != "1":
        from hdrvideo.pipeline.memory import keep_freed_memory

        keep_freed_memory()
    else:  # the processor would tune malloc itself: pretend it is done
        import hdrvideo.pipeline.memory as m

        m._DONE = True
    from hdrvideo.pipeline.processor import FrameProcessor

    w, h = map(int, a.size.split("x"))
    frames = np.random.default_rng(0).integers(0, 256, (a.batch, h, w, 3), dtype=np.uint8)
    proc = FrameProcessor(None, a.transfer, device=a.device)
    proc.process(frames)  # warm-up
    times = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(a.frames):
        t = time.perf_counter()
        proc.process(frames)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / a.batch)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    sys_ms = 1000 * (r1.ru_stime - r0.ru_stime) / a.frames
    return (
        f"colour path {w}x{h} {a.transfer} on {a.device} ({torch.get_num_threads()} threads): "
        f"median {1000 * statistics.median(times):.1f} ms/frame, min {1000 * min(times):.1f} ms, "
        f"sys {sys_ms:.1f} ms/frame"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--transfer", default="pq", choices=["pq", "hlg"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=2, help="frames per call (convert's CPU default: 2)")
    ap.add_argument("--compare-malloc", action="store_true")
    a = ap.parse_args()
    if not a.compare_malloc:
        print(measure(a))
        return
    args = [sys.executable, __file__, "--size", a.size, "--frames", str(a.frames), "--transfer", a.transfer,
            "--device", a.device, "--batch", str(a.batch)]  # fmt: skip
    out = {}
    for name, env in (("glibc defaults", "1"), ("hdrvideo tuned", "0")):
        line = subprocess.run(args, env={**os.environ, "HDRVIDEO_DEFAULT_MALLOC": env}, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        out[name] = float(line.split("median ")[1].split(" ms")[0])
        print(f"{name}: {line}")
    print(f"speed-up: {out['glibc defaults'] / out['hdrvideo tuned']:.2f}×")


if __name__ == "__main__":
    main()
