"""Studio-made SDR/HDR pairs: one scene through the ACES 2.0 SDR and HDR output transforms.

This is how real SDR and HDR masters of the same picture are made: a colourist grades scene
light once, and the SDR and HDR deliverables come out of the display's output transform
(ACES 2.0, Academy 2024). Both keep highlights rolled off rather than clipped, with coloured light
coloured, so an expansion judged on these pairs is judged on what a real SDR grade lost, not on
what a formula rendering clipped (``eval --pairs`` once rewarded a near-white light gate that
real grades punish: docs/train-and-evaluate.md).

The transforms come from OpenColorIO's built-in studio config (``studio-config-latest``,
nothing downloaded): the scene (linear BT.709 primaries, as :func:`~hdrvideo.media.hdrio.read_hdr_image`
gives it) exposed so that the median luminance of the picture is 0.18 (an 18 % grey card,
``exposure`` stops from it), then

- SDR: ``ACES 2.0 - SDR 100 nits (Rec.709)`` on ``Rec.1886 Rec.709 - Display``, quantised to 8
  bits: the input, a BT.709 BT.1886 signal;
- HDR: ``ACES 2.0 - HDR 1000 nits (Rec.2020)`` on ``Rec.2100-PQ - Display`` (or another of
  :data:`HDR_TARGETS`), the PQ signal decoded (SMPTE ST 2084) to BT.2020 light in cd/m²: the
  reference.

Scenes are split by name as training splits them (:func:`~hdrvideo.training.data.held_out`):
``test``, the scenes training never sees; ``validation``, a further 15 % of the rest, on which
settings are chosen; ``train``, the others.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import colour
from ..media.hdrio import MediaError, find_media, read_hdr_image
from .data import held_out

__all__ = [
    "SCENE_SPACE", "SDR_TARGET", "HDR_TARGETS", "AcesRenderer", "scene_split", "aces_scenes", "ACES_SET", "pack_pairs",
]  # fmt: skip

SCENE_SPACE = "Linear Rec.709 (sRGB)"
SDR_TARGET = ("Rec.1886 Rec.709 - Display", "ACES 2.0 - SDR 100 nits (Rec.709)")
HDR_TARGETS = {
    name: ("Rec.2100-PQ - Display", f"ACES 2.0 - HDR {nits} nits ({gamut})")
    for nits in (500, 1000, 2000, 4000)
    for gamut, name in (("Rec.2020", f"{nits}"), ("P3 D65", f"{nits}-p3"))
}
"""``--aces-target``: the HDR output transforms (all on the Rec.2100-PQ display, BT.2020 container)."""
ACES_SET = "ACES 2.0 pairs"
"""The set name these pairs are reported under."""

TEST_FRACTION = 0.1
"""The share of scenes training holds out (``train``'s default ``--val-fraction``): the test split."""
VALIDATION_FRACTION = 0.15
"""Of the remaining scenes, the share settings are chosen on."""


def scene_split(name: str) -> str:
    """``test``, ``validation`` or ``train`` for a scene file name (stable, by hash)."""
    if held_out(name, TEST_FRACTION):
        return "test"
    return "validation" if held_out(name + "#aces-validation", VALIDATION_FRACTION) else "train"


class AcesRenderer:
    """The two output transforms, ready to apply. target: a key of :data:`HDR_TARGETS`."""

    def __init__(self, target: str = "1000") -> None:
        try:
            import PyOpenColorIO as ocio
        except ImportError:
            raise MediaError("ACES pairs need OpenColorIO: pip install opencolorio") from None
        if target not in HDR_TARGETS:
            raise MediaError(f"unknown ACES HDR target {target!r}; choose from {', '.join(HDR_TARGETS)}")
        cfg = ocio.Config.CreateFromBuiltinConfig("studio-config-latest")
        fwd = ocio.TransformDirection.TRANSFORM_DIR_FORWARD

        def cpu(display: str, view: str):
            return cfg.getProcessor(SCENE_SPACE, display, view, fwd).getDefaultCPUProcessor()

        self.target = target
        self.peak_nits = float(target.split("-")[0])
        self._sdr = cpu(*SDR_TARGET)
        self._hdr = cpu(*HDR_TARGETS[target])

    def _apply(self, proc, scene: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(scene, dtype=np.float32).copy()
        proc.applyRGB(out)
        return out

    def sdr_signal(self, scene: np.ndarray) -> np.ndarray:
        """Scene light (H, W, 3) float32, BT.709 → SDR signal (H, W, 3) uint8 (BT.709, BT.1886)."""
        sig = self._apply(self._sdr, scene)
        return (np.clip(sig, 0, 1) * 255).round().astype(np.uint8)

    def hdr_nits(self, scene: np.ndarray) -> np.ndarray:
        """Scene light (H, W, 3) float32, BT.709 → HDR display light (H, W, 3) float32, BT.2020 cd/m²."""
        pq = np.clip(self._apply(self._hdr, scene), 0, 1)
        return colour.pq_eotf(torch.from_numpy(pq)).numpy()


def expose(scene: np.ndarray, stops: float = 0.0) -> np.ndarray:
    """Scale scene light (H, W, 3) so its median BT.709 luminance is 0.18 × 2^stops."""
    y = scene @ np.asarray(colour.LUMA_BT709, dtype=np.float32)
    med = float(np.median(y[y > 0])) if np.any(y > 0) else 1.0
    return scene * np.float32(0.18 * 2.0**stops / med)


def aces_scenes(folders: list[str | Path], split: str = "test", log=print) -> list[tuple[str, np.ndarray]]:
    """The HDR stills under ``folders`` of one split (``test``, ``validation``, ``train`` or
    ``all``), as scene light: [(name, (H, W, 3) float32 BT.709)], panoramas cut to their
    undistorted middle band (the middle three fifths of the rows)."""
    if split not in ("test", "validation", "train", "all"):
        raise ValueError(f"unknown split {split!r}")
    scenes = []
    for folder in folders:
        images, _ = find_media(folder)
        for p in images:
            if split != "all" and scene_split(p.name) != split:
                continue
            try:
                scene = read_hdr_image(p)
            except MediaError as e:
                log(f"skipping: {e}")
                continue
            h, w = scene.shape[:2]
            if w == 2 * h:
                scene = scene[h // 5 : h - h // 5]
            scenes.append((p.name, scene))
    return scenes


def pack_pairs(
    folders: list[str | Path], out: str | Path, max_side: int = 256, stops: tuple[float, ...] = (-1.0, 0.0, 1.0),
    split: str = "train", target: str = "1000", log=print,
) -> int:  # fmt: skip
    """Render the ACES pairs of one split's scenes and save them for ``hdrvideo train --pairs``
    (a machine without OpenColorIO or the scenes, a GPU machine, trains on the file): a dict of
    ``names``, ``sdr`` [(3, H, W) uint8 BT.1886 codes] and ``hdr`` [(3, H, W) float16 linear
    BT.709 light, 1 = SDR white (BT.2408: 203 cd/m²), out-of-gamut components clipped at 0].
    Returns the number of pairs. Written atomically."""
    import torch.nn.functional as F

    renderer = AcesRenderer(target)
    names, sdrs, hdrs = [], [], []
    for name, scene in aces_scenes(folders, split, log):
        t = torch.from_numpy(scene).permute(2, 0, 1)[None]
        h, w = t.shape[-2:]
        s = min(1.0, max_side / max(h, w))
        if s < 1:
            t = F.interpolate(t, size=(max(16, round(h * s)), max(16, round(w * s))), mode="area")
        small = t[0].permute(1, 2, 0).contiguous().numpy()
        for st in stops:
            lit = expose(small, st)
            sdrs.append(torch.from_numpy(renderer.sdr_signal(lit)).permute(2, 0, 1).contiguous())
            ref = torch.from_numpy(renderer.hdr_nits(lit)).permute(2, 0, 1)
            rel = colour.rgb_to_rgb(ref[None], colour.BT2020_TO_BT709)[0] / colour.SDR_WHITE_NITS
            hdrs.append(rel.clamp(min=0).half().contiguous())
            names.append(f"{name}@{st:+g}")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    torch.save({"names": names, "sdr": sdrs, "hdr": hdrs, "target": target}, tmp)
    tmp.replace(out)
    return len(names)
