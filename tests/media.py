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
