"""The speed breakdown as a chart: milliseconds per frame of each stage, from `hdrvideo bench --json`.

    hdrvideo bench --size 1920x1080 --frames 48 --modes null,fast --json > bench.json   # one or more runs
    python scripts/speed_chart.py bench.json [more.json …] --out docs/images/speed_breakdown.png

Each JSON line of each file is one bench run; every run's null and fast modes become one bar of
stacked stages (decode, colour, network, encode), labelled with the run's model and the fps it
reached end to end (stages run in parallel threads, so the bar is the work, not the wall time).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STAGES = ("decode_ms", "colour_ms", "network_ms", "encode_ms")
COLOURS = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="files of `hdrvideo bench --json` lines")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = []
    for f in a.runs:
        for line in f.read_text().splitlines():
            if not line.strip().startswith("{"):
                continue
            run = json.loads(line)
            model = next((n.split(": ")[1].split(",")[0] for n in run.get("notes", []) if "fast mode on a CPU" in n), "")
            for mode, stages in run["stages"].items():
                fps = run.get(f"{mode}_fps", 0.0)
                label = f"{mode}{' · ' + model if model and mode != 'null' else ''}\n{fps:.1f} fps"
                if f"{mode}_processing_fps" in run:  # the rate without the encoder, and the stage that sets the pace
                    label += f" ({run[f'{mode}_processing_fps']:.1f} w/o encoder)\npace: {run['pace'][mode]}"
                bars.append((label, [stages.get(s, 0.0) for s in STAGES]))
    if not bars:
        raise SystemExit("no bench runs in the files given")
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(bars)), 4))
    bottom = [0.0] * len(bars)
    for k, (stage, colour) in enumerate(zip(STAGES, COLOURS, strict=True)):
        vals = [b[1][k] for b in bars]
        ax.bar(range(len(bars)), vals, bottom=bottom, color=colour, label=stage.removesuffix("_ms"))
        bottom = [x + v for x, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylabel("ms per frame (each stage measured alone)")
    ax.set_title(a.title or "hdrvideo bench: where the time goes", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(a.out)


if __name__ == "__main__":
    main()
