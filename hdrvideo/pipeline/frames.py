"""What goes into the frame processor and what comes out: host frames as device tensors, and the
10-bit planes back (:class:`HDRBatch`), through a reused pinned buffer on a GPU.

Shapes: frames (B, H, W, 3) uint8 / uint16 / float RGB on the host (or 8-bit Y'CbCr 4:2:0
planes, :class:`~.ycbcr_input.YCbCrFrames`); signals (B, 3, H, W) float32
in [0, 1] on the device; planes (B, H, W) and (B, 2, H/2, W/2) uint16 10-bit codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .ycbcr_input import YCbCrFrames, planes_to_rgb, stack_frames

__all__ = ["HDRBatch", "HostTransfer", "sdr_to_tensor", "frames_tensor", "to_signal"]


@dataclass
class HDRBatch:
    """The processor's output for B frames.

    y: (B, H, W) uint16 luma codes; uv: (B, 2, H/2, W/2) uint16 Cb, Cr codes (10-bit, limited).
    max_cll, max_fall: (B,) per-frame max and mean of max(R, G, B), cd/m² (PQ: of the planes as
    decoded back; HLG: before quantisation).
    params: (B, 2) calibration (a, b) actually used. signal: (B, 3, H, W) PQ/HLG BT.2020 R'G'B'
    in [0, 1] on the processor's device, kept only when asked for.
    """

    y: np.ndarray
    uv: np.ndarray
    max_cll: np.ndarray
    max_fall: np.ndarray
    params: np.ndarray
    signal: torch.Tensor | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @staticmethod
    def concat(parts: list[HDRBatch]) -> HDRBatch:
        """The batches one after another, as one."""
        signals = [p.signal for p in parts]
        return HDRBatch(
            y=np.concatenate([p.y for p in parts]),
            uv=np.concatenate([p.uv for p in parts]),
            max_cll=np.concatenate([p.max_cll for p in parts]),
            max_fall=np.concatenate([p.max_fall for p in parts]),
            params=np.concatenate([p.params for p in parts]),
            signal=torch.cat(signals) if all(x is not None for x in signals) else None,
        )


def sdr_to_tensor(frames: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """(B, H, W, 3) uint8 / uint16 / float RGB → (B, 3, H, W) float32 signal in [0, 1] on device."""
    return to_signal(frames_tensor(frames).to(device, non_blocking=True))


def frames_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Frames as a (B, H, W, 3) tensor (a single (H, W, 3) frame gets B = 1), sharing memory."""
    t = torch.as_tensor(frames)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (B, H, W, 3), got {tuple(t.shape)}")
    return t


def to_signal(t: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) integer or float RGB on its device → (B, 3, H, W) float32 [0, 1], contiguous.
    The layout changes while the data is still 1 or 2 bytes a value (cheaper than in float)."""
    if t.dtype == torch.uint8:
        scale = 255.0
    elif t.dtype in (torch.uint16, torch.int32):
        scale = 65535.0
    else:
        return t.permute(0, 3, 1, 2).to(torch.float32).contiguous()
    return t.permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(scale)


class HostTransfer:
    """Frames to the device and codes back. On a GPU through a reused pinned staging buffer and
    non-blocking copies; the buffer is free again once the previous batch's results came back
    (:meth:`download` ends with that synchronisation). Elsewhere plain copies."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned: dict[str, torch.Tensor] = {}
        self.stages = device.type == "cuda"
        """Whether :meth:`stack` stacks frames straight into the staging buffers (pinned memory on a
        GPU: one host copy a batch instead of two; settable, for tests on a CPU)."""
        self.takes_planes = device.type == "cuda"
        """Whether callers should hand over 8-bit 4:2:0 frames as planes (half the bytes to copy):
        on a GPU, where the upload is part of the colour stage's cost; on a CPU swscale's ``rgb24``
        costs less than the conversion here (settable, for tests and measurements)."""

    def stack(self, items: list, matrix: str, full_range: bool) -> np.ndarray | YCbCrFrames:
        """:func:`~.ycbcr_input.stack_frames`, stacked straight into this transfer's staging buffers
        where :attr:`stages` (so :meth:`upload` sends them as they are): planes into ``y`` (B, H, W)
        and ``cbcr`` (B, 2, H/2, W/2) uint8, R'G'B' frames into ``rgb`` (B, H, W, 3). The batch
        lives in those buffers until the next call: hand it to the processor before stacking
        another (``process`` returns once the batch's results are back)."""
        if not self.stages or not items:
            return stack_frames(items, matrix, full_range)
        if all(isinstance(it, tuple) for it in items):
            y = self._staging("y", (len(items), *items[0][0].shape), torch.uint8)
            cbcr = self._staging("cbcr", (len(items), *items[0][1].shape), torch.uint8)
            np.stack([it[0] for it in items], out=y)
            np.stack([it[1] for it in items], out=cbcr)
            return YCbCrFrames(y, cbcr, matrix, full_range)
        dtypes = {getattr(it, "dtype", None) for it in items}
        if len(dtypes) > 1 or dtypes - {np.dtype(np.uint8), np.dtype(np.uint16)}:  # mixed, or float: as stack_frames does
            return stack_frames(items, matrix, full_range)
        dtype = torch.uint8 if items[0].dtype == np.uint8 else torch.uint16
        rgb = self._staging("rgb", (len(items), *items[0].shape), dtype)
        np.stack(items, out=rgb)
        return rgb

    def _staging(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
        """The staging buffer ``name`` as a NumPy view, (re)made where its shape or type changed."""
        buf = self._pinned.get(name)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype:
            buf = self._pinned[name] = torch.empty(shape, dtype=dtype, pin_memory=self.device.type == "cuda")
        return buf.numpy()

    def upload(self, frames: np.ndarray | torch.Tensor | YCbCrFrames) -> torch.Tensor:
        """Host frames (B, H, W, 3) → the same on the device. Y'CbCr 4:2:0 planes
        (:class:`~.ycbcr_input.YCbCrFrames`, half the bytes) go up as they are and become those
        R'G'B' frames there (:func:`~.ycbcr_input.planes_to_rgb`)."""
        if isinstance(frames, YCbCrFrames):
            y, cbcr = self._to_device("y", torch.as_tensor(frames.y)), self._to_device("cbcr", torch.as_tensor(frames.cbcr))
            return planes_to_rgb(y, cbcr, frames.matrix, frames.full_range)
        return self._to_device("rgb", frames_tensor(frames))

    def _to_device(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """One host tensor to the device: on a GPU through the pinned staging buffer kept under
        ``name`` (reused while its shape holds), with a non-blocking copy."""
        if self.device.type != "cuda" or t.device.type == "cuda":
            return t.to(self.device)
        buf = self._pinned.get(name)
        if buf is not None and buf.data_ptr() == t.data_ptr() and buf.shape == t.shape and buf.dtype == t.dtype:
            return buf.to(self.device, non_blocking=True)  # stacked into the buffer already (:meth:`stack`)
        if buf is None or buf.shape != t.shape or buf.dtype != t.dtype:
            buf = self._pinned[name] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        buf.copy_(t)
        return buf.to(self.device, non_blocking=True)

    def download(self, *tensors: torch.Tensor) -> list[np.ndarray]:
        """Device tensors → host arrays with one synchronisation for all (pinned, non-blocking on a GPU)."""
        if self.device.type != "cuda":
            return [t.numpy() for t in tensors]
        host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
        for h, t in zip(host, tensors, strict=True):
            h.copy_(t, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return [h.numpy() for h in host]
