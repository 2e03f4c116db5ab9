"""Issue 28 #1: NVENC where the GPU has it, one clear line where it does not, the software encoder
with a note where it was the default's choice. On a machine without NVENC (CI, the H100 and
H200) the real encodes are skipped with the reason; what the CPU allows is tested here."""

from __future__ import annotations

import shutil
import subprocess
import sys

import av
import numpy as np
import pytest

from hdrvideo.media.encoder_settings import EncodeError, EncoderSettings, codec_options, hardware_problem
from hdrvideo.pipeline import settings as S
from tests.media import convert_error_line, make_clip

NO_NVENC = hardware_problem("hevc_nvenc")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("nvenc") / "in.mp4", 160, 90, frames=12)


@pytest.mark.skipif(NO_NVENC is None, reason="NVENC opens here: the real encode is tested below")
def test_nvenc_where_none_opens_is_one_line_before_any_work(tmp_path, clip):
    line, seconds = convert_error_line(clip, tmp_path / "o.mkv", "--codec", "hevc_nvenc")
    assert line.startswith("hdrvideo: error: --codec hevc_nvenc: no NVENC encoder opens here")
    assert "use --codec hevc" in line and seconds < 20


@pytest.mark.skipif(NO_NVENC is not None, reason=f"no NVENC opens here ({NO_NVENC})")
def test_nvenc_writes_hdr10_tags(tmp_path, clip):  # pragma: no cover - a GPU with NVENC only
    from hdrvideo.media.info import describe

    out = tmp_path / "o.mov"
    r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(out), "--codec", "hevc_nvenc"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = describe(out)
    assert d["hdr"] == "HDR10 (PQ)" and d["mastering_display"]["max_luminance"] == 1000
    for codec in ("hevc_nvenc", "av1_nvenc"):  # in-band in .mkv: the messages we put into each keyframe
        mkv = tmp_path / f"{codec}.mkv"
        r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(mkv), "--codec", codec],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stderr
        first = {x["side_data_type"] for x in _side_data(mkv)[0]}
        assert first == {"Mastering display metadata", "Content light level metadata"}


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


# -- HDR10 metadata for encoders that do not write it (NVENC): checked with ffprobe's parsers --------
def _side_data(path) -> list[dict]:
    import json

    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_frames", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)  # fmt: skip
    hdr = ("Mastering display metadata", "Content light level metadata")
    return [[d for d in f.get("side_data_list", []) if d.get("side_data_type") in hdr]
            for f in json.loads(r.stdout)["frames"]]  # fmt: skip


def _encode_plain(path, codec: str, options: dict, messages: bytes | None) -> None:
    """12 frames (keyframes at 0 and 6) by x265 or SVT-AV1 with no HDR metadata of their own, our
    messages put into every keyframe."""
    from hdrvideo.media.hdr_metadata import with_hdr_metadata

    out = av.open(str(path), "w")
    s = out.add_stream(codec, rate=25)
    s.width, s.height, s.pix_fmt, s.options = 128, 96, "yuv420p10le", options
    s.codec_context.gop_size = 6
    for i in range(13):
        packets = s.encode(None if i == 12 else av.VideoFrame.from_ndarray(
            np.full((96, 128, 3), 40 + 10 * i, np.uint8), format="rgb24").reformat(format="yuv420p10le"))  # fmt: skip
        for p in packets:
            if p.is_keyframe and messages is not None:
                q = av.Packet(with_hdr_metadata(bytes(p), "hevc" if codec == "libx265" else "av1", messages))
                q.pts, q.dts, q.time_base, q.is_keyframe, q.stream = p.pts, p.dts, p.time_base, True, s
                p = q
            out.mux(p)
    out.close()


NEEDS_FFMPEG = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
    reason="needs the ffprobe and ffmpeg programs, whose parsers read the messages back (CI installs Debian's)",
)


@NEEDS_FFMPEG
@pytest.mark.parametrize("codec,options", [
    ("libx265", {"x265-params": "log-level=error:keyint=6:min-keyint=6:scenecut=0"}),
    ("libsvtav1", {"preset": "12", "svtav1-params": "keyint=6"}),
])  # fmt: skip
def test_our_hdr10_messages_read_back_as_written(tmp_path, codec, options):
    from hdrvideo.media.hdr_metadata import av1_hdr_obus, hevc_hdr_sei

    plain, marked = tmp_path / "plain.mkv", tmp_path / "marked.mkv"
    _encode_plain(plain, codec, options, None)
    messages = (hevc_hdr_sei if codec == "libx265" else av1_hdr_obus)(1000.0, 567, 123)
    _encode_plain(marked, codec, options, messages)
    assert not any(_side_data(plain))
    light = bytes([144, 4, 2, 55, 0, 123]) if codec == "libx265" else bytes([0x2A, 6, 1, 2, 55, 0, 123, 0x80])
    assert marked.read_bytes().count(light) == 2  # in both keyframes (0 and 6), nowhere else
    frames = _side_data(marked)
    sd = {d["side_data_type"]: d for d in frames[0]}
    mdcv, cll = sd["Mastering display metadata"], sd["Content light level metadata"]
    assert (cll["max_content"], cll["max_average"]) == (567, 123)

    def value(q: str) -> float:
        n, d = q.split("/")
        return int(n) / int(d)

    got = [value(mdcv[k]) for k in ("red_x", "red_y", "green_x", "green_y", "blue_x", "blue_y", "white_point_x",
                                    "white_point_y", "max_luminance", "min_luminance")]  # fmt: skip
    want = [0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290, 1000.0, 0.0001]  # BT.2020, D65
    np.testing.assert_allclose(got, want, atol=1e-4)
    ok = subprocess.run(["ffmpeg", "-v", "error", "-i", str(marked), "-f", "null", "-"], capture_output=True, text=True)
    assert ok.returncode == 0 and not ok.stderr.strip()


