"""Issue 27 #7 and #10: the light levels a file signals describe what a decoder shows, and
QuickTime files (ProRes included) carry the mastering display and MaxCLL/MaxFALL in their
sample description, where ffprobe and MediaInfo read them."""

from __future__ import annotations

import json
import shutil
import subprocess

import av
import numpy as np
import pytest

from hdrvideo.media.decoded_light import frame_peak_signal
from hdrvideo.media.info import describe
from hdrvideo.media.mov_boxes import add_hdr_boxes, clli_box, mdcv_box
from tests.media import expand_everything, ffmpeg_peak_nits, lossless_rgb_clip
from tests.test_convert import clip, run_cli  # noqa: F401 - the clip fixture

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")


def _stripes(h: int = 64, w: int = 96) -> np.ndarray:
    """Diagonal stripes of saturated red, green, blue and magenta, 3 pixels wide, on black."""
    yy, xx = np.mgrid[0:h, 0:w]
    colours = np.array([[255, 0, 0], [0, 0, 0], [0, 255, 0], [0, 0, 0], [0, 0, 255], [255, 0, 255]], np.uint8)
    return colours[((xx + yy) // 3) % len(colours)]


@needs_ffmpeg
@pytest.mark.parametrize("codec,peak,encoder", [("hevc", 300, "pyav"), ("hevc", 4000, "pyav"), ("av1", 300, "pyav"),
                                               ("hevc", 300, "ffmpeg")])  # fmt: skip
def test_max_cll_is_at_least_what_a_decoder_shows(tmp_path, monkeypatch, codec, peak, encoder):
    """Saturated stripes expanded to the peak: the encoder's ringing puts decoded channels above
    the peak (372 cd/m² at a signalled 300 before); MaxCLL now covers nearest and linear chroma
    up-sampling, and stays within 25% of the brightest of them."""
    src = lossless_rgb_clip(tmp_path / "stripes.mkv", _stripes(), 3)
    expand_everything(monkeypatch, 100.0)
    dst = tmp_path / "o.mkv"
    code, text = run_cli("convert", src, dst, "--codec", codec, "--peak-nits", peak, "--crf", "30", "--encoder", encoder,
                         "-q")  # fmt: skip
    assert code == 0, text
    max_cll = describe(dst)["content_light_level"]["max_cll"]
    shown = ffmpeg_peak_nits(dst)
    assert max(shown.values()) > peak * 1.01  # the encoder did ring: the case the change is for
    assert all(max_cll >= v for v in shown.values()), (max_cll, shown)
    assert max_cll <= 1.25 * max(shown.values()), (max_cll, shown)


def test_the_peak_signal_of_a_flat_frame_is_its_colour():
    """A frame of one colour: the largest channel is that colour's, exactly (no ringing, no bound)."""
    frame = av.VideoFrame(32, 16, "yuv420p10le")
    y, cb, cr = 64 + round(0.5 * 876), 512 + round(0.1 * 896), 512 - round(0.05 * 896)
    for plane, v in zip(frame.planes, (y, cb, cr), strict=True):
        np.frombuffer(plane, np.uint16)[:] = v
    yf, cbf, crf = (y - 64) / 876, (cb - 512) / 896, (cr - 512) / 896
    r, b = yf + 1.4746 * crf, yf + 1.8814 * cbf
    g = yf - 0.16455 * cbf - 0.57135 * crf
    assert frame_peak_signal(frame) == pytest.approx(max(r, g, b), abs=1e-6)
    assert frame_peak_signal(frame, floor=0.99) == 0.99  # nothing in it can beat the floor


def _ffprobe_side_data(path) -> dict:
    out = subprocess.check_output(["ffprobe", "-v", "error", "-select_streams", "v", "-show_streams", "-of", "json",
                                   str(path)])  # fmt: skip
    sd = json.loads(out)["streams"][0].get("side_data_list", [])
    return {d["side_data_type"]: d for d in sd}


@needs_ffmpeg
@pytest.mark.parametrize("codec", ["prores", "hevc"])
def test_quicktime_files_carry_mastering_display_and_light_levels(tmp_path, clip, codec):  # noqa: F811
    dst = tmp_path / "o.mov"
    code, text = run_cli("convert", clip, dst, "--codec", codec, "--peak-nits", 1000, "-y")
    assert code == 0, text
    assert "no mastering display" not in text
    sd = _ffprobe_side_data(dst)
    md, cl = sd["Mastering display metadata"], sd["Content light level metadata"]
    assert md["max_luminance"] == "10000000/10000" and md["min_luminance"] == "1/10000"
    assert (md["red_x"], md["green_y"], md["white_point_x"]) == ("35400/50000", "39850/50000", "15635/50000")
    ours = describe(dst)["content_light_level"]
    assert 0 < cl["max_average"] < cl["max_content"] == ours["max_cll"]
    with av.open(str(dst)) as c:  # still a valid file: every frame decodes
        assert sum(1 for _ in c.decode(video=0)) == 12
    if shutil.which("mediainfo"):  # the other reader studios use (CI installs it beside ffmpeg)
        text = subprocess.check_output(["mediainfo", str(dst)], text=True)
        assert "Mastering display luminance              : min: 0.0001 cd/m2, max: 1000 cd/m2" in text
        assert f"Maximum Content Light Level              : {ours['max_cll']} cd/m2" in text


def test_boxes_go_only_where_no_offset_moves(tmp_path, clip):  # noqa: F811
    """MP4 written with faststart has moov before the media: the file is left alone."""
    dst = tmp_path / "o.mp4"
    code, text = run_cli("convert", clip, dst, "-q")
    assert code == 0, text
    before = dst.read_bytes()
    assert not add_hdr_boxes(dst, mdcv_box(1000) + clli_box(500, 50))
    assert dst.read_bytes() == before


def test_mdcv_box_layout():
    box = mdcv_box(1000, 0.005)
    assert box[:8] == b"\x00\x00\x00\x20mdcv" and len(box) == 32
    g_x = int.from_bytes(box[8:10], "big")
    assert g_x == 8500  # green first, in 0.00002 units (SMPTE ST 2086 order G, B, R)
    assert int.from_bytes(box[24:28], "big") == 10_000_000 and int.from_bytes(box[28:32], "big") == 50
