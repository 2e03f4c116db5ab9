"""Reading HDR training and evaluation media as linear light, BT.709 primaries.

- HDR images: Radiance ``.hdr`` and float TIFF (OpenCV), OpenEXR ``.exr`` (the OpenEXR library:
  RGB(A), luminance-only ``Y``, luminance/chroma ``Y, RY, BY`` with sub-sampled chroma, and
  files whose ``chromaticities`` attribute names other primaries, e.g. ACES AP0).
- HDR video: PQ (SMPTE ST 2084) or HLG (BT.2100) files, decoded with PyAV to 16-bit BT.2020 RGB
  and taken to linear light; a folder of EXR frames is a clip too.

Values are scene- or display-relative linear light as stored (no normalisation): shape
(H, W, 3) float32, BT.709 primaries. Non-finite values become 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "HDR_IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MediaError",
    "read_hdr_image",
    "read_hdr_video",
    "find_media",
    "rgb_to_xyz_matrix",
]

HDR_IMAGE_SUFFIXES = {".exr", ".hdr", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".ts", ".h265", ".hevc", ".ivf"}

# ITU-R BT.709-6 item 1.3 / 1.4: primaries and D65 white, CIE 1931 xy
BT709_XY = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060), (0.3127, 0.3290))


class MediaError(Exception):
    """A training or evaluation file cannot be read as HDR: one clear line."""


def rgb_to_xyz_matrix(xy: tuple[tuple[float, float], ...]) -> np.ndarray:
    """3×3 RGB→XYZ matrix from red, green, blue and white xy chromaticities (SMPTE RP 177)."""

    def xyz(x: float, y: float) -> np.ndarray:
        return np.array([x / y, 1.0, (1 - x - y) / y])

    prim = np.stack([xyz(*p) for p in xy[:3]], axis=1)
    scale = np.linalg.solve(prim, xyz(*xy[3]))
    return prim * scale


def _exr_primaries(header: dict) -> tuple[tuple[float, float], ...] | None:
    c = header.get("chromaticities")
    if c is None:
        return None
    v = [float(x) for x in c]
    return ((v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]))


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR

    try:
        with OpenEXR.File(str(path)) as f:
            # copy what we need: the header's values are gone once the file is closed
            header = {k: f.header().get(k) for k in ("chromaticities", "dataWindow", "displayWindow")}
            header = {k: (tuple(np.array(x) for x in v) if isinstance(v, tuple) else v) for k, v in header.items()}
            chans = {k: np.asarray(v.pixels) for k, v in f.channels().items()}
    except Exception as e:  # noqa: BLE001 - the library's messages vary; one line for the user
        raise MediaError(f"cannot read OpenEXR {path}: {e}") from None
    prim = _exr_primaries(header)
    if "RGB" in chans or "RGBA" in chans:
        rgb = (chans.get("RGB") if "RGB" in chans else chans["RGBA"][..., :3]).astype(np.float32)
    elif all(k in chans for k in ("R", "G", "B")):
        rgb = np.stack([chans[k] for k in "RGB"], axis=-1).astype(np.float32)
    elif "Y" in chans:
        y = chans["Y"].astype(np.float32)
        h, w = y.shape
        if "RY" in chans and "BY" in chans:
            # OpenEXR luminance/chroma: RY = (R − Y)/Y, BY = (B − Y)/Y, chroma at reduced resolution
            ry = cv2.resize(chans["RY"].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            by = cv2.resize(chans["BY"].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            wr, wg, wb = rgb_to_xyz_matrix(prim or BT709_XY)[1]
            r, b = y * (1 + ry), y * (1 + by)
            g = (y - wr * r - wb * b) / wg
            rgb = np.stack([r, g, b], axis=-1)
        else:
            rgb = np.repeat(y[..., None], 3, axis=-1)
    else:
        raise MediaError(f"{path}: no RGB or Y channels (has {', '.join(sorted(chans))})")
    data_w, disp_w = header.get("dataWindow"), header.get("displayWindow")
    if data_w is not None and disp_w is not None and not np.array_equal(np.asarray(data_w), np.asarray(disp_w)):
        (dx0, dy0), (dx1, dy1) = (np.asarray(v).astype(int) for v in data_w)
        (wx0, wy0), (wx1, wy1) = (np.asarray(v).astype(int) for v in disp_w)
        # place the data window in the display window (black outside it), as viewers show it
        canvas = np.zeros((wy1 - wy0 + 1, wx1 - wx0 + 1, 3), np.float32)
        ys, xs = max(dy0, wy0), max(dx0, wx0)
        ye, xe = min(dy1, wy1) + 1, min(dx1, wx1) + 1
        if ye > ys and xe > xs:
            canvas[ys - wy0 : ye - wy0, xs - wx0 : xe - wx0] = rgb[ys - dy0 : ye - dy0, xs - dx0 : xe - dx0]
        rgb = canvas
    if prim is not None and not np.allclose(np.array(prim), np.array(BT709_XY), atol=1e-3):
        m = np.linalg.inv(rgb_to_xyz_matrix(BT709_XY)) @ rgb_to_xyz_matrix(prim)
        rgb = rgb @ m.T.astype(np.float32)
    return rgb


def read_hdr_image(path: str | Path) -> np.ndarray:
    """One HDR image → (H, W, 3) float32 linear RGB, BT.709 primaries, finite and ≥ 0."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".exr":
        rgb = _read_exr(path)
    elif suffix in HDR_IMAGE_SUFFIXES:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        if img is None:
            raise MediaError(f"not a readable HDR image: {path}")
        if img.dtype != np.float32 and img.dtype != np.float16:
            raise MediaError(f"{path}: not floating point ({img.dtype}); HDR training needs linear float images")
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        rgb = img[:, :, 2::-1].astype(np.float32)
    else:
        raise MediaError(f"not an HDR image type: {path} (use {', '.join(sorted(HDR_IMAGE_SUFFIXES))})")
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(np.maximum(rgb, 0.0), dtype=np.float32)


