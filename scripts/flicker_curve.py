"""Flicker curves: the light hdrvideo adds, frame by frame, with the temporal filter on and off.

    python scripts/flicker_curve.py ../shared/data/sdr-video/bbb_800x640_768kbps_30fps_avc_non_reference_3b.mp4 \\
        --frames 120 --out docs/images/flicker_curve.png

For every frame of the clip (scaled to --long-side), the mean display light (cd/m²) of the pixels
the SDR shows brightest (its top 2% of luma in that frame) after expansion: with ``--temporal on``
(the default: scene-cut aware, causal smoothing of the calibration and gain), with it off (each
frame alone), and BT.2408 alone (no expansion) for the floor. A flat curve where the scene does
not change is what a viewer wants; the off curve shows the per-frame pumping the filter removes.
The figure's caption gives the flicker metric of each (``hdrvideo.training.evaluate.flicker``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _frames(path: Path, count: int, long_side: int) -> np.ndarray:
    import cv2

    from hdrvideo.media.decode import frame_to_rgb, open_input, probe

    c = open_input(path)
    info = probe(c, path)
    out = []
    for f in c.decode(c.streams.video[0]):
        rgb = frame_to_rgb(f, info)
        s = long_side / max(rgb.shape[:2])
        if s < 1:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * s) // 2 * 2, round(rgb.shape[0] * s) // 2 * 2),
                             interpolation=cv2.INTER_AREA)  # fmt: skip
        out.append(rgb)
        if len(out) == count:
            break
    c.close()
    return np.stack(out)


def _curve(processor, frames: np.ndarray, batch: int = 4) -> np.ndarray:
    """Mean display light (cd/m²) of each frame's brightest 2% of SDR pixels, after expansion."""
    import torch

    means = []
    for i in range(0, len(frames), batch):
        chunk = frames[i : i + batch]
        signal = torch.from_numpy(chunk).permute(0, 3, 1, 2).float() / 255
        nits, _ = processor.display_light(signal)  # in display order: the temporal hook sees each batch
        y = nits.max(1).values.numpy()  # (B, H, W): the largest channel, cd/m²
        luma = chunk.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        for k in range(len(chunk)):
            top = luma[k] >= np.quantile(luma[k], 0.98)
            means.append(float(y[k][top].mean()))
    return np.array(means)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", type=Path)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--long-side", type=int, default=640)
    ap.add_argument("--weights", help="default: the shipped model")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hdrvideo.model import load_model
    from hdrvideo.pipeline.processor import FrameProcessor
    from hdrvideo.pipeline.temporal import TemporalConfig, TemporalFilter

    frames = _frames(a.clip, a.frames, a.long_side)
    model = load_model(a.weights)
    curves = {
        "temporal on (default)": _curve(FrameProcessor(model, temporal=TemporalFilter(TemporalConfig())), frames),
        "temporal off": _curve(FrameProcessor(model), frames),
        "BT.2408 alone": _curve(FrameProcessor(None), frames),
    }
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    for (name, c), colour in zip(curves.items(), ("#d62728", "#7f7f7f", "#1f77b4"), strict=True):
        change = np.abs(np.diff(c)) / np.maximum(c[1:], 1e-6) * 100
        p95 = float(np.percentile(change, 95))
        ax.plot(c, color=colour, lw=1.6 if "on" in name else 1.0, label=f"{name}: 95% of frame-to-frame changes ≤ {p95:.2f}%")
    ax.set_xlabel(f"frame of {a.clip.name}")
    ax.set_ylabel("cd/m² (brightest 2% of the SDR)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out)
    for name, c in curves.items():
        d = np.abs(np.diff(c))
        print(f"{name}: mean {c.mean():.0f} cd/m², |Δ| per frame median {np.median(d):.2f}, p95 {np.percentile(d, 95):.2f}, "
              f"max {d.max():.1f} cd/m²")


if __name__ == "__main__":
    main()
