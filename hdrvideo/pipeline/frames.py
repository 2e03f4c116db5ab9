"""What goes into the frame processor and what comes out: host frames as device tensors, and the
10-bit planes back (:class:`HDRBatch`, or :class:`PendingBatch` while on their way). On a GPU the
frames go up from reused pinned buffers and the codes come down into pinned memory, each on a
CUDA stream of its own, so that copies overlap the compute of the batch before or after.

Shapes: frames (B, H, W, 3) uint8 / uint16 / float RGB on the host (or 8-bit Y'CbCr 4:2:0
planes, :class:`~.ycbcr_input.YCbCrFrames`); signals (B, 3, H, W) float32
in [0, 1] on the device; planes (B, H, W) and (B, 2, H/2, W/2) uint16 10-bit codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .ycbcr_input import YCbCrFrames, planes_to_rgb, stack_frames

__all__ = ["HDRBatch", "PendingBatch", "Download", "HostTransfer", "SLOTS", "sdr_to_tensor", "frames_tensor", "to_signal"]


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


class PendingBatch:
    """An :class:`HDRBatch` on its way back from the device
    (:meth:`~.processor.FrameProcessor.submit`): :meth:`result` waits for it, once."""

    def __init__(self, make: Callable[[], HDRBatch]) -> None:
        self._make: Callable[[], HDRBatch] | None = make
        self._batch: HDRBatch | None = None

    def result(self) -> HDRBatch:
        """The batch, in host memory (waits for its copies the first time)."""
        if self._batch is None:
            self._batch, self._make = self._make(), None
        return self._batch

    @staticmethod
    def concat(parts: list[PendingBatch]) -> PendingBatch:
        """The batches one after another, as one (:meth:`HDRBatch.concat` once all arrived)."""
        return PendingBatch(lambda: HDRBatch.concat([p.result() for p in parts]))


class Download:
    """Tensors on their way to host memory: on a GPU, pinned host tensors the download stream is
    filling and the event that marks the end of those copies; elsewhere the tensors themselves."""

    def __init__(self, host: list[torch.Tensor], done: torch.cuda.Event | None = None) -> None:
        self._host, self._done = host, done

    def result(self) -> list[np.ndarray]:
        """The arrays (sharing the host tensors' memory), once the copies are done."""
        if self._done is not None:
            self._done.synchronize()
        return [h.numpy() for h in self._host]


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


SLOTS = 2
"""Staging slots :meth:`HostTransfer.stack` alternates between: a batch is stacked into one while
the batch before it, in the other, may still be on its way up (one batch in flight)."""


class HostTransfer:
    """Frames to the device and codes back.

    On a GPU: frames go up from pinned staging buffers (reused while their shape holds) on an
    upload stream; the compute stream waits for that copy's event only, and the buffer is written
    again only once it has been read (its event). Codes come down into pinned memory on a
    download stream that waits for the compute queued so far; :class:`Download` waits for them.
    So the copies of one batch overlap the compute of the next, and the host stacks the next
    batch while the GPU works. Elsewhere plain copies, done when the call returns."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned: dict[str, torch.Tensor] = {}  # staging buffers: "y0", "cbcr1", "rgb0" … (stack), "y" … (upload)
        self._sent: dict[str, torch.cuda.Event] = {}  # the upload last made from each buffer
        self._streams: dict[str, torch.cuda.Stream] = {}
        self._slot = 0
        self.stages = device.type == "cuda"
        """Whether :meth:`stack` stacks frames straight into the staging buffers (pinned memory on a
        GPU: one host copy a batch instead of two; settable, for tests on a CPU)."""
        self.in_flight = 1 if device.type == "cuda" else 0
        """How many batches a caller keeps submitted before collecting the oldest
        (:meth:`~.processor.FrameProcessor.submit`): one on a GPU, so the host prepares the next
        batch while the GPU works; none on a CPU, where a submitted batch is done (settable, for
        tests)."""
        self.takes_planes = device.type == "cuda"
        """Whether callers should hand over 8-bit 4:2:0 frames as planes (half the bytes to copy):
        on a GPU, where the upload is part of the colour stage's cost; on a CPU swscale's ``rgb24``
        costs less than the conversion here (settable, for tests and measurements)."""

    def stack(self, items: list, matrix: str, full_range: bool) -> np.ndarray | YCbCrFrames:
        """:func:`~.ycbcr_input.stack_frames`, stacked straight into this transfer's staging buffers
        where :attr:`stages` (so :meth:`upload` sends them as they are): planes into ``y<slot>``
        (B, H, W) and ``cbcr<slot>`` (B, 2, H/2, W/2) uint8, R'G'B' frames into ``rgb<slot>``
        (B, H, W, 3), the slot alternating over :data:`SLOTS`. A batch lives in its buffers until
        the next call but one: hand each batch to the processor before stacking two more."""
        if not self.stages or not items:
            return stack_frames(items, matrix, full_range)
        self._slot = (self._slot + 1) % SLOTS
        if all(isinstance(it, tuple) for it in items):
            y = self._staging(f"y{self._slot}", (len(items), *items[0][0].shape), torch.uint8)
            cbcr = self._staging(f"cbcr{self._slot}", (len(items), *items[0][1].shape), torch.uint8)
            np.stack([it[0] for it in items], out=y)
            np.stack([it[1] for it in items], out=cbcr)
            return YCbCrFrames(y, cbcr, matrix, full_range)
        dtypes = {getattr(it, "dtype", None) for it in items}
        if len(dtypes) > 1 or dtypes - {np.dtype(np.uint8), np.dtype(np.uint16)}:  # mixed, or float: as stack_frames does
            return stack_frames(items, matrix, full_range)
        dtype = torch.uint8 if items[0].dtype == np.uint8 else torch.uint16
        rgb = self._staging(f"rgb{self._slot}", (len(items), *items[0].shape), dtype)
        np.stack(items, out=rgb)
        return rgb

    def _staging(self, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
        """The staging buffer ``key`` as a NumPy view (:meth:`_buffer`)."""
        return self._buffer(key, shape, dtype).numpy()

    def _buffer(self, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The staging buffer ``key``, free to write: its last upload has been read; (re)made
        where its shape or type changed (pinned on a GPU)."""
        sent = self._sent.pop(key, None)
        if sent is not None:
            sent.synchronize()
        buf = self._pinned.get(key)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype:
            buf = self._pinned[key] = torch.empty(shape, dtype=dtype, pin_memory=self.device.type == "cuda")
        return buf

    def upload(self, frames: np.ndarray | torch.Tensor | YCbCrFrames) -> torch.Tensor:
        """Host frames (B, H, W, 3) → the same on the device. Y'CbCr 4:2:0 planes
        (:class:`~.ycbcr_input.YCbCrFrames`, half the bytes) go up as they are and become those
        R'G'B' frames there (:func:`~.ycbcr_input.planes_to_rgb`)."""
        if isinstance(frames, YCbCrFrames):
            y, cbcr = self._to_device("y", torch.as_tensor(frames.y)), self._to_device("cbcr", torch.as_tensor(frames.cbcr))
            return planes_to_rgb(y, cbcr, frames.matrix, frames.full_range)
        return self._to_device("rgb", frames_tensor(frames))

    def _to_device(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """One host tensor to the device: on a GPU from the staging buffer it was stacked into
        (:meth:`stack`), else copied into the one kept under ``name``; then :meth:`_send`."""
        if self.device.type != "cuda" or t.device.type == "cuda":
            return t.to(self.device)
        key = next((k for k, b in self._pinned.items()
                    if b.data_ptr() == t.data_ptr() and b.shape == t.shape and b.dtype == t.dtype), None)  # fmt: skip
        if key is None:  # not stacked into a staging buffer
            key = name
            self._buffer(key, tuple(t.shape), t.dtype).copy_(t)
        return self._send(key)

    def _send(self, key: str) -> torch.Tensor:
        """The pinned buffer ``key`` to the device on the upload stream; the compute stream waits
        for this copy alone (not for earlier downloads), and the copy's memory is kept from reuse
        until the compute stream's work on it is done."""
        up = self._stream("up")
        with torch.cuda.stream(up):
            dev = self._pinned[key].to(self.device, non_blocking=True)
        sent = self._sent[key] = torch.cuda.Event()
        sent.record(up)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(sent)
        dev.record_stream(compute)
        return dev

    def _stream(self, name: str) -> torch.cuda.Stream:
        if name not in self._streams:
            self._streams[name] = torch.cuda.Stream(self.device)
        return self._streams[name]

    def download_async(self, *tensors: torch.Tensor) -> Download:
        """Device tensors → host memory, without waiting: on a GPU into pinned tensors, on the
        download stream once the compute queued so far is done (the device tensors are kept from
        reuse until then). :meth:`Download.result` waits."""
        if self.device.type != "cuda":
            return Download(list(tensors))
        down = self._stream("down")
        down.wait_stream(torch.cuda.current_stream(self.device))
        host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
        with torch.cuda.stream(down):
            for h, t in zip(host, tensors, strict=True):
                h.copy_(t, non_blocking=True)
                t.record_stream(down)
        done = torch.cuda.Event()
        done.record(down)
        return Download(host, done)

    def download(self, *tensors: torch.Tensor) -> list[np.ndarray]:
        """Device tensors → host arrays (:meth:`download_async`, waited for)."""
        return self.download_async(*tensors).result()
