"""Choosing the weights a run ships: an exponential moving average, scored on graded pairs.

Fine-tuning on two CPU cores with small batches swings from one checkpoint to the next between a
bold model (more light on clipped pixels, more false highlights) and a timid one. Two things steady
the choice:

- :class:`WeightAverage`: an exponential moving average of the weights
  (:class:`torch.optim.swa_utils.AveragedModel` with its EMA update; the well-kept PyTorch
  implementation, rather than our own loop). Validation, ``model.safetensors`` and
  ``best.safetensors`` use the averaged weights; the optimiser keeps training the raw ones.
- :class:`GradedValidation` (``train --val-pairs``): the graded-pair evaluation of
  :mod:`~hdrvideo.training.graded` on a validation split (videos only, frames between those
  ``eval --pairs`` scores: :func:`~.graded.load_references` with ``validation=True``), run through
  :class:`~hdrvideo.pipeline.processor.FrameProcessor` as ``convert`` runs it.
  ``best.safetensors`` is the checkpoint with the highest :func:`selection_score`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..model import ExpandNet
from .graded import PHOTO, load_references, make_pairs, score_pairs

__all__ = ["WeightAverage", "GradedValidation", "selection_score", "interpolate", "FALSE_HL_BUDGET", "FALSE_HL_COST_DB"]

FALSE_HL_BUDGET = 0.3
"""False highlights (% of the pixels not above SDR white) that :func:`selection_score` lets pass free."""
FALSE_HL_COST_DB = 10.0
"""What each percentage point of false highlights above :data:`FALSE_HL_BUDGET` costs, in dB."""


def selection_score(overall: dict[str, float]) -> float:
    """One number to choose weights by, from :func:`~.graded.score_pairs`' overall means (dB):
    PU21-PSNR + ½ × PU21-PSNR on SDR-clipped pixels − :data:`FALSE_HL_COST_DB` per percentage
    point of false highlights above :data:`FALSE_HL_BUDGET`.

    The boldest picture within a budget of false light: a bolder model buys light on clipped
    pixels with false highlights, a more timid one the other way round, and below a small share
    false highlights are not worth giving up true light for (a plain linear cost drifted the
    choice towards ever more timid checkpoints)."""
    clipped = overall["pu21_clipped"]
    clipped = 0.0 if not math.isfinite(clipped) else clipped
    over = max(0.0, overall["false_hl"] - FALSE_HL_BUDGET)
    return overall["pu21_psnr"] + 0.5 * clipped - FALSE_HL_COST_DB * over


def interpolate(a: ExpandNet, b: ExpandNet, alpha: float) -> ExpandNet:
    """Weights (1 − alpha)·a + alpha·b, in a copy of ``a`` (same architecture): the robust
    fine-tuning of Wortsman et al. 2022 (WiSE-FT), from a model to its fine-tune. alpha in [0, 1]."""
    import copy

    if a.config != b.config:
        raise ValueError("interpolating needs the same architecture on both sides")
    out = copy.deepcopy(a)
    sb = b.state_dict()
    with torch.no_grad():
        for k, v in out.state_dict().items():
            if v.is_floating_point():
                v.lerp_(sb[k].to(v), alpha)
    return out


class WeightAverage:
    """Exponential moving average of a model's weights (``decay`` per step; 0 turns it off, and
    :attr:`module` is then the model itself). The first :meth:`update` takes the weights as they
    are; each later one moves the average ``1 − decay`` of the way to them."""

    def __init__(self, model: ExpandNet, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True) if decay else None
        self._model = model

    @property
    def module(self) -> ExpandNet:
        """The weights to validate and save: the average (or the model when off)."""
        return self.averaged.module if self.averaged is not None else self._model

    def update(self) -> None:
        if self.averaged is not None:
            self.averaged.update_parameters(self._model)

    def state_dict(self) -> dict | None:
        return self.averaged.state_dict() if self.averaged is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        """Restore a checkpoint's average; a checkpoint without one starts it from the current weights."""
        if self.averaged is None:
            return
        if state is None:
            self.averaged.module.load_state_dict(self._model.state_dict())
            self.averaged.n_averaged.fill_(1)
        else:
            self.averaged.load_state_dict(state)


class GradedValidation:
    """Graded pairs made once (references from ``folders``, every SDR rendering, 8-bit and H.264),
    scored each validation step through a ``convert``-like processor at ``peak_nits``."""

    def __init__(
        self, folders: list[str | Path], max_side: int = 384, frames_per_clip: int = 1, crf: int = 20, log=print
    ) -> None:
        refs = load_references(folders, max_side, frames_per_clip, log=log, validation=True)
        if not refs:
            raise ValueError(f"no PQ/HLG video with at least 3 frames under {', '.join(map(str, folders))}")
        self.pairs = [p for p in make_pairs(refs, crf=crf) if p.rendering != PHOTO]
        self.references = len(refs)

    @torch.no_grad()
    def __call__(self, model: ExpandNet, peak_nits: float = 1000.0) -> dict[str, float]:
        """→ the overall means of :func:`~.graded.score_pairs` plus ``score`` (:func:`selection_score`)."""
        from ..pipeline.processor import FrameProcessor

        was_training = model.training
        model.eval()
        try:
            proc = FrameProcessor(model, "pq", peak_nits)
            overall = dict(score_pairs(proc, self.pairs).overall)
        finally:
            model.train(was_training)
        overall["score"] = selection_score(overall)
        return overall
