"""Throughput of `hdrvideo batch` on this machine against converting the same files one after another.

python scripts/bench_batch.py [--files 4] [--size 640x360] [--frames 96] [--workers 2] [--ray]

Generates the clips, then in one run: (1) `convert` on each file in turn, in this process, with all
cores; (2) the local batch with --workers; (3) with --ray, the same batch on a local Ray instance.
Prints wall-clock seconds, overall fps and the ratio to (1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdrvideo.commands.batch import run_batch  # noqa: E402
from hdrvideo.commands.bench import make_bench_clip  # noqa: E402
from hdrvideo.pipeline.settings import ConversionSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--preset", default="ultrafast")
    ap.add_argument("--ray", action="store_true")
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="hdrvideo-bench-batch-") as tmp:
        d = Path(tmp)
        clips = [make_bench_clip(d / f"clip{i}.mp4", w, h, a.frames) for i in range(a.files)]
        total = a.files * a.frames
        rows = []
        seq = ConversionSettings(device="cpu", preset=a.preset, threads=cores)
        t = time.perf_counter()
        run_batch(clips, d / "seq", seq, workers=1)  # one worker with every core: one file after another
        rows.append((f"one after another (1 worker, {cores} threads)", time.perf_counter() - t))
        par = ConversionSettings(device="cpu", preset=a.preset, threads=max(1, cores // a.workers))
        t = time.perf_counter()
        rep = run_batch(clips, d / "par", par, workers=a.workers)
        assert not rep.failed
        rows.append((f"local batch ({a.workers} workers, {par.threads} thread(s) each)", time.perf_counter() - t))
        if a.ray:
            import ray

            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
            par.threads = max(1, cores // a.workers)
            t = time.perf_counter()
            rep = run_batch(clips, d / "ray", par, use_ray=True)
            assert not rep.failed
            rows.append((f"Ray, local instance ({cores} CPUs, {par.threads} per task)", time.perf_counter() - t))
            ray.shutdown()
    print(f"{a.files} files of {a.size}, {a.frames} frames each ({total} frames), {cores} cores, x265 {a.preset}\n")
    print("| how | seconds | fps overall | vs one after another |\n| --- | ---: | ---: | ---: |")
    for name, sec in rows:
        print(f"| {name} | {sec:.1f} | {total / sec:.2f} | {rows[0][1] / sec:.2f}× |")


if __name__ == "__main__":
    main()
