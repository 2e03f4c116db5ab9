"""Pack studio-made SDR/HDR pairs (ACES 2.0 output transforms of the training scenes) into one
file for ``hdrvideo train --pairs``, so a machine without OpenColorIO or the scenes (a GPU
machine) can train on them.

    python scripts/pack_aces_pairs.py --data ../shared/data/hdr-images --out .gpu/aces_train.pt \
        [--max-side 224] [--stops -1,0,1] [--split train]

Only the ``train`` split by default: the validation scenes choose the settings
(scripts/choose_expansion.py) and the test scenes make the tables (``eval --pairs``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdrvideo.training.aces import pack_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-side", type=int, default=224)
    ap.add_argument("--stops", default="-1,0,1")
    ap.add_argument("--split", default="train", choices=["train", "validation", "test", "all"])
    ap.add_argument("--target", default="1000")
    a = ap.parse_args()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    n = pack_pairs(a.data, a.out, a.max_side, tuple(float(x) for x in a.stops.split(",")), a.split, a.target)
    print(f"wrote {n} pairs to {a.out} ({Path(a.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
