"""Temporal stability figures: flicker and pumping with --temporal on / off against the BT.2408
mapping, on generated clips (noise + H.264) and on a real SDR clip; cut settling; trails; and the
cost of the temporal stage per 1080p frame.

    python scripts/bench_temporal.py [--weights W] [--real ../shared/data/sdr-video/sample.mp4]
        [--noise 1,2,3,4] [--crf 26] [--size 192x112] [--kinds static,moving,fade,away] [--quick]
        [--net-long-side 480]

--noise takes a list: each generated clip is measured at each sensor-noise σ (8-bit codes).
--quick skips the cut, trail and cost measurements.

Run from the repository root (it borrows the test clip generator from tests/media.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdrvideo.model import load_model  # noqa: E402
from hdrvideo.pipeline.processor import FrameProcessor  # noqa: E402
from hdrvideo.pipeline.temporal import TemporalConfig, TemporalFilter  # noqa: E402
from hdrvideo.training.evaluate import flicker, render_luma  # noqa: E402
from tests.media import temporal_clip  # noqa: E402


def read_clip(path: Path, frames: int, long_side: int = 320) -> np.ndarray:
    import av
    import cv2

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            s = long_side / max(h, w)
            size = (round(w * s / 2) * 2, round(h * s / 2) * 2)
            out.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
            if len(out) >= frames:
                break
    return np.stack(out)


def figures(model, frames: np.ndarray, lookahead: int, net_long_side: int | None = None) -> dict:
    base = flicker(render_luma(FrameProcessor(None, "pq"), frames))
    off = flicker(render_luma(FrameProcessor(model, "pq", net_long_side=net_long_side), frames))
    hook = TemporalFilter(TemporalConfig(lookahead=lookahead))
    proc = FrameProcessor(model, "pq", net_long_side=net_long_side, temporal=hook)
    on = flicker(render_luma(proc, frames, batch=max(4, lookahead + 1)))
    return {
        "flicker on/off": on[0] / off[0],
        "flicker on/BT.2408": on[0] / base[0],
        "flicker off/BT.2408": off[0] / base[0],
        "pumping on/off": on[1] / off[1],
        "pumping on/BT.2408": on[1] / base[1],
        "pumping off/BT.2408": off[1] / base[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="default: the shipped model")
    ap.add_argument("--real", type=Path, help="a real SDR clip to measure as well")
    ap.add_argument("--lookahead", type=int, default=4)
    ap.add_argument("--noise", default="2", help="comma list of sensor-noise σ, 8-bit codes")
    ap.add_argument("--crf", type=int, default=26, help="H.264 CRF of the generated clips")
    ap.add_argument("--size", default="192x112", help="WxH of the generated clips")
    ap.add_argument("--kinds", default="static,moving,fade,away")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--net-long-side", type=int, help="run the network at this long side (480: fast mode)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_model(args.weights, device="cpu")
    w, h = map(int, args.size.split("x"))
    rows = []
    for sigma in [float(x) for x in args.noise.split(",")]:
        for kind in args.kinds.split(","):
            clip = temporal_clip(kind, w=w, h=h, noise=sigma, crf=args.crf)
            rows.append((f"{kind}, σ {sigma:g}, CRF {args.crf}", figures(model, clip, args.lookahead, args.net_long_side)))
    if args.real is not None:
        rows.append((args.real.name, figures(model, read_clip(args.real, 48), args.lookahead)))
    keys = list(rows[0][1])
    print("| clip | " + " | ".join(keys) + " |")
    print("| --- |" + " ---: |" * len(keys))
    for name, r in rows:
        print(f"| {name} | " + " | ".join(f"{r[k]:.2f}" for k in keys) + " |")
    if args.quick:
        return

    # cut: frame-mean luma of the new scene's first frame vs its settled value
    cut = temporal_clip("cut")
    y = render_luma(FrameProcessor(model, "pq", temporal=TemporalFilter(TemporalConfig(lookahead=0))), cut)
    means = y.mean(axis=(1, 2))
    print(f"\nhard cut: first frame of the new scene {means[12]:.1f}, settled {means[-4:].mean():.1f} (10-bit codes)")

    away = temporal_clip("away")
    on = render_luma(FrameProcessor(model, "pq", temporal=TemporalFilter()), away)
    off = render_luma(FrameProcessor(model, "pq"), away)
    h, w = away.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w]
    old = (xx - 0.6 * w) ** 2 + (yy - 0.7 * h) ** 2 < (0.08 * h) ** 2
    trail = [abs(on[t][old].mean() - off[t][old].mean()) for t in (8, 9, 10)]
    print(
        "trail at the old position, frames +0, +1, +2 after the move (codes vs per-frame): "
        + ", ".join(f"{v:.1f}" for v in trail)
    )

    # cost of the temporal stage per 1080p frame (the hook alone, on this machine's CPU)
    hook = TemporalFilter()
    sig = torch.rand(4, 3, 1080, 1920)
    gain = torch.rand(4, 1, 1080, 1920)
    params = torch.zeros(4, 2)
    conf = torch.ones(4)
    hook.smooth_params(sig, params, conf)
    hook.filter_gain(sig, gain)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        hook.smooth_params(sig, params, conf)
        hook.filter_gain(sig, gain)
        times.append((time.perf_counter() - t) / 4)
    print(f"temporal stage, 1920x1080: {1000 * min(times):.1f} ms/frame ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
