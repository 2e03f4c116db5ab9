"""ExpandNet (Marnerides et al., Computer Graphics Forum 2018), faithful to the authors' code.

The network maps one display-encoded SDR frame to relative linear HDR:

    x: (B, 3, H, W) RGB in [0, 1], exactly as decoded from the SDR frame (no min-max stretch)
    y: (B, 3, H, W) relative linear HDR in [0, 1] (sigmoid output; no absolute level)

Three branches see the input:

- ``local_net``: two 3×3 convolutions (64, 128 channels), full resolution, receptive radius 2 px;
- ``mid_net``: four 3×3 convolutions with dilation 2 (64 channels), receptive radius 8 px;
- ``glob_net``: the whole frame resized bilinearly to 256×256, six stride-2 convolutions and a
  4×4 convolution down to one 64-vector, broadcast over the frame.

Their features are concatenated (local, mid, global: 256 channels) and fused by two 1×1
convolutions and a sigmoid. Every ``X.0`` layer is a convolution followed by SELU, so the state
dict has exactly the authors' key names and loads their published ``weights.pth`` unchanged.

The **recurrent variant** (``temporal_width`` > 0; selected by the weights file) adds a fourth,
causal branch for video: the frame scaled down :data:`TEMPORAL_SCALE`× (area), two 3×3 convolutions
and a convolutional GRU whose state (B, C_t, H/8, W/8) is carried from frame to frame; the state,
carried up bilinearly, joins the fused features. Started from a per-frame model with its new
inputs to the fusion at zero (:func:`widen_to_recurrent`), it gives that model's output exactly
until training teaches it to use the state. ``forward(x, state=h, return_state=True)`` →
``(y, h')``; without ``state`` it starts from zeros (a first frame, or a still).

Because the full-resolution branches only see 8 pixels around each output pixel, the frame can be
processed in overlapping tiles (``tile=``) with the global vector still computed from the whole
frame: with an overlap of at least 8 px the tiled result equals the full-frame one up to float
rounding. Widths are configurable so that narrower, faster variants can be trained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ExpandNet",
    "ExpandNetConfig",
    "ConvGRUCell",
    "load_model",
    "save_model",
    "default_weights_path",
    "CPU_FAST_MODEL_NAME",
    "widen_to_recurrent",
    "gain_scale",
    "expansion_settings",
    "EXPANSION_KEY",
]

TEMPORAL_SCALE = 8
"""The recurrent branch works at 1/8 of the network's input resolution."""

GLOBAL_SIZE = 256
"""Side of the square frame the global branch sees (the authors' value)."""

RECEPTIVE_RADIUS = 8
"""Pixels of context each full-resolution output pixel depends on in the authors' network (the
dilated branch's reach); ``ExpandNet.receptive_radius`` gives it for other depths."""


@dataclass(frozen=True)
class ExpandNetConfig:
    """Architecture hyper-parameters. The defaults are the authors' network (456,899 parameters)."""

    local_width: int = 64
    local_out: int = 128
    mid_width: int = 64
    glob_width: int = 64
    fuse_width: int = 64
    mid_depth: int = 4  # dilated 3×3 convolutions in mid_net (receptive radius 2 px each)
    temporal_width: int = 0  # channels of the recurrent branch's state; 0: a per-frame network

    @classmethod
    def from_dict(cls, d: dict) -> ExpandNetConfig:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__})


def _layer(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0, dil: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, dil), nn.SELU(inplace=True))


