"""Graded-pair evaluation (``hdrvideo eval --pairs``): does the expansion look like the HDR grade?

An expansion is judged the way a colourist judges it: against a real HDR grade of the same
picture. For each HDR reference frame (BT.2020 display light, cd/m²):

- references: professionally graded HDR shots and phone HDR clips (PQ/HLG video, decoded to
  BT.2020 light), and HDR stills, which are scene light and get an HDR grade first
  (:func:`~.grading.hdr_grade`, 1,000 cd/m² peak);
- SDR: each rendering of :data:`~.grading.RENDERINGS` (BT.2446 A and C, filmic, per-channel and
  hue-preserving knees, gamut clipping and compression, a saturation boost), 8-bit BT.1886 and a
  lossy H.264 encode (x264 CRF 20, 4:2:0; what SDR masters go through);
- output: the SDR through :class:`~hdrvideo.pipeline.processor.FrameProcessor` as ``convert``
  runs it (PQ, 1,000 cd/m² peak, display shoulder), as BT.2020 light;
- metrics (per frame, then means per rendering and overall), after one exposure factor fitted on
  the SDR's well-exposed pixels in log luminance unless said: PQ-PSNR (BT.2020 PQ R'G'B', peak 1),
  PU21-PSNR (RGB, cd/m²), ΔE_ITP (BT.2124, mean), each also *absolute* (no fit);
  PU21-PSNR on the pixels the SDR clipped (any channel ≥ 250/255); **false highlights**: the share
  of pixels whose reference is not above SDR white (203 cd/m²) that the output raises ≥ 1.5×
  above the BT.2408 picture of the same SDR (as encoded: for BT.2446 Method A, which places
  mid-tones elsewhere, this counts its mid-tones); **headroom used**: the median of output / reference
  luminance on pixels where the reference is above 2 × SDR white (1.0 = as bright as the grade).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import colour
from ..colour.ictcp import delta_e_itp
from ..colour.pu21 import pu21_psnr
from ..media.hdrio import MediaError, find_media, read_hdr_image, read_hdr_video
from ..pipeline.calibrate import CalibrationConfig, well_exposed
from ..pipeline.processor import FrameProcessor
from .data import held_out
from .grading import RENDERINGS, hdr_grade, render_sdr

__all__ = [
    "GradedPair", "GradedScore", "make_pairs", "aces_pairs", "photo_pairs", "score_pairs", "format_pairs_table",
    "worst_below", "METRICS",
]  # fmt: skip

CLIP_CODE = 250 / 255
WHITE = colour.SDR_WHITE_NITS
METRICS = (
    ("pq_psnr", "PQ-PSNR dB"),
    ("pu21_psnr", "PU21-PSNR dB"),
    ("de_itp", "ΔE_ITP"),
    ("pu21_clipped", "PU21 clipped dB"),
    ("false_hl", "false highlights %"),
    ("headroom", "headroom used"),
    ("pq_psnr_abs", "PQ-PSNR abs dB"),
    ("pu21_psnr_abs", "PU21-PSNR abs dB"),
    ("de_itp_abs", "ΔE_ITP abs"),
)


@dataclass
class GradedPair:
    """One reference frame and one SDR rendering of it.

    ref: (1, 3, H, W) BT.2020 linear cd/m²; sdr: (1, 3, H, W) SDR signal in [0, 1] (BT.709,
    BT.1886, on 8-bit steps after the lossy encode)."""

    source: str
    rendering: str
    ref: torch.Tensor
    sdr: torch.Tensor
    set: str = "formula renderings"
    """Which set the pair belongs to: scores are reported per set (:data:`SETS`)."""


@dataclass
class GradedScore:
    """Metric means (see :data:`METRICS`) per rendering, per set and over all pairs, and each
    pair's own (``per_pair``: (set, source, rendering) → metrics)."""

    per_rendering: dict[str, dict[str, float]] = field(default_factory=dict)
    overall: dict[str, float] = field(default_factory=dict)
    n: int = 0
    per_set: dict[str, dict[str, float]] = field(default_factory=dict)
    set_sizes: dict[str, int] = field(default_factory=dict)
    per_pair: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)


# -- references ---------------------------------------------------------------------------------


