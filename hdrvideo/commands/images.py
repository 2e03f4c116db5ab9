"""Image mode: SDR photos → linear HDR images (OpenEXR half float, or Radiance .hdr), like the
authors' expand.py but calibrated as video is (see :mod:`hdrvideo.pipeline.calibrate`).

Output values are linear light in the input's BT.709 primaries, relative to SDR diffuse white
(1.0 = SDR white = 203 cd/m² in the video path); expanded highlights go above 1.0, up to the peak
(default 1000 cd/m², i.e. about 4.9).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ..pipeline.processor import FrameProcessor, sdr_to_tensor
from .jobs import HDR_OUTPUTS, IMAGE_INPUTS

__all__ = ["IMAGE_INPUTS", "HDR_OUTPUTS", "expand_image", "read_sdr_image", "write_hdr_image", "convert_images"]



class ImageError(Exception):
    """An image cannot be read or written: one clear line for the user."""


def read_sdr_image(path: Path) -> np.ndarray:
    """(H, W, 3) RGB uint8 (or uint16 for 16-bit files)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise ImageError(f"not a readable image: {path}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3][:, :, ::-1]  # BGR(A) → RGB
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{path}: expected an 8- or 16-bit SDR image, got {img.dtype}")
    return np.ascontiguousarray(img)


@torch.no_grad()
def expand_image(processor: FrameProcessor, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) SDR RGB → (H, W, 3) float32 linear BT.709 HDR, 1.0 = SDR white. Any size."""
    rel, _ = processor.relative_hdr(sdr_to_tensor(rgb[None], processor.device))
    return np.ascontiguousarray(rel[0].permute(1, 2, 0).float().cpu().numpy())


def write_hdr_image(path: Path, rgb: np.ndarray) -> None:
    """Write (H, W, 3) float linear RGB to .exr (half float, ZIP) or .hdr, atomically."""
    suffix = path.suffix.lower()
    tmp = path.with_name(f".{path.stem}.partial{suffix}")
    try:
        if suffix == ".exr":
            import OpenEXR

            header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
            with OpenEXR.File(header, {"RGB": np.ascontiguousarray(rgb, dtype=np.float16)}) as f:
                f.write(str(tmp))
        elif suffix == ".hdr":
            if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[:, :, ::-1], dtype=np.float32)):
                raise ImageError(f"cannot write {path}")
        else:
            raise ImageError(f"unknown HDR image type {suffix!r}; use .exr or .hdr")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ImageError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def convert_images(inp: Path, out: Path, processor: FrameProcessor, overwrite: bool = False) -> list[Path]:
    """One image to one HDR file, or a folder of images to a folder of .exr files."""
    if inp.is_dir():
        sources = sorted(p for p in inp.iterdir() if p.suffix.lower() in IMAGE_INPUTS)
        if not sources:
            raise ImageError(f"no images ({', '.join(sorted(IMAGE_INPUTS))}) in folder {inp}")
        out.mkdir(parents=True, exist_ok=True)
        pairs = [(p, out / f"{p.stem}.exr") for p in sources]
    else:
        if out.suffix.lower() not in HDR_OUTPUTS:
            raise ImageError(f"an image converts to .exr or .hdr, not {out.suffix or '(none)'!r}")
        pairs = [(inp, out)]
    for _, dst in pairs:
        if dst.exists() and not overwrite:
            raise ImageError(f"output exists: {dst} (use -y to overwrite)")
    for src, dst in pairs:
        processor.reset()  # photos are independent
        write_hdr_image(dst, expand_image(processor, read_sdr_image(src)))
    return [dst for _, dst in pairs]
