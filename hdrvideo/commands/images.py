"""Image mode: SDR photos → HDR photos: linear OpenEXR (half float) or Radiance .hdr for a
compositor, like the authors' expand.py but calibrated as video is (see
:mod:`hdrvideo.pipeline.calibrate`); Ultra HDR JPEG (gain map) or 10-bit PQ/HLG AVIF for viewers.

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
from .jobs import HDR_OUTPUTS, IMAGE_INPUTS, VIEWABLE_OUTPUTS

__all__ = [
    "IMAGE_INPUTS",
    "HDR_OUTPUTS",
    "expand_image",
    "read_sdr_image",
    "write_hdr_image",
    "write_viewable",
    "convert_images",
]



class ImageError(Exception):
    """An image cannot be read or written: one clear line for the user."""


def hdr_still_transfer(path: Path) -> str | None:
    """"PQ" or "HLG" where a still image says it is HDR (AVIF or PNG colour tags: CICP / cICP, as
    FFmpeg reads them), else None (SDR, untagged, or not readable by FFmpeg)."""
    from ..media.decode import TRC_HLG, TRC_PQ, open_input, probe

    try:
        container = open_input(path)
    except Exception:  # noqa: BLE001 - not FFmpeg's to read: cv2 will say so, or read it
        return None
    try:
        trc = probe(container, path).transfer
    except Exception:  # noqa: BLE001
        return None
    finally:
        container.close()
    return {TRC_PQ: "PQ", TRC_HLG: "HLG"}.get(trc)


def read_sdr_image(path: Path) -> np.ndarray:
    """(H, W, 3) RGB uint8 (or uint16 for 16-bit files); AVIF through FFmpeg (dav1d)."""
    if path.suffix.lower() == ".avif":
        return _read_avif(path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise ImageError(f"not a readable image: {path}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3][:, :, ::-1]  # BGR(A) → RGB
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{path}: expected an 8- or 16-bit SDR image, got {img.dtype}")
    return np.ascontiguousarray(img)


def _read_avif(path: Path) -> np.ndarray:
    from ..media.decode import frame_to_rgb, open_input, probe

    try:
        container = open_input(path)
        try:
            info = probe(container, path)
            frame = next(container.decode(video=0))
            return frame_to_rgb(frame, info)[: info.height, : info.width]
        finally:
            container.close()
    except Exception:  # noqa: BLE001 - one line, whatever FFmpeg raised
        raise ImageError(f"not a readable image: {path}") from None


@torch.no_grad()
def expand_image(processor: FrameProcessor, rgb: np.ndarray, with_sdr: bool = False):
    """(H, W, 3) SDR RGB → (H, W, 3) float32 linear BT.709 HDR, 1.0 = SDR white. Any size.
    ``with_sdr``: → (HDR, the SDR linear it started from), both (H, W, 3)."""
    rel, sdr = processor.relative_hdr(sdr_to_tensor(rgb[None], processor.device))
    hdr = np.ascontiguousarray(rel[0].permute(1, 2, 0).float().cpu().numpy())
    if not with_sdr:
        return hdr
    return hdr, np.ascontiguousarray(sdr[0].permute(1, 2, 0).float().cpu().numpy())


def write_viewable(path: Path, src: Path, rgb: np.ndarray, processor: FrameProcessor) -> None:
    """Expand ``rgb`` (the SDR photo ``src``) into an HDR photo viewers show: an Ultra HDR JPEG
    (.jpg: the SDR as its base, untouched where ``src`` is a Y'CbCr JPEG (a CMYK or grey one is
    encoded anew from RGB), our expansion as its gain map) or a 10-bit AVIF (.avif: PQ or HLG, BT.2020, as the processor's transfer and peak)."""
    if path.suffix.lower() == ".avif":
        from ..media.avif import write_avif

        with torch.no_grad():  # the display light the video path encodes, BT.2020 cd/m²
            nits, _ = processor.display_light(sdr_to_tensor(rgb[None], processor.device))
        write_avif(path, nits[0].permute(1, 2, 0).float().cpu().numpy(), processor.transfer, processor.cfg.peak_nits)
        return
    from ..media.gainmap import jpeg_components, write_ultrahdr

    if rgb.dtype != np.uint8:
        raise ImageError(f"{src}: an Ultra HDR JPEG needs an 8-bit SDR photo, got 16 bits (write .avif or .exr)")
    hdr, sdr = expand_image(processor, rgb, with_sdr=True)
    base = src.read_bytes() if src.suffix.lower() in (".jpg", ".jpeg") else None
    if base is not None and jpeg_components(base) != 3:  # CMYK or grey: no Ultra HDR reader takes it as a base
        base = None  # the base is then the RGB photo, encoded anew
    write_ultrahdr(path, rgb, sdr, hdr, base_jpeg=base)


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


def convert_images(
    inp: Path, out: Path, processor: FrameProcessor, overwrite: bool = False, force: bool = False
) -> list[Path]:
    """One image to one HDR file (.exr, .hdr, Ultra HDR .jpg or .avif), or a folder of images
    to a folder of .exr files (named by stem; ``NAME.EXT.exr`` where two inputs share a stem). A gain-map JPEG is already HDR: refused unless ``force`` (its
    SDR base is then what is expanded)."""
    if inp.is_dir():
        sources = sorted(p for p in inp.iterdir() if p.suffix.lower() in IMAGE_INPUTS)
        if not sources:
            raise ImageError(f"no images ({', '.join(sorted(IMAGE_INPUTS))}) in folder {inp}")
        out.mkdir(parents=True, exist_ok=True)
        # still.png and still.jpg would both be still.exr: those keep their extension (still.png.exr)
        stems = [p.stem.lower() for p in sources]
        pairs = [(p, out / (f"{p.stem}.exr" if stems.count(p.stem.lower()) == 1 else f"{p.name}.exr")) for p in sources]
    else:
        if out.suffix.lower() not in HDR_OUTPUTS:
            raise ImageError(f"an image converts to .exr, .hdr, .jpg (Ultra HDR) or .avif, not {out.suffix or '(none)'!r}")
        if out.resolve() == inp.resolve():
            raise ImageError(f"output is the input: {out}")
        pairs = [(inp, out)]
    for _, dst in pairs:
        if dst.exists() and not overwrite:
            raise ImageError(f"output exists: {dst} (use -y to overwrite)")
    if not force:
        from ..media.gainmap import read_gainmap_info

        for src, _ in pairs:
            transfer = hdr_still_transfer(src) if src.suffix.lower() in (".avif", ".png", ".tif", ".tiff") else None
            if transfer is not None:
                raise ImageError(f"{src} is already HDR ({transfer}); use --force to expand it as if it were SDR")
            gm = read_gainmap_info(src) if src.suffix.lower() in (".jpg", ".jpeg") else None
            if gm is not None:
                raise ImageError(f"{src} is already HDR (a gain-map JPEG, headroom ×{gm.headroom:.1f}); "
                                 "use --force to expand its SDR base anyway")  # fmt: skip
    for src, dst in pairs:
        processor.reset()  # photos are independent
        rgb = read_sdr_image(src)
        if dst.suffix.lower() in VIEWABLE_OUTPUTS:
            write_viewable(dst, src, rgb, processor)
        else:
            write_hdr_image(dst, expand_image(processor, rgb))
    return [dst for _, dst in pairs]
