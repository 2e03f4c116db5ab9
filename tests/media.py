"""Test media made on the spot with PyAV: SDR clips with moving clipped highlights and audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def sdr_frame(i: int, w: int, h: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB: a smooth well-exposed gradient scene with a clipped disc moving right."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.25 + 0.45 * xx / max(w - 1, 1)
    g = 0.20 + 0.40 * yy / max(h - 1, 1)
    b = 0.35 + 0.2 * np.sin(xx / max(w, 1) * 6.28 + i * 0.1)
    img = np.stack([r, g, b], -1)
    cx, cy, rad = (0.2 + 0.6 * (i % 30) / 30) * w, 0.4 * h, max(3.0, 0.1 * min(w, h))
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < rad**2
    img[disc] = 1.0
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def make_clip(
    path: Path,
    w: int = 160,
    h: int = 90,
    frames: int = 12,
    fps: int = 24,
    audio: bool = True,
    codec: str = "libx264",
    tag_bt709: bool = True,
    vfr: bool = False,
) -> Path:
    """Write an SDR clip (H.264 yuv420p by default) with an optional stereo sine audio track."""
    path = Path(path)
    out = av.open(str(path), "w")
    vs = out.add_stream(codec, rate=fps)
    vs.width, vs.height = w, h
    vs.pix_fmt = "yuv420p"
    if vfr:
        vs.codec_context.time_base = Fraction(1, 1000)
    if tag_bt709:
        vs.codec_context.color_primaries = 1
        vs.codec_context.color_trc = 1
        vs.codec_context.colorspace = 1
        vs.codec_context.color_range = 1
    vs.options = {"preset": "ultrafast", "crf": "18"} if codec == "libx264" else {}
    a = None
    if audio:
        a = out.add_stream("aac" if path.suffix in (".mp4", ".mov") else "flac", rate=48000)
        a.layout = "stereo"
    pts = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(sdr_frame(i, w, h), format="rgb24")
        if tag_bt709:
            frame = frame.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range=1)
        if vfr:
            frame.pts = pts
            frame.time_base = Fraction(1, 1000)
            pts += 30 if i % 2 else 50
        for p in vs.encode(frame):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    if a is not None:
        n = int(48000 * frames / fps)
        t = np.arange(n) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([tone, tone])
        fmt = a.codec_context.format.name
        chunk = 1024
        for k in range(0, n, chunk):
            part = samples[:, k : k + chunk]
            if fmt.endswith("p"):
                data = (
                    np.ascontiguousarray(part)
                    if fmt == "fltp"
                    else np.ascontiguousarray((part * 32767).astype(np.int16))
                )
            else:
                data = (part.T.reshape(1, -1) * (32767 if fmt == "s16" else 1)).astype(
                    np.int16 if fmt == "s16" else np.float32
                )
            af = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
            af.sample_rate = 48000
            af.pts = k
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    out.close()
    return path


# -- clips for temporal tests: noise, compression, motion, fades, cuts -------------------------------


def temporal_scene(kind: str, i: int, w: int, h: int) -> np.ndarray:
    """(H, W, 3) float RGB signal in [0, 1] (before noise) of frame i of a test clip.

    static: a still scene with a clipped window; moving: a clipped disc moving right over it;
    fade: the static scene fading to black over 24 frames; cut: 12 frames of the static scene,
    then a darker scene with a large clipped lamp; away: a clipped disc that sits still for
    8 frames, then jumps far away.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.30 + 0.35 * xx / w, 0.25 + 0.30 * yy / h, 0.35 + 0.15 * np.sin(xx / w * 6.28)], -1)
    win = (np.abs(xx - 0.25 * w) < 0.08 * w) & (np.abs(yy - 0.3 * h) < 0.12 * h)
    img = base.copy()
    img[win] = 1.0
    if kind == "static":
        return img
    if kind == "moving":
        cx = (0.45 + 0.4 * i / 24) * w
        img[(xx - cx) ** 2 + (yy - 0.6 * h) ** 2 < (0.08 * h) ** 2] = 1.0
        return img
    if kind == "fade":
        return img * max(0.0, 1 - i / 24)
    if kind == "cut":
        if i < 12:
            return img
        dark = base * 0.35
        dark[(xx - 0.7 * w) ** 2 + (yy - 0.5 * h) ** 2 < (0.2 * h) ** 2] = 1.0
        return dark
    if kind == "away":
        cx = 0.6 * w if i < 8 else 0.1 * w
        img[(xx - cx) ** 2 + (yy - 0.7 * h) ** 2 < (0.1 * h) ** 2] = 1.0
        return img
    raise ValueError(kind)