def test_emulation_prevention_and_the_first_picture():
    from hdrvideo.media import hdr_metadata as M

    assert M._emulation_prevention(bytes([0, 0, 0, 1, 0, 0, 4, 0, 0, 3])) == bytes([0, 0, 3, 0, 1, 0, 0, 4, 0, 0, 3, 3])
    sei = M.hevc_hdr_sei(1000.0, 1001, 1001)
    assert b"\x00\x00\x00" not in sei[4:] and bytes([144, 4, 3, 0xE9, 3, 0xE9]) in sei
    vps, idr = b"\x00\x00\x00\x01\x40\x01\x0c", b"\x00\x00\x01\x26\x01\xaf"  # VPS (32), IDR_W_RADL (19)
    assert M.with_hdr_metadata(vps + idr, "hevc", sei) == vps + sei + idr
    assert M.with_hdr_metadata(vps, "hevc", sei) == vps  # no picture: unchanged
    td, seq, frame = b"\x12\x00", b"\x0a\x02\xab\xcd", b"\x32\x01\x00"  # temporal delimiter, sequence header, frame
    obus = M.av1_hdr_obus(1000.0, 1001, 1001)
    assert M.with_hdr_metadata(td + seq + frame, "av1", obus) == td + seq + obus + frame
    with pytest.raises(ValueError, match="hevc or av1"):
        M.with_hdr_metadata(frame, "hevc_nvenc", obus)
    assert bytes([0x2A, 0x06, 0x01, 3, 0xE9, 3, 0xE9, 0x80]) in obus  # what patch_content_light_level finds


@NEEDS_FFMPEG
@pytest.mark.parametrize("nvenc,stand_in", [("hevc_nvenc", "libx265"), ("av1_nvenc", "libsvtav1")])
def test_the_writer_signals_hdr10_for_nvenc_with_the_true_light_level(tmp_path, monkeypatch, nvenc, stand_in):
    """HDRWriter's NVENC path on a CPU: x265 / SVT-AV1 stand in for NVENC, told to write no HDR
    metadata of their own; the file must still carry the mastering display and, after the pass,
    the measured MaxCLL/MaxFALL in every keyframe."""
    from fractions import Fraction

    import hdrvideo.media.encode as W
    import hdrvideo.media.encoder_settings as E

    monkeypatch.setitem(W.CODECS, nvenc, stand_in)
    monkeypatch.setitem(W.PIXEL_FORMATS, nvenc, "yuv420p10le")
    monkeypatch.setattr(E, "_HARDWARE_PROBLEMS", {nvenc: None})
    plain = {"x265-params": "log-level=error:keyint=5:min-keyint=5"} if stand_in == "libx265" else {
        "preset": "12", "svtav1-params": "keyint=5"}  # fmt: skip
    monkeypatch.setattr(W, "codec_options", lambda s: plain)
    out = tmp_path / "o.mkv"
    w = W.HDRWriter(out, 96, 64, Fraction(1, 25), Fraction(25), EncoderSettings(codec=nvenc, peak_nits=1000.0))
    for i in range(10):
        y = np.full((64, 96), 400 + 20 * i, np.uint16)
        w.write_planes(y, np.full((2, 32, 48), 512, np.uint16), i, 100.0 + 10 * i, 50.0)
    w.close()
    cll = w.content_light_level()
    frames = _side_data(out)
    found = {(d["max_content"], d["max_average"]) for sd in frames for d in sd if "max_content" in d}
    assert found == {cll} and cll[0] >= 190
    assert all(any("max_luminance" in d for d in sd) for sd in frames[:1])
    values = cll[0].to_bytes(2, "big") + cll[1].to_bytes(2, "big")
    light = bytes([144, 4]) + values if nvenc == "hevc_nvenc" else bytes([0x2A, 6, 1]) + values + b"\x80"
    assert out.read_bytes().count(light) == 2  # both keyframes (0 and 5) carry them, patched
