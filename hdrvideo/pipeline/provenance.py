"""What made an output: one line naming the expansion, written into the file where the container
keeps free-form tags (:data:`~hdrvideo.media.info.MADE_BY_TAG`), and read back by ``hdrvideo info``.

A catalogue converted over weeks ends up with files from several models, looks and strengths;
the file itself then says which (``hdrvideo info out.mkv``: "made by: hdrvideo 0.1.0,
hdrvideo-expandnet-v4, full resolution, look aces, strength 1, PQ 1000 cd/m²").

Where it is written: Matroska (a ``HDRVIDEO`` tag) and NUT (``hdrvideo``), which keep any
tag. MP4 and MOV keep only their own keys unless the muxer writes QuickTime ``mdta`` keys for
*all* metadata, which moves the title and comment to keys Apple's players do not read; so they do
not carry it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["describe"]


def describe(processor: Any) -> str:
    """The line for a :class:`~hdrvideo.pipeline.processor.FrameProcessor`: version, the model's
    name (its metadata's, else the weights' file name; or the formula, or BT.2408 alone), the
    network's resolution, look, strength, transfer and peak."""
    from .. import __version__

    parts = [f"hdrvideo {__version__}"]
    model = processor.model
    if processor.method is not None:
        parts.append(f"method {processor.method}")
    elif model is None:
        parts.append("BT.2408 alone (no expansion)")
    else:
        source = getattr(model, "source", None)
        name = getattr(model, "metadata", {}).get("name") or (Path(source).name if source else "ExpandNet")
        parts.append(name)
        side = processor.net_long_side
        parts.append("full resolution" if side is None else f"network at {side} px")
    if processor.method is None:
        parts.append(f"look {processor.look}")
        parts.append(f"strength {processor.cfg.curve_strength:g}")
    parts.append(f"{processor.transfer.upper()} {processor.cfg.peak_nits:g} cd/m²")
    return ", ".join(parts)

