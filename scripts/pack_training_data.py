"""Pack HDR training data small: every image and EXR sequence under the given folders, scaled down
to a long side, written under one output folder with the same file names and formats (so
``train``'s held-out split, which hashes file names, is the same, and no held-out scene leaks).

For carrying a training set to a machine that has a GPU but not the data (a few tens of MB
instead of hundreds). Radiance .hdr stays RGBE; EXR is written as half float with ZIP; float TIFF
stays float TIFF. PQ/HLG videos are not packed.

    python scripts/pack_training_data.py ../shared/data/hdr-images ../shared/data/hdr-clips \
        --out .gpudata/train --max-side 512
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from hdrvideo.media.hdrio import MediaError, find_media, read_hdr_image


def _scaled(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _write_exr(path: Path, rgb: np.ndarray) -> None:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": np.ascontiguousarray(rgb, dtype=np.float16)}) as f:
        f.write(str(path))


def _write(dst: Path, rgb: np.ndarray) -> None:
    """(H, W, 3) linear RGB → ``dst`` in the format its suffix names."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.ascontiguousarray(rgb.clip(0, None), dtype=np.float32)
    if dst.suffix.lower() == ".exr":
        _write_exr(dst, rgb)
    elif not cv2.imwrite(str(dst), rgb[:, :, ::-1]):
        raise SystemExit(f"could not write {dst}")


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
                img = _scaled(read_hdr_image(p), args.max_side)
            except MediaError as e:
                print(f"skipping: {e}")
                continue
            _write(args.out / p.relative_to(folder.parent), img)
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