def _fit_side(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """(1, 3, H, W) → area-resized so the long side ≤ max_side, H and W even (for 4:2:0)."""
    h, w = x.shape[-2:]
    s = min(1.0, max_side / max(h, w))
    size = (max(16, int(h * s) // 2 * 2), max(16, int(w * s) // 2 * 2))
    return F.interpolate(x, size=size, mode="area") if size != (h, w) else x


def load_references(
    folders: list[str | Path], max_side: int = 768, frames_per_clip: int = 2, log=print, validation: bool = False
) -> list[tuple[str, torch.Tensor]]:
    """HDR references from ``folders`` → [(name, (1, 3, H, W) BT.2020 cd/m²)].

    Videos (PQ/HLG): ``frames_per_clip`` frames spread over the first 100 (the first and last
    among them). Still images are scene light: only the held-out ones (the training split's
    validation scenes) are used, each given an HDR grade with a 1,000 cd/m² peak.

    ``validation``: the split training selects checkpoints on (``train --val-pairs``): videos
    only, ``frames_per_clip`` frames spread over those the evaluation (with the same
    ``frames_per_clip``) does not take, never the first or the last, so that the frames a
    checkpoint is chosen on are not the frames it is then scored on."""
    refs: list[tuple[str, torch.Tensor]] = []
    for folder in folders:
        images, clips = find_media(folder)
        for clip in clips:
            if isinstance(clip, list):  # EXR sequences are training clips, scene light
                continue
            try:
                frames = list(read_hdr_video(clip, max_frames=100, primaries="bt2020"))
            except MediaError as e:
                log(f"skipping: {e}")
                continue
            m, n = max(1, frames_per_clip), len(frames)
            picks = np.unique(np.linspace(0, n - 1, m).round().astype(int))
            if validation:  # evenly among the frames the evaluation does not take, never the first or last
                rest = np.setdiff1d(np.arange(1, n - 1), picks)
                if not len(rest):
                    continue
                picks = np.unique(rest[((np.arange(m) + 0.5) * len(rest) / m).astype(int)])
            for i in picks:
                t = torch.from_numpy(frames[i]).permute(2, 0, 1)[None].float()
                refs.append((f"{clip.name}#{i}", _fit_side(t, max_side)))
        for p in images:
            if validation or not held_out(p.name, 0.1):  # the training split's validation scenes only
                continue
            try:
                scene = torch.from_numpy(read_hdr_image(p)).permute(2, 0, 1)[None].float()
            except MediaError as e:
                log(f"skipping: {e}")
                continue
            if scene.shape[-1] == 2 * scene.shape[-2]:  # a panorama: its undistorted middle band
                h = scene.shape[-2]
                scene = scene[..., h // 5 : h - h // 5, :]
            refs.append((p.name, _fit_side(hdr_grade(scene, 1000.0), max_side)))
    return refs


def h264_roundtrip(rgb: np.ndarray, crf: int = 20) -> np.ndarray:
    """(H, W, 3) uint8 RGB → the same after an x264 encode (CRF ``crf``, BT.709 limited 4:2:0) and decode."""
    import av

    h, w = rgb.shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        s = out.add_stream("libx264", rate=24, options={"crf": str(crf), "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.colorspace = 1  # BT.709
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=av.video.reformatter.Colorspace.ITU709
        )
        for pkt in s.encode(frame):
            out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    buf.seek(0)
    with av.open(buf, "r") as inp:
        f = next(inp.decode(video=0))
        return f.to_ndarray(format="rgb24", src_colorspace=av.video.reformatter.Colorspace.ITU709)


def make_pairs(
    refs: list[tuple[str, torch.Tensor]], renderings: tuple[str, ...] = RENDERINGS, crf: int | None = 20
) -> list[GradedPair]:
    """Every reference × rendering: the SDR quantised to 8 bits and (unless ``crf`` is None) H.264-coded."""
    pairs = []
    for name, ref in refs:
        peak = float(colour.luminance(ref, colour.LUMA_BT2020).amax())
        for r in renderings:
            sig = render_sdr(ref, r, peak_nits=max(peak, 1000.0))
            rgb = (sig[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            if crf is not None:
                rgb = h264_roundtrip(np.ascontiguousarray(rgb), crf)
            sdr = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            pairs.append(GradedPair(name, r, ref, sdr))
    return pairs


def aces_pairs(
    folders: list[str | Path], max_side: int = 768, target: str = "1000", split: str = "test",
    stops: tuple[float, ...] = (0.0,), log=print,
) -> list[GradedPair]:  # fmt: skip
    """Studio-made pairs (:mod:`.aces`): each HDR still of ``split`` under ``folders``, at each
    exposure of ``stops``, through the ACES 2.0 SDR (the 8-bit input) and HDR (the reference,
    BT.2020 cd/m²) output transforms."""
    from .aces import ACES_SET, AcesRenderer, aces_scenes, expose

    scenes = aces_scenes(folders, split, log)
    renderer = AcesRenderer(target) if scenes else None  # (OpenColorIO needed only where there are scenes)
    pairs = []
    for name, scene in scenes:
        small = _fit_side(torch.from_numpy(scene).permute(2, 0, 1)[None], max_side)[0].permute(1, 2, 0).numpy()
        for st in stops:
            lit = expose(small, st)
            sdr = torch.from_numpy(renderer.sdr_signal(lit)).permute(2, 0, 1)[None].float() / 255
            ref = torch.from_numpy(renderer.hdr_nits(lit)).permute(2, 0, 1)[None].float()
            label = name if st == 0 else f"{name}@{st:+g}"
            pairs.append(GradedPair(label, f"ACES 2.0 SDR/HDR {target} nits", ref, sdr, ACES_SET))
    return pairs


PHOTO = "photo (gain map)"
"""The rendering name of real pairs: gain-map photos, whose SDR is the photo's own base."""
PHOTO_SET = "camera pairs (gain-map photos)"
RENDERING_SET = "formula renderings"


def photo_pairs(folders: list[str | Path], max_side: int = 768, log=print) -> list[GradedPair]:
    """Gain-map photos under ``folders`` as real pairs: the base (8-bit sRGB codes, as the SDR
    signal) and its HDR rendition at full headroom (BT.2020 cd/m², SDR white at 203)."""
    from ..media.hdrio import read_gainmap_photos

    pairs = []
    for path, sdr, hdr in read_gainmap_photos(folders, log):
        sig = _fit_side(torch.from_numpy(sdr).permute(2, 0, 1)[None].float() / 255, max_side)
        sig = (sig * 255).round() / 255  # 8-bit steps, as the base has them
        lin = _fit_side(torch.from_numpy(hdr).permute(2, 0, 1)[None].float(), max_side)
        ref = colour.rgb_to_rgb(lin.clamp(min=0) * colour.SDR_WHITE_NITS, colour.BT709_TO_BT2020)
        pairs.append(GradedPair(path.name, PHOTO, ref, sig, PHOTO_SET))
    return pairs


# -- scoring ------------------------------------------------------------------------------------


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def _lum(x: torch.Tensor) -> torch.Tensor:
    return colour.luminance(x, colour.LUMA_BT2020)


def _exposure(out: torch.Tensor, ref: torch.Tensor, sdr: torch.Tensor) -> torch.Tensor:
    """The one factor that aligns ``out`` to ``ref``: the mean log-luminance ratio on the SDR's
    well-exposed pixels (all pixels where fewer than 65 are)."""
    ok = well_exposed(sdr, CalibrationConfig())
    lo, lr = torch.log(_lum(out).clamp(min=1e-3)), torch.log(_lum(ref).clamp(min=1e-3))
    d = (lr - lo)[ok] if int(ok.sum()) > 64 else (lr - lo).flatten()
    return torch.exp(d.mean())


def frame_metrics(out: torch.Tensor, base: torch.Tensor, ref: torch.Tensor, sdr: torch.Tensor) -> dict[str, float]:
    """Metrics of one output (1, 3, H, W) BT.2020 cd/m² against ``ref``; ``base`` is the BT.2408
    picture of the same SDR (for false highlights), ``sdr`` the SDR signal (masks, exposure fit)."""
    fitted = out * _exposure(out, ref, sdr)
    m: dict[str, float] = {}
    for suffix, o in (("", fitted), ("_abs", out)):
        m["pq_psnr" + suffix] = _psnr(colour.pq_inverse_eotf(o.clamp(0, 10000)), colour.pq_inverse_eotf(ref.clamp(0, 10000)))
        m["pu21_psnr" + suffix] = float(pu21_psnr(o.clamp(min=0), ref.clamp(min=0)))
        m["de_itp" + suffix] = float(delta_e_itp(o, ref).mean())
    clipped = sdr.amax(1, keepdim=True) >= CLIP_CODE
    m["pu21_clipped"] = float(pu21_psnr(fitted.clamp(min=0), ref.clamp(min=0), clipped)) if int(clipped.sum()) >= 16 else float("nan")
    dim = _lum(ref) <= WHITE
    # (as the output is encoded, not aligned: a formula that places mid-tones elsewhere than BT.2408,
    # BT.2446 Method A, counts them all; read its figure as that)
    raised = _lum(out) >= 1.5 * _lum(base).clamp(min=1e-6)
    m["false_hl"] = 100 * float((raised & dim).sum()) / max(1, int(dim.sum()))
    bright = _lum(ref) > 2 * WHITE
    m["headroom"] = float((_lum(fitted)[bright] / _lum(ref)[bright]).median()) if int(bright.sum()) >= 16 else float("nan")
    return m


@torch.no_grad()
def display_light(proc: FrameProcessor, sdr: torch.Tensor) -> torch.Tensor:
    """SDR signal (B, 3, H, W) → the output ``convert`` would encode, as BT.2020 light in cd/m²."""
    proc.reset()
    return proc.display_light(sdr.to(proc.device))[0].float().cpu()


def _mean(rows: list[dict[str, float]], key: str) -> float:
    v = [r[key] for r in rows if np.isfinite(r[key])]
    return float(np.mean(v)) if v else float("nan")


def score_pairs(proc: FrameProcessor, pairs: list[GradedPair], baseline: FrameProcessor | None = None) -> GradedScore:
    """Run every pair through ``proc`` and average :func:`frame_metrics` per rendering and overall.
    ``baseline``: the BT.2408 processor for false highlights (default: one with the same peak)."""
    if baseline is None:
        baseline = FrameProcessor(None, "pq", proc.cfg.peak_nits, device=proc.device)
    rows: dict[str, list[dict[str, float]]] = {}
    sets: dict[str, list[dict[str, float]]] = {}
    res = GradedScore(n=len(pairs))
    for p in pairs:
        out = display_light(proc, p.sdr)
        base = display_light(baseline, p.sdr) if baseline is not proc else out
        m = frame_metrics(out, base, p.ref, p.sdr)
        rows.setdefault(p.rendering, []).append(m)
        sets.setdefault(p.set, []).append(m)
        res.per_pair[(p.set, p.source, p.rendering)] = m
    keys = [k for k, _ in METRICS]
    for r, rs in rows.items():
        res.per_rendering[r] = {k: _mean(rs, k) for k in keys}
    for st, rs in sets.items():
        res.per_set[st] = {k: _mean(rs, k) for k in keys}
        res.set_sizes[st] = len(rs)
    every = [row for rs in rows.values() for row in rs]
    res.overall = {k: _mean(every, k) for k in keys}
    return res


def worst_below(res: GradedScore, base: GradedScore, set_name: str, key: str = "pu21_psnr") -> float:
    """The largest shortfall of ``res`` under ``base`` on one pair of ``set_name`` (dB; negative
    where every pair is above), NaN where the set is empty."""
    d = [base.per_pair[k][key] - v[key] for k, v in res.per_pair.items() if k[0] == set_name and k in base.per_pair]
    d = [x for x in d if np.isfinite(x)]
    return float(max(d)) if d else float("nan")


def format_pairs_table(results: dict[str, GradedScore], per_rendering: bool = True) -> str:
    """Markdown tables, one per set of pairs (studio-made, camera, formula renderings: never
    averaged together), one row per model, with the worst pair's shortfall under the first row
    (BT.2408 alone) in PU21-PSNR; then, for the formula renderings, one table per rendering."""
    head = "| model | " + " | ".join(label for _, label in METRICS) + " | worst pair vs BT.2408 dB |"
    sep = "| --- |" + " ---: |" * (len(METRICS) + 1)
    if not results:
        return ""
    first = next(iter(results.values()))

    def row(name: str, m: dict[str, float], worst: float | None = None) -> str:
        tail = "" if worst is None else f"{-worst:+.2f}"
        return f"| {name} | " + " | ".join(f"{m[k]:.2f}" for k, _ in METRICS) + f" | {tail} |"

    out: list[str] = []
    for st, n in first.set_sizes.items():
        out += (["", ""] if out else []) + [f"{st} ({n} pairs):", "", head, sep]
        out += [row(k, r.per_set[st], worst_below(r, first, st)) for k, r in results.items()]
    if per_rendering:
        for rend in first.per_rendering:
            if any(k[0] != RENDERING_SET for k in first.per_pair if k[2] == rend):
                continue
            out += ["", f"Rendering {rend}:", "", head, sep]
            out += [row(k, r.per_rendering[rend]) for k, r in results.items()]
    return "\n".join(out)
