"""Pack HDR training data small: every image and EXR sequence under the given folders, scaled down
to a long side, written under one output folder with the same file names and formats (so
``train``'s held-out split, which hashes file names, is the same, and no held-out scene leaks).

For carrying a training set to a machine that has a GPU but not the data (a few tens of MB
instead of hundreds). Written by ``convert``'s image writer (``write_hdr_image``): Radiance .hdr
stays RGBE, EXR becomes half float with ZIP; other kinds (float TIFF) are skipped with the reason.
PQ/HLG videos are not packed.

    python scripts/pack_training_data.py ../shared/data/hdr-images ../shared/data/hdr-clips \
        --out .gpudata/train --max-side 512
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from hdrvideo.commands.images import ImageError, write_hdr_image
from hdrvideo.media.hdrio import MediaError, find_media, read_hdr_image


def _scaled(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _write(dst: Path, rgb: np.ndarray) -> None:
    """(H, W, 3) linear RGB → ``dst`` in the format its suffix names (.exr or .hdr)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_hdr_image(dst, rgb.clip(0, None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-side", type=int, default=512)
    args = ap.parse_args()
    n = 0
    for folder in args.folders:
        images, clips = find_media(folder)
        for p in images:
            try:
                _write(args.out / p.relative_to(folder.parent), _scaled(read_hdr_image(p), args.max_side))
            except (MediaError, ImageError) as e:
                print(f"skipping: {e}")
                continue
            n += 1
        for clip in clips:
            if not isinstance(clip, list):
                continue
            for p in clip:
                _write(args.out / p.relative_to(folder.parent), _scaled(read_hdr_image(p), args.max_side))
            n += 1
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{n} scenes → {args.out} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
