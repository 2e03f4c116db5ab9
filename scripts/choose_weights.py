"""Choose the weights to ship between a model and its fine-tune, on the graded validation split.

    python scripts/choose_weights.py --base models/hdrvideo-expandnet-v2/model.safetensors \\
        --tuned runs/v3d/best.safetensors --alphas 0,0.25,0.5,0.75,1 \\
        --val-pairs ../shared/data/hdr-video-graded --val-pairs ../shared/data/hdr-video \\
        --out runs/v3d/chosen.safetensors

For each alpha, the weights (1 − alpha)·base + alpha·tuned (WiSE-FT, Wortsman et al. 2022:
:func:`hdrvideo.training.select.interpolate`) are scored on the graded validation split
(:class:`hdrvideo.training.select.GradedValidation`: frames ``eval --pairs`` does not score),
at each gain scale of ``--gain-scales`` (the factor on the log gain that the chosen weights then
carry in their metadata: :func:`hdrvideo.model.gain_scale`; default 1).

The choice, by default: the fewest false highlights among the candidates that give up at most
``--within`` dB (default 0.25) of the base model's PU21-PSNR, overall and on SDR-clipped pixels:
as little false light as the fine-tune can take away without taking true light with it. With
``--max-false-hl P``: the highest selection score (:func:`hdrvideo.training.select.selection_score`:
PU21-PSNR + ½ × clipped) among the candidates with at most P% false highlights: the boldest
picture within a budget of false light. ``--reference`` (e.g. the authors' weights) adds a row to
compare with. The chosen weights are written to ``--out`` with their alpha, gain scale and
figures in the metadata. Prints a markdown table.

How hdrvideo-expandnet-v3 was chosen (its model card):

    python scripts/choose_weights.py --base models/hdrvideo-expandnet-v2/model.safetensors \\
        --tuned models/hdrvideo-expandnet-v3/model.safetensors --alphas 0,1 --gain-scales 1,1.15,1.3,1.4,1.5 \\
        --max-false-hl 0.12 --max-side 512 --frames-per-clip 2 \\
        --val-pairs ../shared/data/hdr-video-graded --val-pairs ../shared/data/hdr-video
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="the model fine-tuned from (alpha 0)")
    ap.add_argument("--tuned", required=True, type=Path, help="its fine-tune (alpha 1)")
    ap.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--val-pairs", action="append", required=True, type=Path, help="PQ/HLG videos; repeatable")
    ap.add_argument("--reference", type=Path, help="a reference row (e.g. the authors' weights.pth)")
    ap.add_argument("--within", type=float, default=0.25, help="dB of PU21-PSNR the choice may give up")
    ap.add_argument("--gain-scales", default="1", help="comma list of gain scales to try (written to --out)")
    ap.add_argument("--max-false-hl", type=float, help="choose the best score with at most this %% of false highlights")
    ap.add_argument("--max-side", type=int, default=384, help="validation frames' long side")
    ap.add_argument("--frames-per-clip", type=int, default=1)
    ap.add_argument("--out", type=Path, help="write the chosen weights here")
    a = ap.parse_args()

    from hdrvideo.model import GAIN_SCALE_KEY, load_model, save_model
    from hdrvideo.training.select import GradedValidation, interpolate

    torch.set_grad_enabled(False)
    base, tuned = load_model(a.base, device="cpu"), load_model(a.tuned, device="cpu")
    val = GradedValidation(a.val_pairs, max_side=a.max_side, frames_per_clip=a.frames_per_clip, log=lambda *_: None)
    print(f"graded validation: {len(val.pairs)} pairs from {val.references} reference frames")
    print("| alpha × gain scale | PU21-PSNR dB | PU21 clipped dB | false highlights % | headroom used | ΔE_ITP | score |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def row(name: str, r: dict) -> None:
        print(f"| {name} | {r['pu21_psnr']:.2f} | {r['pu21_clipped']:.2f} | {r['false_hl']:.2f} | "
              f"{r['headroom']:.2f} | {r['de_itp']:.2f} | {r['score']:.3f} |", flush=True)  # fmt: skip

    if a.reference is not None:
        row(f"reference: {a.reference.name}", val(load_model(a.reference, device="cpu")))
    results = []  # (alpha, gain scale, model, figures)
    for alpha in (float(x) for x in a.alphas.split(",")):
        for scale in (float(x) for x in a.gain_scales.split(",")):
            model = interpolate(base, tuned, alpha)
            model.metadata = {GAIN_SCALE_KEY: str(scale)}
            r = val(model)
            row(f"{alpha:.2f} × {scale:g}", r)
            results.append((alpha, scale, model, r))
    if a.max_false_hl is not None:
        ok = [c for c in results if c[3]["false_hl"] <= a.max_false_hl]
        alpha, scale, model, r = max(ok or results, key=lambda c: c[3]["score"])
        why = f"the best score with at most {a.max_false_hl}% false highlights" + ("" if ok else " (none has so few)")
    else:
        base_r = next((c[3] for c in results if c[0] == 0 and c[1] == 1), None) or val(base)
        ok = [c for c in results
              if c[3]["pu21_psnr"] >= base_r["pu21_psnr"] - a.within
              and c[3]["pu21_clipped"] >= base_r["pu21_clipped"] - a.within]  # fmt: skip
        alpha, scale, model, r = min(ok or results, key=lambda c: (c[3]["false_hl"], -c[3]["score"]))
        why = f"the fewest false highlights within {a.within} dB of the base's PU21-PSNR and clipped-pixel PU21"
    print(f"chosen: alpha {alpha:.2f}, gain scale {scale:g}: {why}")
    if a.out is not None:
        meta = {"alpha": f"{alpha:.3f}", "base": str(a.base), "tuned": str(a.tuned), GAIN_SCALE_KEY: f"{scale:g}"}
        meta.update({f"graded_{k}": f"{v:.3f}" for k, v in r.items()})
        save_model(model, a.out, meta)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
