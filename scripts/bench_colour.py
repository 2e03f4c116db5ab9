"""Time the colour path alone (SDR uint8 RGB → 10-bit BT.2020 Y'CbCr 4:2:0 planes, no network).

python scripts/bench_colour.py --size 1920x1080 --frames 10 [--batch 2] [--transfer pq] [--device cpu] [--compare-malloc]
python scripts/bench_colour.py --candidates     # the colour stage's implementations side by side, one run

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


def candidates(a: argparse.Namespace) -> None:
    """The colour stage's implementations, timed one after another in this process: eager in
    bands, the eager functions compiled as they are, the fused stage per pixel with its powers as
    exp·log (the form a GPU runs), the fused stage over 2×2 quads with tables (the CPU's), and
    the ways of computing PQ and BT.1886 alone."""
    from hdrvideo.colour import tables as T
    from hdrvideo.colour.transfer import pq_inverse_eotf
    from hdrvideo.pipeline import colour_stage as st
    from hdrvideo.pipeline.memory import keep_freed_memory
    from hdrvideo.pipeline.processor import FrameProcessor

    keep_freed_memory()
    w, h = map(int, a.size.split("x"))
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8))

    def best(fn, n: int = 8) -> float:
        fn()  # warm-up (and compile)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 1000 * min(times)

    eager = FrameProcessor(None, "pq")
    quads = FrameProcessor(None, "pq", compile=True)
    tables_for, st.tables_for = st.tables_for, lambda device: None  # the GPU's form, made to run here
    per_pixel = FrameProcessor(None, "pq", compile=True)
    st.tables_for = tables_for
    lin = torch.take(eager._decode_lut(), frames.permute(0, 3, 1, 2).long())
    as_is = torch.compile(lambda x: st.planes(x, None, eager.stage)[:2], dynamic=False)
    nits = torch.rand(3, h, w) * 1000
    codes = frames.permute(0, 3, 1, 2).contiguous()
    signal = codes.float() / 255
    pq_t, bt_t = T.pq_table(), T.bt1886_table()
    opts = {"assert_indirect_indexing": False}

    def compiled(fn):
        return torch.compile(fn, dynamic=False, options=opts)

    rows = [
        ("eager, in bands (compile off)", best(lambda: eager.process(frames))),
        ("eager functions compiled as they are (planes only)", best(lambda: as_is(lin))),
        ("fused per pixel, powers as exp·log (a GPU's form)", best(lambda: per_pixel.process(frames))),
        ("fused over 2×2 quads, tables (compile auto on a CPU)", best(lambda: quads.process(frames))),
        ("PQ of 3 channels: pow", best(lambda c=compiled(pq_inverse_eotf): c(nits))),
        ("PQ of 3 channels: exp·log", best(lambda c=compiled(st._pq): c(nits))),
        ("PQ of 3 channels: table by the float's bits", best(lambda c=compiled(T.pq_lookup): c(nits, pq_t))),
        ("BT.1886 of 3 channels: exp·log", best(lambda c=compiled(lambda s: st._pow(s, 2.4)): c(signal))),
        ("BT.1886 of 3 channels: 256-entry table", best(lambda c=compiled(T.lookup): c(bt_t, codes.int()))),
    ]
    print(f"colour stage candidates, {w}x{h}, cpu ({torch.get_num_threads()} threads), best of 8, ms per frame")
    for name, ms in rows:
        print(f"  {name:55s} {ms:7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--transfer", default="pq", choices=["pq", "hlg"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=2, help="frames per call (convert's CPU default: 2)")
    ap.add_argument("--compare-malloc", action="store_true")
    ap.add_argument("--candidates", action="store_true", help="the colour stage's implementations side by side")
    a = ap.parse_args()
    if a.candidates:
        candidates(a)
        return
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
