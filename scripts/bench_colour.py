"""Time the colour path alone (SDR uint8 RGB → 10-bit BT.2020 Y'CbCr 4:2:0 planes, no network).

python scripts/bench_colour.py --size 1920x1080 --frames 10 [--transfer pq] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from hdrvideo.processor import FrameProcessor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--transfer", default="pq", choices=["pq", "hlg"])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    frames = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    proc = FrameProcessor(None, a.transfer, device=a.device)
    proc.process(frames)  # warm-up
    times = []
    for _ in range(a.frames):
        t = time.perf_counter()
        proc.process(frames)
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    print(
        f"colour path {w}x{h} {a.transfer} on {a.device} ({torch.get_num_threads()} threads): "
        f"median {1000 * statistics.median(times):.1f} ms/frame, min {1000 * min(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
