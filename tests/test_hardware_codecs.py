"""Issue 28 #1: NVENC where the GPU has it, one clear line where it does not, the software encoder
with a note where it was the default's choice. On a machine without NVENC (CI, the H100 and
H200) the real encodes are skipped with the reason; what the CPU allows is tested here."""

from __future__ import annotations

import subprocess
import sys
import time

import av
import numpy as np
import pytest

from hdrvideo.media.encoder_settings import EncodeError, EncoderSettings, codec_options, hardware_problem
from hdrvideo.pipeline import settings as S
from tests.media import make_clip

NO_NVENC = hardware_problem("hevc_nvenc")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("nvenc") / "in.mp4", 160, 90, frames=12)


@pytest.mark.skipif(NO_NVENC is None, reason="NVENC opens here: the real encode is tested below")
def test_nvenc_where_none_opens_is_one_line_before_any_work(tmp_path, clip):
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(tmp_path / "o.mkv"), "--codec",
                        "hevc_nvenc"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hdrvideo: error: --codec hevc_nvenc: no NVENC encoder opens here")
    assert "use --codec hevc" in lines[0]
    assert time.monotonic() - t < 20 and not (tmp_path / "o.mkv").exists()


@pytest.mark.skipif(NO_NVENC is not None, reason=f"no NVENC opens here ({NO_NVENC})")
def test_nvenc_writes_hdr10_tags(tmp_path, clip):  # pragma: no cover - a GPU with NVENC only
    from hdrvideo.media.info import describe

    out = tmp_path / "o.mov"
    r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(out), "--codec", "hevc_nvenc"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = describe(out)
    assert d["hdr"] == "HDR10 (PQ)" and d["mastering_display"]["max_luminance"] == 1000


def test_the_default_codec_on_a_gpu(monkeypatch):
    """--codec not given: hevc_nvenc where a GPU's NVENC opens, else x265 with a note saying why;
    on a CPU x265 without a word; a codec given is kept."""
    import hdrvideo.media.encoder_settings as E

    monkeypatch.setattr(S, "pick_device", lambda d: "cuda:0")
    monkeypatch.setattr(E, "_HARDWARE_PROBLEMS", {"hevc_nvenc": None})
    codec, note = S.ConversionSettings(codec=None).chosen_codec()
    assert codec == "hevc_nvenc" and "NVENC" in note
    assert S.ConversionSettings(codec=None).encoder_settings().codec == "hevc_nvenc"
    monkeypatch.setattr(E, "_HARDWARE_PROBLEMS", {"hevc_nvenc": "Operation not permitted"})
    codec, note = S.ConversionSettings(codec=None).chosen_codec()
    assert codec == "hevc" and "no NVENC opens on this GPU (Operation not permitted" in note
    assert S.ConversionSettings(codec="av1").chosen_codec() == ("av1", None)
    assert S.ConversionSettings(codec=None, encoder="ffmpeg").chosen_codec() == ("hevc", None)
    monkeypatch.setattr(S, "pick_device", lambda d: "cpu")
    assert S.ConversionSettings(codec=None).chosen_codec() == ("hevc", None)


def test_nvenc_options_and_their_checks(monkeypatch):
    import hdrvideo.media.encoder_settings as E

    monkeypatch.setattr(E, "_HARDWARE_PROBLEMS", {"hevc_nvenc": None, "av1_nvenc": None})
    opts = codec_options(EncoderSettings(codec="hevc_nvenc", crf=19))
    assert opts == {"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "19", "profile": "main10"}
    live = codec_options(EncoderSettings(codec="av1_nvenc", low_latency=True))
    assert live["preset"] == "p1" and live["tune"] == "ll" and live["delay"] == "0" and "profile" not in live
    EncoderSettings(codec="hevc_nvenc", preset="p7").check_options()
    with pytest.raises(EncodeError, match="p1 \\(fastest\\) … p7"):
        EncoderSettings(codec="hevc_nvenc", preset="slow").check_options()
    with pytest.raises(EncodeError, match="mov cannot hold av1_nvenc"):
        EncoderSettings(codec="av1_nvenc").validate("mov")


def test_p010_frames_carry_the_same_codes():
    """NVENC takes P010: the writer's 10-bit planes go over as they are (codes in the high bits,
    chroma interleaved), no rounding on the way."""
    rng = np.random.default_rng(0)
    y = rng.integers(64, 941, (32, 48), dtype=np.uint16)
    uv = rng.integers(64, 961, (2, 16, 24), dtype=np.uint16)
    frame = av.VideoFrame(48, 32, "yuv420p10le")
    for plane, data in zip(frame.planes, (y, uv[0], uv[1]), strict=True):
        np.frombuffer(plane, np.uint16).reshape(plane.height, plane.line_size // 2)[:, : plane.width] = data
    p010 = frame.reformat(format="p010le")
    py = np.frombuffer(p010.planes[0], np.uint16).reshape(32, -1)[:, :48]
    puv = np.frombuffer(p010.planes[1], np.uint16).reshape(16, -1)[:, :48]
    assert np.array_equal(py >> 6, y)
    assert np.array_equal(puv[:, 0::2] >> 6, uv[0]) and np.array_equal(puv[:, 1::2] >> 6, uv[1])
