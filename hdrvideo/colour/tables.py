"""Transfer functions as tables, for compiled per-pixel loops on a CPU.

A vectorised ``exp`` or ``log`` costs about twenty instructions; the colour stage needs nine
powers per pixel (BT.1886 and PQ's two per channel). Looked up in a table instead, the same
functions cost a gather or two and a multiply-add, and are *more* exact than the float32 formulas,
because the tables are computed in float64 (tests/test_tables.py):

- :func:`bt1886_table`: BT.1886 (ITU-R BT.1886 Annex 1) of all 256 8-bit codes: exact.
- :func:`pq_table` / :func:`pq_lookup`: SMPTE ST 2084 inverse EOTF, cd/m² → signal, indexed by
  the bits of the float32 argument: its exponent picks the octave, the top :data:`PQ_STEPS_LOG2`
  bits of its mantissa the step within it, and the rest of the mantissa interpolates linearly.
  Every octave from 2^-24 to 2^14 cd/m² gets the same number of steps, so the error is the same
  relative to the light everywhere (PQ is close to a function of log light): at most 2·10⁻⁷ of
  signal, 0.0002 of a 10-bit code.
- :func:`pq_eotf_table` / :func:`pq_eotf_lookup`: SMPTE ST 2084 EOTF, signal → cd/m², on a
  uniform grid of the signal (for light levels: within 0.01 cd/m² at 1,000 cd/m²).

Each step of the interpolated tables holds its start value and its rise, packed as the two halves
of one int64 (float32 bits), so that a lookup is one gather: in the compiled loop a gather is a
scalar load per lane, and one instead of two took 3 PQ lookups of a 1080p frame from 5.9 to 4.3 ms.

Shapes: any; the lookups are elementwise.
"""

from __future__ import annotations

import torch

from .transfer import PQ, PQ_PEAK_NITS, bt1886_eotf, pq_eotf

__all__ = [
    "PQ_STEPS_LOG2",
    "bt1886_table",
    "lookup",
    "pq_table",
    "pq_lookup",
    "pq_eotf_table",
    "pq_eotf_lookup",
]

PQ_STEPS_LOG2 = 8
"""Steps per octave of light in :func:`pq_table`: 2^8 = 256."""

PQ_LOW_OCTAVE, PQ_HIGH_OCTAVE = -24, 14
"""The table spans [2^-24, 2^14) cd/m² (6·10⁻⁸ to 16,384: beyond PQ's 10,000). Exact black gets
PQ(0); light between 0 and 2^-24 cd/m² the signal of 2^-24 (0.03 of a 10-bit code above black),
but the stage makes none: 2^-18 cd/m² is the least light an 8-bit code 1 gives through BT.2020."""

_MANTISSA_BITS = 23
_SHIFT = _MANTISSA_BITS - PQ_STEPS_LOG2
_FRACTION_MASK = (1 << _SHIFT) - 1
_FIRST_INDEX = (127 + PQ_LOW_OCTAVE) << PQ_STEPS_LOG2  # the biased float32 exponent of 2^-24, shifted

_PQ_OF_BLACK = PQ.C1**PQ.M2
"""SMPTE ST 2084 of 0 cd/m²: c1^m2 = 7.3·10⁻⁷."""

_LIGHT_STEPS = (PQ_HIGH_OCTAVE - PQ_LOW_OCTAVE) << PQ_STEPS_LOG2
"""Steps of :func:`pq_table`."""

PQ_EOTF_STEPS = 4096
"""Steps of the signal grid in :func:`pq_eotf_table`."""


def bt1886_table(device: torch.device | str = "cpu") -> torch.Tensor:
    """(256,) float32: BT.1886 (Lw = 1, Lb = 0) of 8-bit code k, (k/255)^2.4, relative light."""
    codes = torch.arange(256, dtype=torch.float64) / 255
    return bt1886_eotf(codes).to(device, torch.float32)


