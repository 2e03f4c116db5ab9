"""The fused colour stage on a CPU, a 2×2 quad of pixels at a time.

The same steps and formulas as :func:`~hdrvideo.pipeline.colour_stage.fused_light`,
:func:`~hdrvideo.pipeline.colour_stage.subsample` and
:func:`~hdrvideo.pipeline.colour_stage.fused_limit` (the same codes, tests/test_compiled.py), laid
out for TorchInductor's C++ loops. 4:2:0 pairs each chroma sample with a quad (rows 2k, 2k+1,
columns 2j, 2j+1); compiled over full-resolution pixels, the stencils between the two
resolutions read every other value, which the C++ backend leaves scalar (5 ms of a 1080p frame's
16). Over quads, every plane is (B, H/2, W/2) and every stencil a shifted, contiguous read:

- :func:`planes`: the frame laid out by quad (one copy); :func:`widen`: the gain carried up
  along its rows (the columns follow inside :func:`light`, :func:`column_pass`);
- :func:`light`: 8-bit R'G'B' → per quad the four luma codes and the vertical means of Cb and Cr
  of its two columns;
- :func:`subsample`: the horizontal [1, 2, 1]/4 filter → the chroma codes, and the same padded by
  one sample (replicated) for the decoder's reconstruction;
- :func:`limit`: what a decoder rebuilds at each of the four pixels, the luma lowered where it
  passes the peak, and the light levels;
- :func:`interleave`: the four luma planes back into one (B, H, W) int16 plane.

Shapes: frames (B, H, W, 3) uint8, by quad (B, 3, 2, 2, H/2, W/2); log gain (natural log) at the
network's resolution (B, 1, h, w), widened (B, 2, h, W/2); planes (B, H/2, W/2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import colour
from ..colour import tables as T
from ..colour.ycbcr import KR_KB
from .calibrate import CalibrationConfig, pixel_log_gain
from .colour_stage import LUMA_CODES_PER_UNIT, StageConstants, Tables, limit_pixel, shoulder_channels

__all__ = ["SUBPIXELS", "planes", "widen", "column_pass", "light", "subsample", "limit", "interleave"]

SUBPIXELS = ((0, 0), (0, 1), (1, 0), (1, 1))
"""(row, column) of the four pixels of a quad, in the order of the planes."""

_KR, _KB = KR_KB["bt2020"]


def planes(frames: torch.Tensor) -> torch.Tensor:
    """The frames laid out by quad for :func:`light`: (B, H, W, 3) uint8 → (B, 3, 2, 2, H/2, W/2)
    uint8 (channel, row and column in the quad, quad row, quad column). Compiled, one pass (0.7 ms
    for a 1080p frame): read in place instead, the strided loads kept :func:`light`'s loop
    scalar where a gain is applied (16 against 10 ms)."""
    b, h, w, _ = frames.shape
    return frames.view(b, h // 2, 2, w // 2, 2, 3).permute(0, 5, 2, 4, 1, 3).contiguous()


def widen(small_gain: torch.Tensor, width: int) -> torch.Tensor:
    """The first half of carrying the gain up bilinearly: along the rows of the network's
    resolution, (B, 1, h, w) → (B, 2, h, W/2), the even then the odd output columns.

    With :func:`column_pass` (inside :func:`light`) the same values, bit for bit, as
    ``F.interpolate(bilinear, align_corners=False)`` compiled (TorchInductor interpolates along
    the last axis, then the one before, as here; tests/test_compiled.py), and each output value
    costs two contiguous loads instead of four gathers: carrying a 480×270 gain up to 1080p took
    3.3 ms as one interpolation, 1.5 ms as two passes, and about 0.8 ms with the second inside
    :func:`light` (no full-resolution gain is written or read). A compiled graph of its own:
    inside one graph the rows would be inlined and computed again for every output row."""
    b, _, h, _ = small_gain.shape
    x0, x1, lam = _source(small_gain.shape[-1], width, small_gain.device)
    g = small_gain[:, 0]
    left, right = g[..., x0], g[..., x1]
    rows = left + (right - left) * lam
    return rows.view(b, h, width // 2, 2).permute(0, 3, 1, 2).contiguous()


def column_pass(rows: torch.Tensor, dr: int, dc: int, height: int) -> torch.Tensor:
    """The second half: the gain of pixel (``dr``, ``dc``) of every quad of a frame ``height``
    rows high, from :func:`widen`'s rows (B, 2, h, W/2) → (B, H/2, W/2)."""
    y0, y1, lam = (v[dr::2] for v in _source(rows.shape[2], height, rows.device))
    r = rows[:, dc]
    top, bottom = r[:, y0], r[:, y1]
    return top + (bottom - top) * lam[:, None]


