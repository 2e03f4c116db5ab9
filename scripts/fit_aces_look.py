"""Fit the ``--look aces`` curve: how ACES 2.0 places, for each HDR peak, the light an ACES SDR
master shows (the constants of :data:`hdrvideo.pipeline.looks.ACES_FITS`).

    python scripts/fit_aces_look.py [--images ../shared/data/hdr-images] [--side 128]

For each HDR output transform (500, 1000, 2000, 4000 nits, Rec.2020) it renders the *training*
scenes (:func:`hdrvideo.training.aces.scene_split`; never the validation or test ones) at
exposures −1, 0, +1 stops through the ACES 2.0 SDR and HDR output transforms, and fits, on every
pixel whose SDR has no channel at 0.97 or above (clipped light is the network's job),

    log(Y_hdr / 203) ≈ log s + log curve(Y_sdr; ip, c)

where Y_sdr is the SDR's BT.1886 linear luminance (1 = SDR white), Y_hdr the HDR reference's
BT.2020 luminance in cd/m² and ``curve`` BT.2446-1 Method C's inverse shape
(:func:`hdrvideo.colour.bt2446.inverse_curve`): a grid over (ip, c), s in closed form (the mean
log residual). It prints each peak's (ip, c, s), the fit's log RMSE on the training and on the
validation scenes, and BT.2408's (s = 1, no curve) for comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdrvideo import colour  # noqa: E402
from hdrvideo.colour.bt2446 import inverse_curve  # noqa: E402
from hdrvideo.media.hdrio import find_media  # noqa: E402
from hdrvideo.training.aces import scene_split  # noqa: E402
from hdrvideo.training.graded import aces_pairs  # noqa: E402

CLIP = 0.97


def luminance_pairs(images: str, split: str, target: str, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(SDR linear luminance, HDR luminance / 203) of every unclipped pixel of ``split``'s ACES
    pairs (:func:`hdrvideo.training.graded.aces_pairs`, at −1, 0, +1 stops), float64."""
    xs, ys = [], []
    for p in aces_pairs([images], side, target, split, (-1.0, 0.0, 1.0), log=lambda m: None):
        sdr, hdr = p.sdr[0].double(), p.ref[0].double()
        ok = (sdr.amax(0) < CLIP).flatten()
        xs.append(colour.luminance(colour.bt1886_eotf(sdr), colour.LUMA_BT709).flatten()[ok])
        ys.append(colour.luminance(hdr, colour.LUMA_BT2020).flatten()[ok] / colour.SDR_WHITE_NITS)
    x, y = torch.cat(xs), torch.cat(ys)
    keep = (x > 0.003) & (y > 1e-4)  # the darkest codes: BT.1886 and PQ round them apart
    return x[keep], y[keep]


def rmse(x: torch.Tensor, y: torch.Tensor, ip: float, c: float, s: float) -> float:
    return float(((y.log() - np.log(s) - inverse_curve(x, ip, c).log()) ** 2).mean().sqrt())


def fit(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """The (ip, c, s) of least log-squared error."""
    ly = y.log()
    best = (float("inf"), 0.0, 0.0, 0.0)
    for ip in np.arange(0.02, 0.20, 0.005):
        for c in np.exp(np.linspace(np.log(0.5), np.log(40.0), 50)):
            with np.errstate(over="ignore"):
                r = ly - inverse_curve(x, float(ip), float(c)).log()
            ls = r.mean()
            e = float(((r - ls) ** 2).mean())
            if np.isfinite(e) and e < best[0]:
                best = (e, float(ip), float(c), float(ls.exp()))
    return best[1], best[2], best[3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/hdr-images")
    ap.add_argument("--side", type=int, default=128, help="long side the scenes are rendered at")
    a = ap.parse_args()
    splits = [scene_split(p.name) for p in find_media(a.images)[0]]  # (names only: nothing decoded twice)
    print(f"{splits.count('train')} training scenes, {splits.count('validation')} validation scenes, 3 exposures, "
          f"{a.side} px")  # fmt: skip
    print("| peak cd/m² | ip | c | s | log RMSE train | validation | BT.2408's, validation |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for peak in ("500", "1000", "2000", "4000"):
        x, y = luminance_pairs(a.images, "train", peak, a.side)
        ip, c, s = fit(x, y)
        vx, vy = luminance_pairs(a.images, "validation", peak, a.side)
        base = float(((vy.log() - vx.log()) ** 2).mean().sqrt())
        print(f"| {peak} | {ip:.3f} | {c:.3f} | {s:.4f} | {rmse(x, y, ip, c, s):.4f} | {rmse(vx, vy, ip, c, s):.4f} "
              f"| {base:.4f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
