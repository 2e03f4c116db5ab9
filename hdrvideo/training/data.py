"""Training data: HDR images and clips decoded once, held as float16 tensors on the device.

:func:`load_frames` walks ``--data`` folders (see :func:`hdrvideo.media.hdrio.find_media`), decodes every
image and clip frame once, scales each to at most ``max_side`` pixels, and splits off a held-out
set of whole scenes (images, or clips) for validation, chosen by a hash of their path so the
split is stable between runs and machines. :class:`FrameBank` then draws random training pairs
on the device with no CPU work per step:

- a pair is two frames of the same crop: consecutive frames of a clip, or the same image twice
  (whose two copies then get independent sensor noise, which teaches temporal stability);
- random crop position and scale (the crop covers 1× to 2× the output size, resized down),
  horizontal flips, and for images also vertical flips and 90° rotations;
- equirectangular panoramas (width = 2 × height) are cropped in their middle band only, where
  they are not stretched.

Gain-map photos (Ultra HDR JPEGs, e.g. from a phone) are real SDR/HDR pairs: :func:`load_photo_pairs`
reads them (the base is the SDR, the base with its gain map at full headroom the HDR) and
:class:`PairBank` draws crops of both, which training uses in place of some rendered inputs.

Memory: 6 bytes per pixel (float16 RGB): 1,000 images at 1024×512 take 3 GB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..media.hdrio import MediaError, find_media, read_gainmap_photos, read_hdr_image, read_hdr_video

__all__ = ["Scene", "load_frames", "FrameBank", "PhotoPair", "load_photo_pairs", "PairBank"]


@dataclass
class Scene:
    """One image or one clip: its frames (T, 3, H, W) float16 linear BT.709, and where it came from."""

    name: str
    frames: torch.Tensor
    is_clip: bool


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return rgb


def _crop_to_content(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Crop a sequence to the bounding box of its non-black pixels over all frames (EXR frames
    whose data windows cover only part of the display window)."""
    lit = np.zeros(frames[0].shape[:2], bool)
    for f in frames:
        lit |= f.max(axis=2) > 0
    rows, cols = np.flatnonzero(lit.any(1)), np.flatnonzero(lit.any(0))
    if rows.size == 0:
        return frames
    return [f[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] for f in frames]


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    # float16 holds up to 65504: brighter pixels (the sun) are clamped there
    arr = np.minimum(np.stack(frames), 65000.0).astype(np.float16)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def held_out(name: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") / 2**32
    return h < fraction


def load_frames(
    folders: list[str | Path],
    max_side: int = 1024,
    max_clip_frames: int = 64,
    val_fraction: float = 0.1,
    min_side: int = 64,
    log=print,
) -> tuple[list[Scene], list[Scene]]:
    """Decode all HDR media under ``folders`` → (training scenes, held-out scenes).

    Unreadable files are reported through ``log`` and skipped; no usable file at all raises
    :class:`MediaError`.
    """
    train: list[Scene] = []
    val: list[Scene] = []
    for folder in folders:
        images, clips = find_media(folder)
        items: list[tuple[str, list[Path] | Path, bool]] = [(str(p), p, False) for p in images]
        items += [(str(c[0].parent) if isinstance(c, list) else str(c), c, True) for c in clips]
        for name, src, is_clip in items:
            try:
                if not is_clip:
                    frames = [_fit(read_hdr_image(src), max_side)]
                elif isinstance(src, list):
                    seq = _crop_to_content([read_hdr_image(p) for p in src[:max_clip_frames]])
                    frames = [_fit(f, max_side) for f in seq]
                else:
                    frames = [_fit(f, max_side) for f in read_hdr_video(src, max_frames=max_clip_frames)]
            except MediaError as e:
                log(f"skipping: {e}")
                continue
            if not frames or min(frames[0].shape[:2]) < min_side:
                log(f"skipping: {name} is smaller than {min_side} px")
                continue
            scene = Scene(Path(name).name, _to_tensor(frames), is_clip and len(frames) > 1)
            (val if held_out(Path(name).name, val_fraction) else train).append(scene)
    if not train:
        raise MediaError(f"no usable HDR training data in {', '.join(map(str, folders))}")
    return train, val


class FrameBank:
    """All training frames on ``device``; :meth:`sample` draws pairs of crops."""

    def __init__(self, scenes: list[Scene], device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.frames = [s.frames.to(self.device) for s in scenes]
        self.is_clip = [s.is_clip for s in scenes]
        # scenes drawn in proportion to the square root of their frame count: clips count more
        # than one image, but a long clip does not swamp the images
        w = torch.tensor([len(f) ** 0.5 for f in self.frames], dtype=torch.float32)
        self.weights = (w / w.sum()).to(self.device)

    def __len__(self) -> int:
        return len(self.frames)

    def sample(self, batch: int, crop: int, gen: torch.Generator) -> torch.Tensor:
        """→ (batch, 2, 3, crop, crop) float32 linear HDR pairs (see module doc)."""
        dev = self.device
        picks = torch.multinomial(self.weights, batch, replacement=True, generator=gen).tolist()
        r = torch.rand(batch, 6, generator=gen, device=dev).tolist()
        out = []
        for i, k in enumerate(picks):
            frames, clip = self.frames[k], self.is_clip[k]
            t, _, h, w = frames.shape
            t0 = int(r[i][0] * (t - 1)) if clip else 0
            pair = frames[[t0, min(t0 + 1, t - 1)]] if clip else frames[[0, 0]]
            y_lo, y_hi = (h // 5, h - h // 5) if w == 2 * h else (0, h)
            avail = min(y_hi - y_lo, w)
            size = max(min(crop, avail), min(avail, int(crop * (1 + r[i][1]))))
            y0 = y_lo + int(r[i][2] * (y_hi - y_lo - size + 1))
            x0 = int(r[i][3] * (w - size + 1))
            c = pair[:, :, y0 : y0 + size, x0 : x0 + size].float()
            if size != crop:
                c = F.interpolate(c, size=(crop, crop), mode="area" if size > crop else "bilinear")
            if r[i][4] < 0.5:
                c = c.flip(-1)
            if not clip:
                c = torch.rot90(c, int(r[i][5] * 4), dims=(-2, -1))
            out.append(c)
        return torch.stack(out)


@dataclass
class PhotoPair:
    """A real pair: sdr (1, 3, H, W) float16 signal [0, 1] (the base's codes / 255, sRGB); hdr
    (1, 3, H, W) float16 linear light, BT.709, 1 = SDR white."""

    name: str
    sdr: torch.Tensor
    hdr: torch.Tensor


def load_photo_pairs(
    folders: list[str | Path], max_side: int = 1024, val_fraction: float = 0.1, log=print
) -> tuple[list[PhotoPair], list[PhotoPair]]:
    """Every gain-map photo under ``folders`` → (training pairs, held-out pairs), split by name
    as :func:`load_frames` splits scenes."""
    train: list[PhotoPair] = []
    val: list[PhotoPair] = []
    for p, sdr, hdr in read_gainmap_photos(folders, log):
        pair = PhotoPair(p.name, _to_tensor([_fit(sdr.astype(np.float32) / 255, max_side)]),
                         _to_tensor([_fit(hdr, max_side)]))  # fmt: skip
        (val if held_out(p.name, val_fraction) else train).append(pair)
    return train, val


def load_pair_files(paths: list[str | Path], max_side: int = 1024) -> list[PhotoPair]:
    """Studio-made pairs packed by :func:`~hdrvideo.training.aces.pack_pairs` → PhotoPairs (the
    SDR signal in [0, 1], the HDR relative linear BT.709), scaled down to ``max_side``."""
    pairs = []
    for path in map(Path, paths):
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            items = list(zip(d["names"], d["sdr"], d["hdr"], strict=True))
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as e:
            raise MediaError(f"not a pairs file from scripts/pack_aces_pairs.py: {path} ({e})") from None
        for name, sdr, hdr in items:
            sig = _fit(sdr.permute(1, 2, 0).float().numpy() / 255, max_side)
            pairs.append(PhotoPair(name, _to_tensor([sig]), _to_tensor([_fit(hdr.permute(1, 2, 0).float().numpy(), max_side)])))
    return pairs


class PairBank:
    """Real SDR/HDR pairs on ``device``; :meth:`sample` draws aligned crops of both."""

    def __init__(self, pairs: list[PhotoPair], device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.sdr = [p.sdr.to(self.device) for p in pairs]
        self.hdr = [p.hdr.to(self.device) for p in pairs]

    def __len__(self) -> int:
        return len(self.sdr)

    def sample(self, n: int, crop: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (SDR signal (n, 3, crop, crop), HDR (n, 3, crop, crop)), float32, random crops and flips."""
        picks = torch.randint(len(self.sdr), (n,), generator=gen, device=self.device).tolist()
        r = torch.rand(n, 3, generator=gen, device=self.device).tolist()
        sdr, hdr = [], []
        for i, k in enumerate(picks):
            _, _, h, w = self.sdr[k].shape
            size = min(crop, h, w)
            y0, x0 = int(r[i][0] * (h - size + 1)), int(r[i][1] * (w - size + 1))
            both = torch.cat((self.sdr[k], self.hdr[k]))[:, :, y0 : y0 + size, x0 : x0 + size].float()
            if size != crop:
                both = F.interpolate(both, size=(crop, crop), mode="bilinear", align_corners=False)
            if r[i][2] < 0.5:
                both = both.flip(-1)
            sdr.append(both[0])
            hdr.append(both[1])
        return torch.stack(sdr), torch.stack(hdr)
