"""Distillation: a narrower ExpandNet taught by a wider one (``hdrvideo train --teacher FILE``).

Why. On a CPU the network sets the pace of fast mode, and a 3×3 convolution's speed there
depends on its channel count more than its multiply-adds suggest: on the 2-core CPU (bf16,
480×270) layers of 16 channels run at the CPU's peak while the shipped model's 24-channel ones
reach 74% of it, and a 16-wide ExpandNet takes 0.46× the shipped model's time (docs/speed.md).

How. The student starts from the teacher itself: every convolution keeps the output channels
that carry most weight (L1 norm of each output filter), and its inputs follow the previous
layer's choice (:func:`narrowed`). Training then matches the teacher's output on the trainer's
own inputs (the virtual camera, graded renderings, real photo pairs) with the trainer's loss,
in place of the HDR reference (:func:`teacher_targets`): the target is what the teacher makes
of this SDR, which a smaller network can learn far faster than the HDR it had to guess.

Shapes: signal (B, 3, H, W) SDR in [0, 1] → targets (B, 3, H, W) relative linear in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..model import ExpandNet, ExpandNetConfig

__all__ = ["narrowed", "teacher_targets"]


@torch.no_grad()
def teacher_targets(teacher: ExpandNet, signal: torch.Tensor) -> torch.Tensor:
    """The teacher's output for the SDR ``signal`` (B, 3, H, W), float32, no gradient."""
    return teacher(signal.to(next(teacher.parameters()).dtype)).float()


def _keep(conv: nn.Conv2d, n: int) -> torch.Tensor:
    """Indices of the ``n`` output channels of ``conv`` with the largest L1 weight, in order."""
    strength = conv.weight.detach().abs().flatten(1).sum(1)
    return strength.topk(n).indices.sort().values


def _copy(dst: nn.Conv2d, src: nn.Conv2d, rows: torch.Tensor, cols: torch.Tensor) -> None:
    dst.weight.copy_(src.weight[rows][:, cols])
    dst.bias.copy_(src.bias[rows])


def _convs(seq: nn.Sequential) -> list[nn.Conv2d]:
    return [m for m in seq.modules() if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def narrowed(teacher: ExpandNet, config: ExpandNetConfig) -> ExpandNet:
    """A per-frame ExpandNet of ``config`` (every width at most the teacher's, the same mid
    depth) whose weights are the teacher's strongest channels (module doc)."""
    t = teacher.config
    widths = ("local_width", "local_out", "mid_width", "glob_width", "fuse_width")
    if teacher.recurrent or config.temporal_width or config.mid_depth != t.mid_depth:
        raise ValueError("narrowing keeps the teacher's mid depth and has no recurrent variant")
    if any(getattr(config, k) > getattr(t, k) for k in widths):
        raise ValueError(f"a narrowed student cannot be wider than its teacher ({t} → {config})")
    student = ExpandNet(config).to(teacher.local_net[0][0].weight.device)
    branch_out = {}
    for name in ("local_net", "mid_net", "glob_net"):
        cols = torch.arange(3)
        for src, dst in zip(_convs(getattr(teacher, name)), _convs(getattr(student, name)), strict=True):
            rows = _keep(src, dst.out_channels)
            _copy(dst, src, rows, cols)
            cols = rows
        branch_out[name] = cols
    # the fusion reads (local, mid, glob) concatenated: its input columns follow each branch
    offsets = (0, t.local_out, t.local_out + t.mid_width)
    cols = torch.cat([branch_out[n] + o for n, o in zip(("local_net", "mid_net", "glob_net"), offsets, strict=True)])
    fuse_src, out_src = _convs(teacher.end_net)
    fuse_dst, out_dst = _convs(student.end_net)
    rows = _keep(fuse_src, fuse_dst.out_channels)
    _copy(fuse_dst, fuse_src, rows, cols)
    _copy(out_dst, out_src, torch.arange(3), rows)
    student.metadata = dict(getattr(teacher, "metadata", {}))  # type: ignore[attr-defined]
    return student.train()
