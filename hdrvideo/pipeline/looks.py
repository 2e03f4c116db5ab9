"""Looks (``--look``): where the SDR's mid-tones and rolled-off highlights land in HDR.

Real SDR/HDR pairs disagree on this, so it is the user's choice, not the model's:

- ``bt2408`` (default): the SDR grade kept. ITU-R BT.2408-7's SDR-in-HDR placement (SDR white
  at 203 cd/m², mid-tones exactly where the SDR put them), with the model's own curve (BT.2446-1
  Method C's shape above 58.5 % of white, for v4) and the network's gain on light the SDR rolled
  off or clipped. Camera pairs (gain-map photos) keep mid-tones so, as do HDR grades whose SDR
  was derived with a knee.
- ``aces``: an ACES 2.0 HDR master of the scene an ACES 2.0 SDR master shows. The Academy's
  output transforms (ACES 2.0, 2024) give the same scene a *different tone scale* in HDR: on the
  shared HDR scenes the HDR 1,000-nit transform puts the SDR's shadows and mid-tones at 0.67× of
  BT.2408's placement and lifts the whole upper half of the range, 1.5× at 60 % of SDR white and
  4.3× near white (``scripts/fit_aces_look.py`` prints the relation). This look replaces the
  model's curve by that relation, fitted on the training scenes, and keeps the network's gain on
  top (light the SDR clipped), behind a gate that opens later than v4's: what a studio's HDR deliverable of an ACES-graded SDR master would
  show. On the ACES validation pairs it is 12.4 dB (PU21) above the default look; on camera pairs
  and on formula renderings of HDR grades it is below it (docs/convert.md, "Looks").

A look is a set of :class:`~hdrvideo.pipeline.calibrate.CalibrationConfig` fields (the curve's
``curve_ip`` and ``curve_c``, ``white_nits``: where SDR white lands before the curve, and the
light gate's largest-channel ends, :data:`ACES_GATE`), so every colour path (eager, compiled,
quads) runs it unchanged.
"""

from __future__ import annotations

import math

__all__ = ["LOOKS", "ACES_FITS", "ACES_GATE", "aces_target_for", "look_settings"]

LOOKS = ("bt2408", "aces")
"""``--look``'s choices; the first is the default."""

ACES_FITS: dict[int, tuple[float, float, float]] = {
    500: (0.020, 23.390, 0.6009),
    1000: (0.045, 7.998, 0.6685),
    2000: (0.065, 4.677, 0.7336),
    4000: (0.090, 2.990, 0.7986),
}
"""ACES 2.0 HDR output transform (peak, cd/m²) → (ip, c, s): the HDR luminance of an unclipped
SDR pixel is ``203 · s · inverse_curve(Y_sdr, ip, c)`` cd/m² (BT.2446-1 Method C's inverse
shape, :func:`~hdrvideo.colour.bt2446.inverse_curve`; Y_sdr BT.1886 linear, 1 = SDR white), to a
log RMSE of 0.016 / 0.027 / 0.038 / 0.046 on the validation scenes (BT.2408's placement:
0.41 / 0.36 / 0.35 / 0.35). Fitted by ``scripts/fit_aces_look.py`` on the 56 training scenes at
−1, 0, +1 stops, 128 px (2026-12-06)."""


ACES_GATE = {"blend_lo": 0.90, "blend_hi": 0.98}
"""The light gate's largest-channel ends in the aces look (the model's own luma gate stays): its
curve already lifts a pixel whose largest channel is 0.85–0.9 by 3–4×, so the network's gain
starts later than v4's 0.85–0.97. Chosen on the ACES validation pairs (PU21 + ½ clipped, 3 × 3
grid of largest-channel and luma gates, 2026-12-06): v4 39.21 / 24.23 against 38.46 / 24.23
with its own gate, false highlights 1.07 % against 1.13 %; v4-cpu in fast mode 39.20 / 23.97
against 38.54 / 23.97; the authors' weights (their gate 0.95–0.99) 38.30 / 21.64 against 38.25 / 21.72."""


def aces_target_for(peak_nits: float) -> int:
    """The ACES 2.0 HDR output transform nearest (in stops) to ``peak_nits``: a studio masters
    to one of 500, 1,000, 2,000 or 4,000 cd/m²; the display shoulder then fits the output into the
    peak itself."""
    return min(ACES_FITS, key=lambda p: abs(math.log2(p / peak_nits)))


def look_settings(look: str, peak_nits: float, strength: float = 1.0) -> dict[str, float]:
    """The calibration fields of ``look`` at ``peak_nits`` (cd/m²), for
    :class:`~hdrvideo.pipeline.calibrate.CalibrationConfig`; {} for ``bt2408`` (the model's own).

    ``strength`` (``--strength``, in [0, 3]) scales the look's whole log gain, so 0 gives BT.2408
    alone in every look: SDR white at 203 × s^strength cd/m² (the curve's share is scaled by the
    processor's ``curve_strength``). Raises ValueError for an unknown look."""
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; choose from {', '.join(LOOKS)}")
    if look == "bt2408":
        return {}
    from ..colour import SDR_WHITE_NITS  # (here: settings import this module, and help starts without torch)

    ip, c, s = ACES_FITS[aces_target_for(peak_nits)]
    return {"curve_ip": ip, "curve_c": c, "white_nits": SDR_WHITE_NITS * s**strength, **ACES_GATE}
