"""Issue 28 #4: several encoders at once on consecutive chunks (``--encode-jobs N``): one valid
stream, every frame at its time, chunks starting at scene cuts, true light levels, packets in
order whichever encoder finishes first, and an encoder's failure as one error, never a hang."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from hdrvideo.media.chunked_encode import ChunkedEncoder, SceneCuts, chunk_limits
from hdrvideo.media.encode import EncodeError, EncoderSettings, HDRWriter
from tests.media import make_clip

W, H = 192, 108


def _planes(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i of a video whose scene changes every 30 frames (a moving ramp on two levels)."""
    yy, xx = np.mgrid[0:H, 0:W]
    y = (300 + 300 * ((i // 30) % 2) + (xx + 3 * i) % 200 + yy // 4).astype(np.uint16)
    uv = np.full((2, H // 2, W // 2), 512, np.uint16)
    uv[0] += ((xx[::2, ::2] + i) % 40).astype(np.uint16)
    return y, uv


def _write(path, codec: str, jobs: int, frames: int = 90, chunk=(10, 40), header_first: bool = False) -> HDRWriter:
    settings = EncoderSettings(codec=codec, preset="ultrafast" if codec == "hevc" else "12", jobs=jobs,
                               chunk_frames=chunk if jobs > 1 else None)  # fmt: skip
    w = HDRWriter(path, W, H, Fraction(1, 25), Fraction(25), settings)
    if header_first:  # as an audio packet muxed before the first frame does: the stream's encoder opens
        w.container.start_encoding()
    for i in range(frames):
        w.write_planes(*_planes(i), i, 400.0, 100.0)
    w.close()
    return w


def _cll_in_every_frame(path) -> set:
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_frames", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)  # fmt: skip
    return {(d["max_content"], d["max_average"]) for f in json.loads(r.stdout)["frames"]
            for d in f.get("side_data_list", []) if "max_content" in d}  # fmt: skip


@pytest.mark.parametrize("codec,ext,header_first", [("hevc", "mkv", False), ("hevc", "mp4", True), ("av1", "mp4", False)])
def test_chunks_make_one_stream_with_every_frame_at_its_time(tmp_path, codec, ext, header_first):
    out = tmp_path / f"o.{ext}"
    w = _write(out, codec, jobs=3, header_first=header_first)
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 90
    # the true light level in the in-band messages, as FFmpeg's parsers hand it to PyAV
    levels = {tuple(np.frombuffer(bytes(memoryview(sd)), np.uint32).tolist()) for f in frames for sd in f.side_data
              if str(sd.type).endswith("CONTENT_LIGHT_LEVEL")}  # fmt: skip
    assert levels == {w.content_light_level()}
    assert all(abs(f.time - i / 25) < 1e-3 for i, f in enumerate(frames))
    assert [i for i, f in enumerate(frames) if f.key_frame] == [0, 30, 60]  # the scene cuts, nothing else
    with av.open(str(out)) as c:
        dts = [p.dts for p in c.demux(video=0) if p.size]
    assert None in dts or all(a < b for a, b in zip(dts, dts[1:], strict=False))
    y0 = np.frombuffer(frames[45].planes[0], np.uint16).reshape(H, -1)[:, :W].astype(float)
    assert np.abs(y0 - _planes(45)[0]).mean() < 8  # the frame that was given, not another


@pytest.mark.skipif(shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
                    reason="needs the ffmpeg and ffprobe programs (CI installs Debian's)")  # fmt: skip
@pytest.mark.parametrize("codec,ext,header_first", [("hevc", "mkv", False), ("hevc", "mp4", True), ("av1", "mp4", False)])
def test_chunks_decode_cleanly_with_the_true_light_level_in_every_chunk(tmp_path, codec, ext, header_first):
    out = tmp_path / f"o.{ext}"
    w = _write(out, codec, jobs=3, header_first=header_first)
    ok = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True)
    assert ok.returncode == 0 and not ok.stderr.strip()
    # the true light levels, patched into every chunk's in-band message, as one encoder's are
    assert _cll_in_every_frame(out) == {w.content_light_level()}


def test_without_cuts_a_chunk_ends_at_its_longest(tmp_path):
    out = tmp_path / "o.mkv"
    settings = EncoderSettings(codec="hevc", preset="ultrafast", jobs=2, chunk_frames=(8, 20))
    w = HDRWriter(out, W, H, Fraction(1, 25), Fraction(25), settings)
    for i in range(60):  # one scene, its ramp jumping back at 30 (a cut there) and at 33 (too soon for one)
        w.write_planes(*_planes(i % 30 if i != 33 else 20), i, 400.0, 100.0)
    w.close()
    with av.open(str(out)) as c:
        keys = [i for i, f in enumerate(c.decode(video=0)) if f.key_frame]
    assert keys == [0, 20, 30, 50]  # at the longest (20 frames), at the cut, at the longest again


def test_scene_cuts_and_chunk_limits():
    cuts = SceneCuts()
    assert [cuts.feed(_planes(i)[0]) for i in range(28, 33)] == [False, False, True, False, False]
    fewest, most = chunk_limits(3 * 3840 * 2160, jobs=4, rate=25, memory=64 << 30)
    assert (fewest, most) == (25, 75)
    fewest, most = chunk_limits(3 * 3840 * 2160, jobs=8, rate=60, memory=8 << 30)  # memory binds
    assert most * 8 * 3 * 3840 * 2160 <= (8 << 30) // 4 and most == fewest


class _SlowThenFast:
    """A stand-in encoder: a packet per frame, the first chunk's slow, later ones fast."""

    made = 0

    def __init__(self) -> None:
        self.chunk = _SlowThenFast.made
        _SlowThenFast.made += 1

    def encode(self, frame):
        time.sleep(0.03 if self.chunk == 0 else 0.0)
        return [] if frame is None else [(self.chunk, frame)]


def test_packets_leave_in_stream_order_whoever_finishes_first():
    _SlowThenFast.made = 0
    enc = ChunkedEncoder(_SlowThenFast, jobs=3, fewest=5, most=5)
    out = []
    for i in range(15):
        out += enc.encode(i)
    out += list(enc.flush())
    assert [f for _, f in out] == list(range(15))
    assert [c for c, _ in out] == [0] * 5 + [1] * 5 + [2] * 5


class _Broken:
    def encode(self, frame):
        raise RuntimeError("the encoder broke")


def test_an_encoders_failure_is_raised_in_the_writers_thread():
    enc = ChunkedEncoder(_Broken, jobs=2, fewest=2, most=2)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match="the encoder broke"):
        for i in range(100):
            enc.encode(i)
            time.sleep(0.01)
        list(enc.flush())
    assert time.monotonic() - t < 5
    slow = ChunkedEncoder(_SlowThenFast, jobs=2, fewest=50, most=50)  # abandoned with 49 frames queued
    for i in range(50):
        slow.encode(i)
    t = time.monotonic()
    slow.abort()
    assert time.monotonic() - t < 0.5
    assert not [th for th in threading.enumerate() if th.name == "hdrvideo-chunk" and th.is_alive()]


def test_encode_jobs_options_and_their_checks():
    with pytest.raises(EncodeError, match="--encode-jobs applies to hevc and av1"):
        EncoderSettings(codec="prores", jobs=2).check_options()
    with pytest.raises(EncodeError, match="through ffmpeg"):
        EncoderSettings(codec="hevc", jobs=2, encoder="ffmpeg").check_options()
    with pytest.raises(EncodeError, match="live"):
        EncoderSettings(codec="hevc", jobs=2, low_latency=True).check_options()
    from hdrvideo.media.encoder_settings import codec_options

    assert "pools=" in codec_options(EncoderSettings(codec="hevc", jobs=2))["x265-params"]
    assert "lp=" in codec_options(EncoderSettings(codec="av1", jobs=2))["svtav1-params"]
    assert "pools=" not in codec_options(EncoderSettings(codec="hevc"))["x265-params"]


def test_convert_with_encode_jobs(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", 160, 90, frames=40, audio=True)
    out = tmp_path / "o.mkv"
    r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(out), "--method", "bt2446c",
                        "--encode-jobs", "2", "--preset", "ultrafast", "-q"], capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        assert c.streams.audio and sum(1 for _ in c.decode(video=0)) == 40
    bad = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(tmp_path / "p.mov"), "--codec",
                          "prores", "--encode-jobs", "2"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "--encode-jobs applies to hevc and av1" in bad.stderr and not (tmp_path / "p.mov").exists()
