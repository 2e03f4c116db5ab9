"""hdrvideo: SDR → HDR10 / HLG video with ExpandNet.

Public API:
- :func:`load_model` — ExpandNet in eval mode, from our shipped weights or a path.
- :class:`ExpandNet` — the network; ``model(x)``: (B, 3, H, W) SDR signal in [0, 1] →
  (B, 3, H, W) relative linear HDR in [0, 1].
- :class:`FrameProcessor` — decoded SDR frames → PQ/HLG BT.2020 signal and 10-bit Y'CbCr 4:2:0.

The names load on first use (PEP 562), so that ``hdrvideo --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_API = {
    "ExpandNet": "model",
    "ExpandNetConfig": "model",
    "WeightsError": "model",
    "load_model": "model",
    "save_model": "model",
    "FrameProcessor": "pipeline.processor",
    "HDRBatch": "pipeline.processor",
}

__all__ = [*_API, "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs
    from .model import ExpandNet, ExpandNetConfig, WeightsError, load_model, save_model  # noqa: F401
    from .pipeline.processor import FrameProcessor, HDRBatch  # noqa: F401


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hdrvideo' has no attribute {name!r}")
