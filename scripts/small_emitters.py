"""Do small light sources keep their light, in fast mode too? (issue 25, item 4)

A night scene in scene light (a dim room, walls lit from one side) with small emitters: LED
strips 2 px thin, in white, red, blue and amber, and small lamps 6 px across, 4 to 8 stops over
the room's grey. It goes through OpenColorIO's ACES 2.0 SDR and HDR (1,000 cd/m², Rec.2020)
output transforms, as a studio makes both masters; the SDR then through the processor as
``convert`` runs it (full, and fast: the network at 480 px on the long side, 4× down at 1080p),
and the light each output gives the emitters' pixels is set against the HDR reference's:
the median ratio of luminance over each emitter's pixels, absolute (as encoded) and aligned
(one exposure factor fitted on the well-exposed pixels, as ``eval --pairs`` fits it).

    python scripts/small_emitters.py [--size 1920x1080] [--model NAME=WEIGHTS[@fast][@aces] ...] [--map maps.png]

Without --model: BT.2408 alone, BT.2446-1 Method C inverse, the shipped model in full quality
and its CPU form in fast mode. Done when (issue 25) every emitter keeps ≥ 0.5 of the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # light_maps.py beside it

from hdrvideo import colour  # noqa: E402
from hdrvideo.model import CPU_FAST_MODEL_NAME, default_weights_path, load_model  # noqa: E402
from hdrvideo.pipeline.processor import FrameProcessor  # noqa: E402
from hdrvideo.training.aces import AcesRenderer  # noqa: E402
from hdrvideo.training.graded import _exposure  # noqa: E402

EMITTERS = {  # name: (RGB scene light, in units of the room's 0.18 grey)
    "white LED strip": (64.0, 64.0, 60.0),
    "red LED strip": (60.0, 4.0, 3.0),
    "blue LED strip": (3.0, 8.0, 70.0),
    "amber LED strip": (80.0, 36.0, 6.0),
    "small lamps": (250.0, 200.0, 120.0),
}


def emitter_scene(h: int, w: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(H, W, 3) float32 scene light, linear BT.709, and each emitter's pixel mask (H, W) bool."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    room = 0.02 + 0.16 * (xx / w) * (0.6 + 0.4 * yy / h)  # walls lit from the right
    scene = np.stack([room * 1.05, room, room * 0.9], -1).astype(np.float32)
    masks: dict[str, np.ndarray] = {}
    t = max(1, round(2 * h / 1080))  # 2 px thin at 1080p
    for i, (name, rgb) in enumerate(EMITTERS.items()):
        m = np.zeros((h, w), bool)
        if name == "small lamps":
            r = max(1, round(3 * h / 1080))
            for k in range(8):
                cy, cx = int(h * (0.15 + 0.1 * k)), int(w * (0.55 + 0.05 * (k % 4)))
                m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            y0 = int(h * (0.12 + 0.18 * i))
            m[y0 : y0 + t, int(w * 0.05) : int(w * 0.45)] = True
        scene[m] = np.asarray(rgb, np.float32) * 0.18
        masks[name] = m
    return scene, masks


def measure(
    procs: dict[str, FrameProcessor], size: tuple[int, int] = (1080, 1920), map_path: Path | None = None
) -> dict[str, dict[str, tuple]]:
    """→ {processor: {emitter: (absolute ratio, aligned ratio)}}, medians over the emitter's pixels;
    ``map_path``: also a PNG of light maps (scripts/light_maps.py's scale), the reference first."""
    h, w = size
    scene, masks = emitter_scene(h, w)
    r = AcesRenderer("1000")
    sdr = torch.from_numpy(r.sdr_signal(scene)).permute(2, 0, 1)[None].float() / 255
    ref = torch.from_numpy(r.hdr_nits(scene)).permute(2, 0, 1)[None].float()
    y_ref = colour.luminance(ref, colour.LUMA_BT2020)[0, 0]
    out: dict[str, dict[str, tuple]] = {}
    tiles = []
    crop = (slice(0, h * 3 // 4), slice(0, w * 3 // 4))
    if map_path is not None:
        from light_maps import label, light_map

        tiles.append(label(light_map(ref)[crop], "HDR reference"))
    for name, proc in procs.items():
        proc.reset()
        nits = proc.display_light(sdr)[0].float()
        if map_path is not None:
            tiles.append(label(light_map(nits)[crop], name))
        y = colour.luminance(nits, colour.LUMA_BT2020)[0, 0]
        fit = float(_exposure(nits, ref, sdr))
        out[name] = {e: (float((y[m] / y_ref[m]).median()), float((fit * y[m] / y_ref[m]).median()))
                     for e, m in masks.items()}  # fmt: skip
    if map_path is not None:
        import cv2

        grid = [np.concatenate(tiles[i : i + 3], axis=1) for i in range(0, len(tiles), 3)]
        width = max(g.shape[1] for g in grid)
        grid = [np.pad(g, ((0, 0), (0, width - g.shape[1]), (0, 0))) for g in grid]
        cv2.imwrite(str(map_path), np.concatenate(grid)[:, :, ::-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--model", action="append", default=[], help="NAME=WEIGHTS[@fast][@aces], repeatable")
    ap.add_argument("--map", type=Path, help="also write a PNG: light maps of the reference and each output (a crop)")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    procs = {"BT.2408 alone": FrameProcessor(None, "pq"), "BT.2446-1 C inverse": FrameProcessor(None, "pq", method="bt2446c")}
    models = a.model or [f"shipped, full={default_weights_path()}",
                         f"shipped CPU form, fast={default_weights_path(CPU_FAST_MODEL_NAME)}@fast"]  # fmt: skip
    for spec in models:
        name, path = spec.split("=", 1)
        path, *flags = path.split("@")  # @fast: the network at 480 px; @aces: in that look
        procs[name] = FrameProcessor(load_model(path, device="cpu"), "pq", net_long_side=480 if "fast" in flags else None,
                                     look="aces" if "aces" in flags else "bt2408")  # fmt: skip
    res = measure(procs, (h, w), a.map)
    print(f"| {w}×{h}, ACES 2.0 pairs | " + " | ".join(EMITTERS) + " |")
    print("| --- |" + " ---: |" * len(EMITTERS))
    for name, r in res.items():
        print(f"| {name} | " + " | ".join(f"{r[e][0]:.2f} ({r[e][1]:.2f})" for e in EMITTERS) + " |")
    print("\nemitter light / the HDR reference's, median over its pixels: absolute (aligned)")


if __name__ == "__main__":
    main()