class ConvGRUCell(nn.Module):
    """A convolutional GRU (3×3 gates): x (B, C_in, h, w) and state (B, C, h, w) → new state."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.gates = nn.Conv2d(c_in + c, 2 * c, 3, 1, 1)
        self.cand = nn.Conv2d(c_in + c, c, 3, 1, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.gates(torch.cat((x, h), 1))).chunk(2, 1)
        n = torch.tanh(self.cand(torch.cat((x, r * h), 1)))
        return (1 - z) * h + z * n


class ExpandNet(nn.Module):
    """LDR → relative linear HDR expansion network.

    ``forward(x)``: x (B, 3, H, W) display-encoded RGB in [0, 1], any H and W;
    returns (B, 3, H, W) relative linear HDR in [0, 1] in the dtype of the weights.
    """

    def __init__(self, config: ExpandNetConfig | None = None) -> None:
        super().__init__()
        c = config or ExpandNetConfig()
        self.config = c
        self.local_net = nn.Sequential(_layer(3, c.local_width, 3, 1, 1), _layer(c.local_width, c.local_out, 3, 1, 1))
        if c.mid_depth < 2:
            raise ValueError(f"mid_depth must be at least 2, got {c.mid_depth}")
        mids = [_layer(3 if i == 0 else c.mid_width, c.mid_width, 3, 1, 2, 2) for i in range(c.mid_depth - 1)]
        self.mid_net = nn.Sequential(*mids, nn.Conv2d(c.mid_width, c.mid_width, 3, 1, 2, 2))
        self.receptive_radius = max(2, 2 * c.mid_depth)
        glob = [_layer(3, c.glob_width, 3, 2, 1)] + [_layer(c.glob_width, c.glob_width, 3, 2, 1) for _ in range(5)]
        self.glob_net = nn.Sequential(*glob, nn.Conv2d(c.glob_width, c.glob_width, 4, 1, 0))
        fused = c.local_out + c.mid_width + c.glob_width
        if c.temporal_width > 0:
            tw = c.temporal_width
            self.temporal_in = nn.Sequential(_layer(3, tw, 3, 1, 1), _layer(tw, tw, 3, 1, 1))
            self.temporal_gru = ConvGRUCell(tw, tw)
            fused += tw
        self.end_net = nn.Sequential(_layer(fused, c.fuse_width, 1), nn.Conv2d(c.fuse_width, 3, 1), nn.Sigmoid())

    # -- pieces -----------------------------------------------------------------------------
    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) input → (B, C_glob, 1, 1) global feature vector of the whole frame."""
        small = F.interpolate(x, size=(GLOBAL_SIZE, GLOBAL_SIZE), mode="bilinear", align_corners=False)
        return self.glob_net(small)

    @property
    def recurrent(self) -> bool:
        return self.config.temporal_width > 0

    def temporal_state(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """The recurrent branch: (B, 3, H, W) input and the previous state (or None: zeros) →
        the new state (B, C_t, ⌈H/8⌉, ⌈W/8⌉)."""
        size = (max(1, -(-x.shape[-2] // TEMPORAL_SCALE)), max(1, -(-x.shape[-1] // TEMPORAL_SCALE)))
        feat = self.temporal_in(F.adaptive_avg_pool2d(x, size))
        if state is None or state.shape != feat.shape:
            state = torch.zeros_like(feat)
        return self.temporal_gru(feat, state.to(feat.dtype))

    def fuse(self, x: torch.Tensor, glob: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Full-resolution branches on x (B, 3, h, w), fused with glob (B, C, 1, 1) and, in the
        recurrent variant, the state carried up to this region (B, C_t, h, w) → (B, 3, h, w)."""
        local = self.local_net(x)
        mid = self.mid_net(x)
        b, _, h, w = local.shape
        g = glob.expand(b, glob.shape[1], h, w)
        parts = (local, mid, g) if context is None else (local, mid, g, context)
        return self.end_net(torch.cat(parts, dim=1))

    # -- forward ----------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        tile: int | None = None,
        overlap: int = 16,
        state: torch.Tensor | None = None,
        return_state: bool = False,
    ):
        """Expand x (B, 3, H, W) in [0, 1] to relative linear HDR (B, 3, H, W) in [0, 1].

        tile: if given, the full-resolution branches run on tiles of at most ``tile``×``tile``
        output pixels with ``overlap`` pixels of context on each side (≥ 8 keeps it exact), which
        bounds activation memory to about ``(tile + 2·overlap)² · 256`` values per frame.
        state / return_state: the recurrent variant's state in and out (see the module doc);
        with ``return_state`` → (y, new state), the state None for a per-frame network.
        """
        glob = self.global_features(x)
        _, _, h, w = x.shape
        new_state = context = None
        if self.recurrent:
            new_state = self.temporal_state(x, state)
            context = F.interpolate(new_state, size=(h, w), mode="bilinear", align_corners=False)
        if tile is None or (h <= tile and w <= tile):
            y = self.fuse(x, glob, context)
            return (y, new_state) if return_state else y
        if overlap < self.receptive_radius:
            raise ValueError(f"tile overlap must be at least {self.receptive_radius} px to stay exact, got {overlap}")
        out = torch.empty_like(x)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
                yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
                ctx = None if context is None else context[:, :, ya:yb, xa:xb]
                part = self.fuse(x[:, :, ya:yb, xa:xb], glob, ctx)
                out[:, :, y0:y1, x0:x1] = part[:, :, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return (out, new_state) if return_state else out


# -- weights ----------------------------------------------------------------------------------

_PACKAGE_MODELS = Path(__file__).resolve().parent / "models"
_REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL_NAME = "hdrvideo-expandnet-v4"


CPU_FAST_MODEL_NAME = "hdrvideo-expandnet-v4-cpu"
"""The shipped model distilled for fast mode on a CPU (16 channels; models/ has its card)."""


def default_weights_path(name: str = DEFAULT_MODEL_NAME) -> Path | None:
    """Where the shipped weights ``name`` are (inside the wheel, or the repo's models/), or None."""
    for root in (_PACKAGE_MODELS, _REPO_MODELS):
        p = root / name / "model.safetensors"
        if p.is_file():
            return p
    return None


class WeightsError(RuntimeError):
    """Weights missing, unreadable, or not an ExpandNet."""


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}
            return state, meta
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure is one clear message
        raise WeightsError(f"cannot read weights {path}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return state, {}


def _config_from_state(state: dict[str, torch.Tensor]) -> ExpandNetConfig:
    try:
        return ExpandNetConfig(
            local_width=state["local_net.0.0.weight"].shape[0],
            local_out=state["local_net.1.0.weight"].shape[0],
            mid_width=state["mid_net.0.0.weight"].shape[0],
            glob_width=state["glob_net.0.0.weight"].shape[0],
            fuse_width=state["end_net.0.0.weight"].shape[0],
            mid_depth=1 + sum(1 for k in state if k.startswith("mid_net.") and k.endswith(".0.weight")),
            temporal_width=state["temporal_in.0.0.weight"].shape[0] if "temporal_in.0.0.weight" in state else 0,
        )
    except KeyError as e:
        raise WeightsError(f"not ExpandNet weights: missing key {e}") from None


def load_model(
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> ExpandNet:
    """Load ExpandNet in eval mode.

    weights: None for the project's shipped default; a path to the authors' ``.pth`` state dict
    or to one of our ``.safetensors`` files (whose metadata records the architecture).
    device: "cuda", "cpu", … (default: CUDA when available, else CPU).
    """
    if weights is None:
        weights = default_weights_path()
        if weights is None:
            raise WeightsError(
                "no default weights are shipped in this install yet: pass weights=PATH (--weights), "
                "e.g. the authors' ExpandNet weights.pth or a .safetensors from `hdrvideo train`"
            )
    path = Path(weights)
    state, meta = _read_state(path)
    config = ExpandNetConfig.from_dict(json.loads(meta["config"])) if "config" in meta else _config_from_state(state)
    model = ExpandNet(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"{path} does not match the ExpandNet architecture: {first}") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.metadata = meta  # type: ignore[attr-defined]
    model.source = path  # type: ignore[attr-defined]  # (what made an output names it: pipeline/provenance.py)
    gain_scale(model)  # a bad value is an error of the file, said when it is loaded
    expansion_settings(model)
    return model.to(device=device, dtype=dtype).eval()


GAIN_SCALE_KEY = "gain_scale"
"""Metadata key of a model's calibrated expansion strength (see :func:`gain_scale`)."""


def gain_scale(model: ExpandNet | None) -> float:
    """How bold this model's expansion is meant to be: the factor on its log gain at ``--strength 1``.

    Read from the weights' metadata (``gain_scale``, written by ``save_model``); 1.0 for weights
    without it (the authors' ``.pth``, earlier releases). A network trained with a penalty on
    over-expansion learns to be timid where it is unsure; its gain scale, chosen on the graded
    validation split, gives clipped light back the headroom a grade would. Raises WeightsError for
    a value that is not a number in (0, 4]."""
    raw = getattr(model, "metadata", {}).get(GAIN_SCALE_KEY) if model is not None else None
    if raw is None:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 4.0:
        raise WeightsError(f"the weights' {GAIN_SCALE_KEY} must be a number in (0, 4], got {raw!r}")
    return value


EXPANSION_KEY = "expansion"
"""Metadata key of a model's expansion settings: a JSON object of
:class:`~hdrvideo.pipeline.calibrate.CalibrationConfig` fields (the smooth curve under the
network's gain, the light gate), chosen with the model on validation pairs."""

EXPANSION_FIELDS = {
    "curve_ip": (0.0, 0.99), "curve_c": (0.01, 10.0),
    "blend_lo": (0.0, 1.0), "blend_hi": (0.0, 1.0), "luma_lo": (0.0, 1.0), "luma_hi": (0.0, 1.0),
    "area_lo": (0.0, 1.0), "area_hi": (0.0, 1.0), "area_cells": (2.0, 64.0),
}  # fmt: skip
"""The fields a model's metadata may set, with their allowed ranges."""


def expansion_settings(model: ExpandNet | None) -> dict[str, float]:
    """The calibration fields this model was chosen with (:data:`EXPANSION_KEY`), {} for weights
    without them (the authors' ``.pth``, releases before v4). Raises WeightsError for anything
    but a JSON object of known fields with numbers in range, and for a gate whose ends are
    reversed."""
    raw = getattr(model, "metadata", {}).get(EXPANSION_KEY) if model is not None else None
    if raw is None:
        return {}
    try:
        d = json.loads(raw)
        if not isinstance(d, dict):
            raise ValueError
        out = {k: float(v) for k, v in d.items()}
    except (ValueError, TypeError):
        raise WeightsError(f"the weights' {EXPANSION_KEY} must be a JSON object of numbers, got {raw!r}") from None
    for k, v in out.items():
        if k not in EXPANSION_FIELDS:
            raise WeightsError(f"the weights' {EXPANSION_KEY} has an unknown field {k!r}")
        lo, hi = EXPANSION_FIELDS[k]
        if not lo <= v <= hi:
            raise WeightsError(f"the weights' {EXPANSION_KEY} field {k} must be in [{lo}, {hi}], got {v:g}")
    for a, b in (("blend_lo", "blend_hi"), ("luma_lo", "luma_hi"), ("area_lo", "area_hi")):
        if a in out and b in out and out[a] >= out[b]:
            raise WeightsError(f"the weights' {EXPANSION_KEY}: {a} must be below {b}")
    return out


def save_model(model: ExpandNet, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write weights as safetensors with the architecture (and any metadata) in the header, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"format": "hdrvideo-expandnet", "config": json.dumps(asdict(model.config))}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def widen_to_recurrent(model: ExpandNet, temporal_width: int) -> ExpandNet:
    """A recurrent ExpandNet holding ``model``'s weights, whose output equals ``model``'s until
    trained: the fusion's weights for the new state channels start at zero (the branch itself
    is initialised as PyTorch initialises any layer)."""
    if model.recurrent:
        return model
    cfg = ExpandNetConfig(**{**asdict(model.config), "temporal_width": temporal_width})
    wide = ExpandNet(cfg).to(next(model.parameters()).device)
    state = wide.state_dict()
    for k, v in model.state_dict().items():
        if k == "end_net.0.0.weight":
            state[k].zero_()
            state[k][:, : v.shape[1]] = v
        else:
            state[k] = v
    wide.load_state_dict(state)
    return wide
