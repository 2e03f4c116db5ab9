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

__all__ = ["describe", "setting_items", "SETTING_WORDS"]

SETTING_WORDS = ("method", "look", "strength", "PQ", "HLG")
"""The first words of the line's items that :func:`setting_items` writes."""


def setting_items(method: str | None, look: str, strength: float, transfer: str, peak_nits: float) -> list[str]:
    """The line's items a conversion's settings decide: the formula (``method``, None for the
    network's expansion) or the look and strength, then the transfer and peak (cd/m²). A batch
    compares them with a kept output's (:func:`hdrvideo.commands.jobs.made_otherwise`)."""
    items = [f"method {method}"] if method is not None else [f"look {look}", f"strength {strength:g}"]
    return [*items, f"{transfer.upper()} {peak_nits:g} cd/m²"]


def describe(processor: Any) -> str:
    """The line for a :class:`~hdrvideo.pipeline.processor.FrameProcessor`: version, the model's
    name (its metadata's, else the weights' file name; or the formula, or BT.2408 alone), the
    network's resolution, then :func:`setting_items`."""
    from .. import __version__

    parts = [f"hdrvideo {__version__}"]
    model = processor.model
    if processor.method is None and model is None:
        parts.append("BT.2408 alone (no expansion)")
    elif processor.method is None:
        source = getattr(model, "source", None)
        parts.append(getattr(model, "metadata", {}).get("name") or (Path(source).name if source else "ExpandNet"))
        side = processor.net_long_side
        parts.append("full resolution" if side is None else f"network at {side} px")
    cfg = processor.cfg
    parts += setting_items(processor.method, processor.look, cfg.curve_strength, processor.transfer, cfg.peak_nits)
    return ", ".join(parts)
