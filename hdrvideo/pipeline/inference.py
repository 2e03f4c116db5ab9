"""ExpandNet's forward pass as a CPU compiles it best: the same function in fewer memory passes.

:class:`ExpandNet` (``hdrvideo.model``) is written as the authors wrote it, so that their weights
load by name. Its narrow layers (the shipped model has 24 to 48 channels) leave a compiled CPU
forward pass dominated by the elementwise work between the convolutions rather than by them: on
the 2-core CPU, bf16, 480×270 (fast mode at 1080p), 23 of 33 ms were convolutions and 6 ms one
copy kernel that concatenated local, mid and global features (96 channels, masked partial-vector
stores). :class:`InferenceNet` computes the same network with two rewrites:

1. **The global vector as a bias.** The fusion's 1×1 convolution over ``cat(local, mid, glob)``
   equals ``W_l·local + W_m·mid + (W_g·glob + b)``; ``glob`` is constant over the frame, so its
   term is a per-frame bias and the concatenated tensor is never made. Same function; the sum
   runs in another order (bf16 outputs differ by at most 1 unit in the last place on a few
   pixels; tests/test_inference.py bounds it).
2. **SELU by table on bf16 activations.** A bf16 value has 65,536 bit patterns; SELU of each,
   computed in float32 and rounded to bf16 (what the compiled SELU computes), is a 128 KB table
   indexed by the activation's bits: a gather instead of an ``exp`` per value. Identical
   results (tested for every bit pattern).

``hdrvideo bench --network --variants compile,inference`` times both (docs/speed.md: 31.7–33.5
against 35.2–36.2 ms per 480×270 frame). On a GPU the processor keeps the model as it is (the
form was not measured there).

Shapes: x (B, 3, H, W) display-encoded RGB in [0, 1], in the weights' dtype, any H and W →
(B, 3, H, W) relative linear HDR in [0, 1], as ``ExpandNet.forward``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..model import ExpandNet

__all__ = ["InferenceNet", "selu_table", "supports"]


def supports(model: ExpandNet) -> bool:
    """Whether :class:`InferenceNet` can stand in for ``model`` (a per-frame network: the
    recurrent variant carries a state this form does not)."""
    return isinstance(model, ExpandNet) and not model.recurrent


def selu_table() -> torch.Tensor:
    """SELU of every bf16 bit pattern, (65536,) bf16, indexed by the pattern as an unsigned
    16-bit integer (NaN patterns give NaN)."""
    every = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    return F.selu(every.float()).to(torch.bfloat16)


class _TableSELU(nn.Module):
    """SELU of a bf16 tensor by :func:`selu_table` (any shape, any layout: elementwise)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", selu_table(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x.view(torch.int16).to(torch.int32) & 0xFFFF]


class InferenceNet(nn.Module):
    """The forward pass of a per-frame ``model`` (module doc), sharing its weights; whole frames
    only (the processor's compiled path: tiles stay with the model itself)."""

    def __init__(self, model: ExpandNet) -> None:
        super().__init__()
        if not supports(model):
            raise ValueError("the recurrent variant has no inference form: use the model itself")
        self.model = model
        c = model.config
        fuse = model.end_net[0][0]
        w = fuse.weight.detach()
        local, mid = c.local_out, c.mid_width
        # (the slices as parameters of their own: contiguous, in the model's dtype and layout)
        self.w_local = nn.Parameter(w[:, :local].clone(), requires_grad=False)
        self.w_mid = nn.Parameter(w[:, local : local + mid].clone(), requires_grad=False)
        self.w_glob = nn.Parameter(w[:, local + mid :, 0, 0].clone(), requires_grad=False)
        self.b_fuse = nn.Parameter(fuse.bias.detach().clone(), requires_grad=False)
        self.table_selu = w.dtype == torch.bfloat16
        self.selu = _TableSELU() if self.table_selu else nn.SELU()

    def _act(self, seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """Each ``(conv, SELU)`` layer of ``seq`` in turn, the SELU this form's; a bare last
        convolution without one."""
        for layer in seq:
            if isinstance(layer, nn.Sequential):
                x = self.selu(layer[0](x))
            else:
                x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        glob = m.global_features(x).flatten(1)  # (B, C_glob): a 256×256 branch, its own SELU
        local = self._act(m.local_net, x)
        mid = self._act(m.mid_net, x)
        fused = F.conv2d(local, self.w_local) + F.conv2d(mid, self.w_mid)
        bias = self.b_fuse + glob @ self.w_glob.t()  # (B, C_fuse): the global term
        h = self.selu(fused + bias[:, :, None, None].to(fused.dtype))
        return torch.sigmoid(m.end_net[1](h))