def read_hdr_video(
    path: str | Path, max_frames: int | None = None, step: int = 1, primaries: str = "bt709"
) -> Iterator[np.ndarray]:
    """Frames of a PQ or HLG video → (H, W, 3) float32 linear light, cd/m² (HLG: BT.2100 OOTF for
    a 1000 cd/m² display), in BT.709 primaries (clamped at 0) or, with ``primaries="bt2020"``, the
    stream's own BT.2020. Every ``step``-th frame, at most ``max_frames`` of them."""
    import av
    import torch
    from av.video.reformatter import ColorRange, Colorspace

    from .. import colour
    from .decode import TRC_PQ, InputError, open_input, probe

    try:
        container = open_input(path)
        info = probe(container, Path(path))
    except InputError as e:
        raise MediaError(str(e)) from None
    if not info.is_hdr:
        container.close()
        raise MediaError(f"{path}: not HDR video (transfer code {info.transfer}); need PQ or HLG")
    n = 0
    try:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i % step:
                continue
            rgb = frame.reformat(
                format="rgb48le",
                src_colorspace=Colorspace.BT2020,
                dst_colorspace=Colorspace.BT2020,
                src_color_range=ColorRange.JPEG if info.full_range else ColorRange.MPEG,
                dst_color_range=ColorRange.JPEG,
            )
            sig = torch.from_numpy(rgb.to_ndarray().astype(np.float32) / 65535.0).permute(2, 0, 1)[None]
            if info.transfer == TRC_PQ:
                nits = colour.pq_eotf(sig)
            else:
                nits = colour.hlg_ootf(colour.hlg_inverse_oetf(sig), 1000.0)
            lin = nits if primaries == "bt2020" else colour.rgb_to_rgb(nits, colour.BT2020_TO_BT709).clamp(min=0)
            yield np.ascontiguousarray(lin[0].permute(1, 2, 0).numpy())
            n += 1
            if max_frames is not None and n >= max_frames:
                break
    except av.FFmpegError as e:
        raise MediaError(f"{path}: cannot decode: {e}") from None
    finally:
        container.close()


def _is_sequence(files: list[Path]) -> bool:
    """EXR frames of one sequence: ≥ 2 .exr files, one name pattern, contiguous frame numbers."""
    if len(files) < 2 or any(p.suffix.lower() != ".exr" for p in files):
        return False
    stems = {re.sub(r"\d+", "#", p.stem) for p in files}
    numbers = sorted(int(re.findall(r"\d+", p.stem)[-1]) for p in files if re.search(r"\d", p.stem))
    return (
        len(stems) == 1 and len(numbers) == len(files) and numbers == list(range(numbers[0], numbers[0] + len(files)))
    )


def read_gainmap_photos(folders: list[str | Path], log=print) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
    """The gain-map JPEGs (Ultra HDR and the like) under data folders, read as real SDR/HDR
    pairs: (path, base (H, W, 3) uint8 sRGB codes, HDR (H, W, 3) float32 linear, 1 = SDR white;
    see :func:`~hdrvideo.media.gainmap.read_gainmap_pair`). Unreadable ones are reported
    through ``log`` and skipped."""
    from .gainmap import is_gainmap_jpeg, read_gainmap_pair

    for folder in map(Path, folders):
        if not folder.is_dir():
            raise MediaError(f"not a folder: {folder}")
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() not in (".jpg", ".jpeg") or not is_gainmap_jpeg(p):
                continue
            try:
                sdr, hdr = read_gainmap_pair(p)
            except (OSError, ValueError, RuntimeError) as e:  # imagecodecs raises its own errors as these
                log(f"skipping: {p}: {e}")
                continue
            yield p, sdr, hdr


def find_media(folder: str | Path) -> tuple[list[Path], list[list[Path] | Path]]:
    """Walk a data folder: (HDR images, clips). A clip is an HDR video file, or a folder of EXR
    frames of one sequence (one name pattern, contiguous frame numbers, e.g. ``frame.0001.exr``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(f"not a folder: {folder}")
    images: list[Path] = []
    clips: list[list[Path] | Path] = []
    for d in sorted([folder, *[p for p in folder.rglob("*") if p.is_dir()]]):
        files = sorted(p for p in d.iterdir() if p.is_file())
        hdr = [p for p in files if p.suffix.lower() in HDR_IMAGE_SUFFIXES]
        clips.extend(p for p in files if p.suffix.lower() in VIDEO_SUFFIXES)
        if _is_sequence(hdr):
            clips.append(hdr)
        else:
            images.extend(hdr)
    return images, clips
