"""Frames in, codes out: the per-frame path every command shares (decode → expand → colour → temporal).

- :mod:`.settings`: one :class:`ConversionSettings` (model, processor and encoder settings) and
  the one place that builds the model and the processor from it.
- :mod:`.processor`: :class:`FrameProcessor`: SDR frames → PQ/HLG 10-bit Y'CbCr 4:2:0 planes.
- :mod:`.calibrate`: the network's relative output → display light (fit, gate, gain, shoulder).
- :mod:`.looks`: ``--look``: where mid-tones land (the SDR grade kept, or ACES 2.0's placement).
- :mod:`.provenance`: the line that says what made an output.
- :mod:`.temporal`: the causal filter that keeps the expansion steady from frame to frame.
- :mod:`.memory`: CPU memory tuning (glibc) and CPU feature checks.

Imports :mod:`hdrvideo.model`, :mod:`hdrvideo.colour` and :mod:`hdrvideo.media`.
"""
