"""hdrvideo: SDR → HDR10 / HLG video with ExpandNet.

Public API:
- :func:`load_model` — ExpandNet in eval mode, from our shipped weights or a path.
- :class:`ExpandNet` — the network; ``model(x)``: (B, 3, H, W) SDR signal in [0, 1] →
  (B, 3, H, W) relative linear HDR in [0, 1].
- :class:`FrameProcessor` — decoded SDR frames → PQ/HLG BT.2020 signal and 10-bit Y'CbCr 4:2:0.
"""

from .model import ExpandNet, ExpandNetConfig, WeightsError, load_model, save_model
from .pipeline.processor import FrameProcessor, HDRBatch

__version__ = "0.1.0"

__all__ = [
    "ExpandNet",
    "ExpandNetConfig",
    "FrameProcessor",
    "HDRBatch",
    "WeightsError",
    "load_model",
    "save_model",
    "__version__",
]
