"""How much one batch may hold: the CPU's memory budget for frame-sized work, and how an
out-of-device-memory failure is recognised (the processor then splits the batch, then tiles).

Sizes are in pixels and bytes; frames are (B, H, W, 3).
"""

from __future__ import annotations

import torch

__all__ = ["BYTES_PER_PIXEL", "CPU_BATCH_BYTES", "CPU_TILE", "MIN_TILE", "cpu_batch_limit", "is_oom"]

CPU_TILE = 512
"""Tile side (pixels) of the network's full-resolution branches on a CPU (exact: issue 2)."""

CPU_BATCH_BYTES = 1.5e9
"""Budget for one batch's frame-sized work on a CPU (bytes): batches of bigger frames are split."""

BYTES_PER_PIXEL = 110
"""Peak memory of the processor per frame pixel on a CPU, measured: converting the 4K portrait
clip in fast mode took 3.2 GB peak RSS in batches of 1 and 6.7 GB in batches of 5 (the default
with the look-ahead), ≈ 0.9 GB per extra 8.3 M-pixel frame."""

MIN_TILE = 128
"""The smallest network tile the out-of-memory fallback goes down to (pixels)."""


def cpu_batch_limit(height: int, width: int) -> int:
    """Frames of this size one batch may hold on a CPU: :data:`CPU_BATCH_BYTES` over
    :data:`BYTES_PER_PIXEL` per pixel (1080p: 6; 4K: 1), at least 1."""
    return max(1, int(CPU_BATCH_BYTES // (BYTES_PER_PIXEL * height * width)))


def is_oom(e: BaseException) -> bool:
    """Out of device memory: CUDA's own error, or an allocator failure on the CPU."""
    if isinstance(e, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    return isinstance(e, RuntimeError) and any(
        k in str(e) for k in ("out of memory", "can't allocate memory", "CUDNN_STATUS_ALLOC_FAILED")
    )
