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

__all__ = ["ExpandNet", "ExpandNetConfig", "load_model", "save_model", "default_weights_path"]

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

    @classmethod
    def from_dict(cls, d: dict) -> ExpandNetConfig:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__})


def _layer(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0, dil: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, dil), nn.SELU(inplace=True))


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
        self.end_net = nn.Sequential(_layer(fused, c.fuse_width, 1), nn.Conv2d(c.fuse_width, 3, 1), nn.Sigmoid())

    # -- pieces -----------------------------------------------------------------------------
    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) input → (B, C_glob, 1, 1) global feature vector of the whole frame."""
        small = F.interpolate(x, size=(GLOBAL_SIZE, GLOBAL_SIZE), mode="bilinear", align_corners=False)
        return self.glob_net(small)

    def fuse(self, x: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
        """Full-resolution branches on x (B, 3, h, w), fused with glob (B, C, 1, 1) → (B, 3, h, w)."""
        local = self.local_net(x)
        mid = self.mid_net(x)
        b, _, h, w = local.shape
        g = glob.expand(b, glob.shape[1], h, w)
        return self.end_net(torch.cat((local, mid, g), dim=1))

    # -- forward ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, tile: int | None = None, overlap: int = 16) -> torch.Tensor:
        """Expand x (B, 3, H, W) in [0, 1] to relative linear HDR (B, 3, H, W) in [0, 1].

        tile: if given, the full-resolution branches run on tiles of at most ``tile``×``tile``
        output pixels with ``overlap`` pixels of context on each side (≥ 8 keeps it exact), which
        bounds activation memory to about ``(tile + 2·overlap)² · 256`` values per frame.
        """
        glob = self.global_features(x)
        _, _, h, w = x.shape
        if tile is None or (h <= tile and w <= tile):
            return self.fuse(x, glob)
        if overlap < self.receptive_radius:
            raise ValueError(f"tile overlap must be at least {self.receptive_radius} px to stay exact, got {overlap}")
        out = torch.empty_like(x)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
                yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
                part = self.fuse(x[:, :, ya:yb, xa:xb], glob)
                out[:, :, y0:y1, x0:x1] = part[:, :, y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return out


# -- weights ----------------------------------------------------------------------------------

_PACKAGE_MODELS = Path(__file__).resolve().parent / "models"
_REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL_NAME = "hdrvideo-expandnet-v2"


def default_weights_path() -> Path | None:
    """Where the shipped default weights are (inside the wheel, or the repo's models/), or None."""
    for root in (_PACKAGE_MODELS, _REPO_MODELS):
        p = root / DEFAULT_MODEL_NAME / "model.safetensors"
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
    return model.to(device=device, dtype=dtype).eval()


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