def temporal_clip(kind: str, frames: int = 24, w: int = 192, h: int = 112, noise: float = 2.0, crf: int = 26):
    """(T, H, W, 3) uint8 RGB: the scene with sensor-like noise (σ in 8-bit codes, clipped at 255
    like a sensor), through H.264 at ``crf`` and decoded back (compression artefacts)."""
    import io

    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    out = av.open(buf, "w", format="matroska")
    vs = out.add_stream("libx264", rate=24)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    vs.options = {"preset": "ultrafast", "crf": str(crf)}
    for i in range(frames):
        img = temporal_scene(kind, i, w, h) * 255 + rng.normal(0, noise, (h, w, 3))
        rgb = np.clip(img, 0, 255).round().astype(np.uint8)
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace="itu709", dst_color_range=1
        )
        for p in vs.encode(f):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    buf.seek(0)
    with av.open(buf) as c:
        return np.stack(
            [f.to_ndarray(format="rgb24", src_colorspace="itu709", src_color_range=1) for f in c.decode(video=0)]
        )


def saturated_bars(h: int = 64, w: int = 96) -> np.ndarray:
    """(H, W, 3) uint8 saturated colour bars 3 px wide: every edge a full-strength chroma step."""
    cols = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 255, 255),
            (0, 0, 0)]  # fmt: skip
    img = np.zeros((h, w, 3), np.uint8)
    for x in range(w):
        img[:, x] = cols[(x // 3) % len(cols)]
    return img


def ffmpeg_peak_nits(path: Path) -> dict[str, float]:
    """The brightest channel (cd/m²) the ffmpeg program decodes from a PQ file, for each of
    swscale's chroma up-samplings: {"neighbor": …, "bilinear": …, "bicubic": …}. The ST 2084
    EOTF is written out here so that the tests do not lean on the code they check."""
    import subprocess

    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    out = {}
    for flags in ("neighbor", "bilinear", "bicubic"):
        raw = subprocess.check_output(
            ["ffmpeg", "-v", "error", "-i", str(path), "-vf",
             f"scale=flags={flags}:in_color_matrix=bt2020:in_range=tv", "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-"]
        )  # fmt: skip
        p = max(float(np.frombuffer(raw, np.float32).max()), 0.0) ** (1 / m2)
        out[flags] = 10000 * (max(p - c1, 0.0) / (c2 - c3 * p)) ** (1 / m1)
    return out


def lossless_rgb_clip(path: Path, image: np.ndarray, frames: int) -> Path:
    """``frames`` copies of an (H, W, 3) uint8 RGB image as lossless RGB H.264 (libx264rgb)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264rgb", rate=24)
        s.height, s.width = image.shape[:2]
        s.pix_fmt = "rgb24"
        for _ in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def expand_everything(monkeypatch, factor: float) -> None:
    """Make every FrameProcessor multiply all light by ``factor`` (a constant log gain, no
    calibration): far past the peak, to test what the colour stage and the encoder do there."""
    import math

    from hdrvideo.pipeline.processor import FrameProcessor

    def expanded(self, signal, sdr_linear):
        b, _, h, w = signal.shape
        return signal.new_full((b, 1, h, w), math.log(factor)), signal.new_tensor([0.0, 1.0]).expand(b, 2)

    monkeypatch.setattr(FrameProcessor, "log_gain", expanded)


def convert_error_line(inp: Path, out: Path, *options: str, timeout: float = 120) -> tuple[str, float]:
    """Run ``hdrvideo convert inp out *options`` expecting a refusal: asserts exit 1, exactly one
    line on stderr and no output file; → that line and the seconds it took."""
    import subprocess
    import sys
    import time

    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(inp), str(out), *options],
                       capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert not out.exists()
    return lines[0], time.monotonic() - t