def _source(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear source positions of ``n_out`` samples from ``n_in`` (align_corners=False), as
    PyTorch computes them: (index, next index, weight of the next), each (n_out,)."""
    x = torch.arange(n_out, device=device).to(torch.float32)
    x = ((n_in / n_out) * (x + 0.5) - 0.5).clamp(min=0.0)
    i0 = x.to(torch.int64)
    return i0, (i0 + 1).clamp(max=n_in - 1), (x - i0).clamp(0.0, 1.0)


def _pixel(
    codes: list[torch.Tensor], log_gain: torch.Tensor | None, c: StageConstants, cfg: CalibrationConfig,
    tables: Tables, shoulder: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:  # fmt: skip
    """One pixel of each quad: R', G', B' 8-bit codes (B, h, w) and its log gain (B, h, w) or None
    → (luma codes, Cb, Cr, [R', G', B'] PQ signal)."""
    lin = [T.lookup(tables.bt1886, v.int()) for v in codes]  # BT.1886, BT.709, relative
    sig = None if log_gain is None else tuple(v.float() * (1.0 / 255.0) for v in codes)
    gain = pixel_log_gain(sig, lin, log_gain, cfg)
    k = c.white_nits if gain is None else torch.exp(gain) * c.white_nits
    lin = [v * k for v in lin]  # cd/m²
    m = colour.BT709_TO_BT2020
    rgb = [m[i][0] * lin[0] + m[i][1] * lin[1] + m[i][2] * lin[2] for i in range(3)]
    if (gain is not None and shoulder) or c.knee_nits < c.white_nits:
        rgb = shoulder_channels(rgb, c)
    r, g, b = (T.pq_lookup(v.clamp(0, c.peak_nits), tables.pq) for v in rgb)
    luma = _KR * r + (1 - _KR - _KB) * g + _KB * b
    codes_y = (luma * LUMA_CODES_PER_UNIT + 64).round().clamp(0, 1023)
    return codes_y, (b - luma) * (1 / (2 - 2 * _KB)), (r - luma) * (1 / (2 - 2 * _KR)), [r, g, b]


def light(
    frames: torch.Tensor, log_gain: torch.Tensor | None, c: StageConstants, cfg: CalibrationConfig,
    keep_signal: bool, tables: Tables, shoulder: bool = True,
) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """frames (B, 3, 2, 2, H/2, W/2) uint8 as :func:`planes` lays them out, and the unweighted
    log gain widened by :func:`widen` (B, 2, h, W/2) or None →
    (4 luma code planes in :data:`SUBPIXELS` order, rounded float; the vertical means of Cb and
    Cr over the even column, then over the odd column (4 planes); with ``keep_signal`` the PQ
    R'G'B' of each pixel (12 planes, pixel by pixel)). ``shoulder`` as in
    :func:`~hdrvideo.pipeline.colour_stage.fused_light`."""
    ys, chroma, signal = [], {}, []
    for dr, dc in SUBPIXELS:
        g = None if log_gain is None else column_pass(log_gain, dr, dc, 2 * frames.shape[-2])
        y, cb, cr, rgb = _pixel([frames[:, i, dr, dc] for i in range(3)], g, c, cfg, tables, shoulder)
        ys.append(y)
        chroma[dr, dc] = (cb, cr)
        signal.extend(rgb)
    means = [0.5 * (chroma[0, col][i] + chroma[1, col][i]) for col in (0, 1) for i in (0, 1)]
    return (*ys, *means, *(signal if keep_signal else ()))


def subsample(
    even_cb: torch.Tensor, even_cr: torch.Tensor, odd_cb: torch.Tensor, odd_cr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The vertical chroma means of :func:`light` → (chroma codes (B, 2, h, w), rounded float: the
    [1, 2, 1]/4 filter centred on the even columns, edges replicated, as
    :func:`~hdrvideo.colour.ycbcr.chroma_downsample_420`; the same padded by one replicated
    sample above, below and to the right (B, 2, h + 2, w + 1))."""
    planes = []
    for even, odd in ((even_cb, odd_cb), (even_cr, odd_cr)):
        left = torch.cat((even[..., :1], odd[..., :-1]), dim=-1)  # column 2j − 1 (replicated at j = 0)
        planes.append(((0.25 * left + 0.5 * even + 0.25 * odd) * 896.0 + 512).round().clamp(0, 1023))
    uv = torch.stack(planes, dim=1)
    return uv, F.pad(uv, (0, 1, 1, 1), mode="replicate")


def limit(
    y00: torch.Tensor, y01: torch.Tensor, y10: torch.Tensor, y11: torch.Tensor, padded: torch.Tensor,
    peak_signal: float, eotf_table: torch.Tensor,
) -> tuple[list[torch.Tensor], torch.Tensor]:  # fmt: skip
    """The peak limit of :func:`~hdrvideo.pipeline.colour_stage.fused_limit` on quads: luma code
    planes and the padded chroma codes of :func:`subsample` → (the four luma code planes, rounded
    float; light levels (B, 2) = (max, mean) of max(R, G, B) in cd/m², of the planes as decoded).
    A decoder rebuilds chroma as :func:`~hdrvideo.colour.ycbcr.chroma_upsample_420` does: row 2k a
    quarter of the way from sample k to k − 1, row 2k + 1 to k + 1; column 2j at sample j, column
    2j + 1 half-way to j + 1."""
    h, w = y00.shape[-2:]
    rows = [padded[:, :, r : r + h] for r in range(3)]  # samples k − 1, k, k + 1
    even = 0.75 * rows[1] + 0.25 * rows[0]
    odd = 0.75 * rows[1] + 0.25 * rows[2]
    rebuilt = (even[..., :w], 0.5 * (even[..., :w] + even[..., 1:]), odd[..., :w], 0.5 * (odd[..., :w] + odd[..., 1:]))
    out, nits = [], []
    for y, ch in zip((y00, y01, y10, y11), rebuilt, strict=True):
        y, top = limit_pixel(y, ch[:, 0], ch[:, 1], peak_signal)
        out.append(y)
        nits.append(T.pq_eotf_lookup(top, eotf_table))
    n = torch.stack(nits, dim=1).flatten(1)
    return out, torch.stack((n.amax(1), n.mean(1)), dim=1)


def interleave(planes: list[torch.Tensor] | tuple[torch.Tensor, ...], dtype: torch.dtype) -> torch.Tensor:
    """Four (B, [C,] h, w) planes in :data:`SUBPIXELS` order → (B, [C,] 2h, 2w) of ``dtype``: four
    strided copies (0.9 ms for 1080p luma; compiled or stacked, 1.7–3 ms)."""
    *lead, h, w = planes[0].shape
    out = torch.empty(*lead, h, 2, w, 2, dtype=dtype, device=planes[0].device)
    for (dr, dc), plane in zip(SUBPIXELS, planes, strict=True):
        out[..., dr, :, dc].copy_(plane)
    return out.view(*lead, 2 * h, 2 * w)
