"""False-colour maps of light for graded pairs: see where an expansion puts light, beside the grade.

For each chosen (reference, rendering) pair it writes one PNG row: the SDR input, then a light
map of the HDR grade (the reference) and of each model's output: luminance in stops relative to
SDR white (203 cd/m²), from −4 (dark blue) through 0 (green-yellow: SDR white) to +3 (white =
1,624 cd/m²), on the same scale for all; pixels an output raised ≥ 1.5× above the BT.2408 picture
where the grade is not above SDR white (false highlights) are outlined in magenta.

    python scripts/light_maps.py --out maps/ --rendering saturated --model v2=models/hdrvideo-expandnet-v2/model.safetensors \\
        --model authors=../shared/reference/expandnet/weights.pth
    python scripts/light_maps.py --out maps/ --set aces --set photos --model C=bt2446c \\
        --model v4=models/hdrvideo-expandnet-v4/model.safetensors

``--set``: formula renderings of graded references (default), ``aces`` (the test scenes through
the ACES 2.0 output transforms), ``photos`` (gain-map photos). A model given as ``bt2446a`` or
``bt2446c`` is that formula (``convert --method``); ``WEIGHTS@aces`` runs the weights in that look
(``convert --look``), ``none@aces`` the look alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from hdrvideo import colour
from hdrvideo.model import load_model
from hdrvideo.pipeline.processor import FORMULAS, FrameProcessor
from hdrvideo.training.graded import aces_pairs, display_light, load_references, make_pairs, photo_pairs
from hdrvideo.training.grading import RENDERINGS

LO, HI = -4.0, 3.0
WHITE = colour.SDR_WHITE_NITS


def light_map(nits: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) BT.2020 cd/m² → (H, W, 3) uint8 RGB false colour of log2(Y / 203)."""
    y = colour.luminance(nits, colour.LUMA_BT2020)[0, 0].clamp(min=1e-4)
    s = ((torch.log2(y / WHITE) - LO) / (HI - LO)).clamp(0, 1).numpy()
    return cv2.applyColorMap((s * 255).round().astype(np.uint8), cv2.COLORMAP_TURBO)[:, :, ::-1]


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    for th, c in ((3, (0, 0, 0)), (1, (255, 255, 255))):
        cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, c, th, cv2.LINE_AA)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None, help="reference folders (default: the shared ones)")
    ap.add_argument("--model", action="append", default=[], help="NAME=WEIGHTS[@LOOK], repeatable")
    ap.add_argument("--rendering", action="append", choices=RENDERINGS, help="default: all")
    ap.add_argument("--set", action="append", choices=["renderings", "aces", "photos"], help="default: renderings")
    ap.add_argument("--match", default="", help="only references whose name contains this")
    ap.add_argument("--max-side", type=int, default=480)
    ap.add_argument("--quality", choices=["full", "fast"], default="full",
                    help="fast: the network at a quarter of the picture's long side, as 480 px is of 1080p")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    data = a.data or ["../shared/data/hdr-video-graded", "../shared/data/hdr-video", "../shared/data/hdr-images"]
    sets = a.set or ["renderings"]
    pairs = []
    if "renderings" in sets:
        refs = [r for r in load_references(data, a.max_side) if a.match in r[0]]
        pairs += make_pairs(refs, tuple(a.rendering or RENDERINGS))
    if "aces" in sets:
        pairs += [p for p in aces_pairs(data, a.max_side) if a.match in p.source]
    if "photos" in sets:
        pairs += [p for p in photo_pairs(data, a.max_side) if a.match in p.source]
    base = FrameProcessor(None, "pq", 1000.0)

    def processor(w: str) -> FrameProcessor:
        if w in FORMULAS:
            return FrameProcessor(None, "pq", 1000.0, method=w)
        w, _, look = w.partition("@")
        small = max(16, a.max_side // 4) if a.quality == "fast" else None
        model = None if w == "none" else load_model(w, device="cpu")
        return FrameProcessor(model, "pq", 1000.0, net_long_side=small, look=look or "bt2408")

    procs = {k: processor(w) for k, w in (m.split("=", 1) for m in a.model)}
    a.out.mkdir(parents=True, exist_ok=True)
    legend = np.linspace(0, 255, 256).astype(np.uint8)[None].repeat(12, 0)
    for p in pairs:
        sdr = (p.sdr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        b = display_light(base, p.sdr)
        tiles = [label(sdr, f"SDR ({p.rendering[:24]})"), label(light_map(p.ref), "HDR reference"),
                 label(light_map(b), "BT.2408")]  # fmt: skip
        dim = colour.luminance(p.ref, colour.LUMA_BT2020)[0, 0] <= WHITE
        for k, proc in procs.items():
            out = display_light(proc, p.sdr)
            false = (colour.luminance(out, colour.LUMA_BT2020) >= 1.5 * colour.luminance(b, colour.LUMA_BT2020))[0, 0] & dim
            img = light_map(out)
            edges = cv2.dilate(false.numpy().astype(np.uint8), np.ones((3, 3), np.uint8)) - false.numpy().astype(np.uint8)
            img[edges > 0] = (255, 0, 255)
            tiles.append(label(img, f"{k}: false {100 * float(false.float().mean()):.1f}%"))
        row = np.concatenate(tiles, axis=1)
        bar = cv2.resize(cv2.applyColorMap(legend, cv2.COLORMAP_TURBO)[:, :, ::-1], (row.shape[1], 12))
        name = f"{p.source.replace('#', '_').replace('@', '_')}_{p.rendering.split()[0]}.png"
        cv2.imwrite(str(a.out / name), np.concatenate([row, bar])[:, :, ::-1])
        print(a.out / name)


if __name__ == "__main__":
    main()