def _packed(values: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Values at the N + 1 knots of a table (float64) → (N,) int64 steps: the low 32 bits the
    float32 value at the step's start, the high 32 bits the float32 rise to the next knot."""
    knots = values.float()
    start = knots[:-1]
    rise = knots[1:] - start  # exact (Sterbenz): start + rise·frac never passes the next knot
    bits = (start.view(torch.int32).long() & 0xFFFFFFFF) | (rise.view(torch.int32).long() << 32)
    return bits.to(device)


def _lerp(table: torch.Tensor, i: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
    """Step i of a :func:`_packed` table at fraction frac ∈ [0, 1): start + rise·frac (float32)."""
    step = lookup(table, i)
    start = step.to(torch.int32).view(torch.float32)
    rise = (step >> 32).to(torch.int32).view(torch.float32)
    return start + rise * frac


def _light_lookup(light: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """A :func:`pq_table`-shaped table at ``light`` (any shape, float32 cd/m²; clamped to the table's span):
    the float's exponent and top mantissa bits index the step, the rest interpolates."""
    bits = light.clamp(2.0**PQ_LOW_OCTAVE, 2.0**PQ_HIGH_OCTAVE * 0.99999).view(torch.int32)
    i = ((bits >> _SHIFT) - _FIRST_INDEX).clamp(0, _LIGHT_STEPS - 1)  # a NaN too stays in the table
    frac = (bits & _FRACTION_MASK).float() * (1.0 / (1 << _SHIFT))
    return _lerp(table, i, frac)


def _pq_unclamped(nits: torch.Tensor) -> torch.Tensor:
    """ST 2084's inverse EOTF, not clamped at 10,000 cd/m² (as pq_inverse_eotf is), so that the
    step that holds 10,000 interpolates the curve itself."""
    y = (nits / PQ_PEAK_NITS) ** PQ.M1
    return ((PQ.C1 + PQ.C2 * y) / (1 + PQ.C3 * y)) ** PQ.M2


def lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 1-D table and indices (any shape) known to be in range, written as
    a ``gather``: TorchInductor then loads without the wrap of negative indices that indexing
    adds (with the bounds checks off, see :mod:`~hdrvideo.pipeline.compiled`, 8.3 → 6.1 ms for
    the fused stage of a 1080p frame)."""
    return torch.gather(table, 0, index.flatten().long()).view(index.shape)


def pq_table(device: torch.device | str = "cpu") -> torch.Tensor:
    """(38·256,) int64 :func:`_packed` steps for :func:`pq_lookup`: the PQ signal (SMPTE ST 2084,
    computed in float64) at knots 2^e·(1 + k/256) cd/m² for each octave e in [−24, 14) and step k,
    and 2^14."""
    steps = 1 << PQ_STEPS_LOG2
    octaves = torch.arange(PQ_LOW_OCTAVE, PQ_HIGH_OCTAVE, dtype=torch.float64)
    mantissa = 1 + torch.arange(steps, dtype=torch.float64) / steps
    nits = (torch.exp2(octaves)[:, None] * mantissa[None]).flatten()
    return _packed(_pq_unclamped(torch.cat((nits, nits.new_tensor([2.0**PQ_HIGH_OCTAVE])))), device)


def pq_lookup(nits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 inverse EOTF by :func:`pq_table`: light (any shape) float32 cd/m², ≥ 0 →
    signal in [0, 1] (light above 10,000 cd/m² is not clamped to 1: clamp it before)."""
    return torch.where(nits > 0, _light_lookup(nits, table), _PQ_OF_BLACK)


def pq_eotf_table(device: torch.device | str = "cpu") -> torch.Tensor:
    """(4096,) int64 :func:`_packed` steps: cd/m² of the PQ signals k/4096 and up to the next
    (SMPTE ST 2084 EOTF, float64)."""
    signal = torch.arange(PQ_EOTF_STEPS + 1, dtype=torch.float64) / PQ_EOTF_STEPS
    return _packed(pq_eotf(signal), device)


def pq_eotf_lookup(signal: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """SMPTE ST 2084 EOTF by :func:`pq_eotf_table`: PQ signal (any shape, clamped to [0, 1]) → cd/m²."""
    t = signal.clamp(0, 1) * PQ_EOTF_STEPS
    i = t.floor().clamp(max=PQ_EOTF_STEPS - 1)
    return _lerp(table, i.int().clamp(0, PQ_EOTF_STEPS - 1), t - i)  # clamped again: a NaN stays in the table
