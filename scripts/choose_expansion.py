"""Score candidate expansion settings of a model (the smooth curve under its gain, the light gate,
its gain scale) on validation pairs only, and write the chosen ones into the weights' metadata.

    python scripts/choose_expansion.py --model runs/v4-gpu/v4.safetensors \
        --candidate '{"curve_ip": 0.585, "curve_c": 0.258}' \
        --candidate '{"curve_ip": 0.585, "curve_c": 0.258, "blend_lo": 0.85, "blend_hi": 0.97,
                      "luma_lo": 0.5, "luma_hi": 0.8, "gain_scale": 0.7}' \
        [--quality fast] [--write models/NAME/model.safetensors --pick 2]

Two validation sets, never the test pairs ``eval --pairs`` reports:

- ACES 2.0 pairs of the validation scenes (:func:`hdrvideo.training.aces.scene_split`), at
  exposures −1, 0, +1 stops, 256 px (30 pairs from the shared data);
- formula renderings (BT.2446 C, hue-preserving knee, filmic) of the graded clips' validation
  frames (``load_references(validation=True)``), 320 px (24 pairs): real HDR grades.

A candidate's fields replace the model's own (its metadata); the rest stay (``{"area_hi": 0}``
scores the model with its area rule off). For each candidate it prints PU21-PSNR / PU21 on SDR-clipped pixels / ΔE_ITP / false highlights %
for both sets. ``--model none`` scores the curve alone. ``--write`` saves the model with the
``--pick``-th candidate (1-based) as its ``expansion`` metadata (and ``gain_scale`` where given).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdrvideo.model import EXPANSION_KEY, GAIN_SCALE_KEY, load_model, save_model  # noqa: E402
from hdrvideo.pipeline.processor import FrameProcessor  # noqa: E402
from hdrvideo.training.graded import aces_pairs, load_references, make_pairs, score_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="weights, or none: the curve alone")
    ap.add_argument("--candidate", action="append", required=True, help="JSON object of settings; repeatable")
    ap.add_argument("--images", default="../shared/data/hdr-images")
    ap.add_argument("--graded", default="../shared/data/hdr-video-graded")
    ap.add_argument("--quality", choices=["full", "fast"], default="full",
                    help="fast: the network at a quarter of the pairs' size, as 480 px is of 1080p")
    ap.add_argument("--write")
    ap.add_argument("--pick", type=int, default=1)
    a = ap.parse_args()

    model = None if a.model == "none" else load_model(a.model, device="cpu")
    sets = {
        "ACES validation": aces_pairs([a.images], 256, "1000", "validation", (-1.0, 0.0, 1.0), log=lambda m: None),
        "graded validation": make_pairs(load_references([a.graded], 320, 2, validation=True), ("bt2446c", "hue", "filmic")),
    }
    print(" | ".join(f"{k}: {len(v)} pairs" for k, v in sets.items()))
    base = FrameProcessor(None, "pq", 1000.0)
    cands = [json.loads(c) for c in a.candidate]
    for i, cand in enumerate(cands, 1):
        fields = {k: v for k, v in cand.items() if k != "gain_scale"}
        proc = FrameProcessor(model, "pq", 1000.0, net_long_side=64 if a.quality == "fast" else None)
        strength = float(cand.get("gain_scale", proc.cfg.strength))
        proc.cfg = dataclasses.replace(proc.cfg, strength=strength, **fields)
        row = []
        for pairs in sets.values():
            m = score_pairs(proc, pairs, base).overall
            row.append(f"{m['pu21_psnr']:.2f} / {m['pu21_clipped']:.2f} / {m['de_itp']:.2f} / {m['false_hl']:.3f}")
        print(f"{i}. {json.dumps(cand)}: " + " | ".join(row), flush=True)
    if a.write and model is not None:
        chosen = cands[a.pick - 1]
        meta = {k: v for k, v in getattr(model, "metadata", {}).items() if k not in ("config", "format")}
        meta[EXPANSION_KEY] = json.dumps({k: v for k, v in chosen.items() if k != "gain_scale"})
        if "gain_scale" in chosen:
            meta[GAIN_SCALE_KEY] = str(chosen["gain_scale"])
        save_model(model, a.write, meta)
        print("wrote", a.write)


if __name__ == "__main__":
    main()
