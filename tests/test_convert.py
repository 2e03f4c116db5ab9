"""`hdrvideo convert` end to end on clips the tests make: signalling, timing, audio, light levels, bad input."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hdrvideo import colour as C
from hdrvideo.cli import main
from tests.conftest import shared_path
from tests.media import expand_everything, ffmpeg_peak_nits, lossless_rgb_clip, make_clip, saturated_bars


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "in.mp4", 160, 90, frames=12)


def run_cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.output


def video_frames(path: Path, fmt: str = "yuv420p10le") -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return [f.to_ndarray(format=fmt) for f in frames], [f.pts for f in frames]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.dts is not None]


def bt2408_luma(path: Path, transfer: str) -> np.ndarray:
    """The plain BT.2408 SDR-in-HDR luma codes of each input frame (our reference picture)."""
    from hdrvideo.pipeline.processor import FrameProcessor

    with av.open(str(path)) as c:
        rgb = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    return FrameProcessor(None, transfer).process(rgb).y


@pytest.mark.parametrize("transfer,ext", [("pq", ".mkv"), ("hlg", ".mp4")])
def test_convert_signalling_timing_audio(tmp_path, clip, tiny_weights, transfer, ext):
    out = tmp_path / f"out{ext}"
    code, text = run_cli(
        "convert", clip, out, "--weights", tiny_weights, "--transfer", transfer, "--quality", "full", "-q"
    )
    assert code == 0, text
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        assert cc.name == "hevc" and cc.format.name == "yuv420p10le"
        assert (cc.color_primaries, cc.colorspace, cc.color_range) == (9, 9, 1)
        assert cc.color_trc == (16 if transfer == "pq" else 18)
        if ext == ".mp4":
            assert cc.codec_tag == "hvc1"
        frame = next(c.decode(video=0))
        kinds = {str(sd.type).split(".")[-1] for sd in frame.side_data}
        if transfer == "pq":
            assert {"MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"} <= kinds
    # same frames, same timestamps, audio packets bit-exact
    y_out, pts_out = video_frames(out)
    _, pts_in = video_frames(clip, "rgb24")
    assert len(y_out) == len(pts_in) == 12
    tb_in = av.open(str(clip)).streams.video[0].time_base
    tb_out = av.open(str(out)).streams.video[0].time_base
    # relative to the first frame: Matroska shifts everything by the AAC priming (it has no negative
    # times) and stores milliseconds, so 1/24 s is 42 ms there
    rel_out = [float((p - pts_out[0]) * tb_out) for p in pts_out]
    rel_in = [float((p - pts_in[0]) * tb_in) for p in pts_in]
    np.testing.assert_allclose(rel_out, rel_in, atol=0.0005 if ext == ".mkv" else 1e-9)
    assert audio_packets(out) == audio_packets(clip)
    # well-exposed mid-tones within a few codes of the BT.2408 picture
    ref = bt2408_luma(clip, transfer)
    luma = np.stack([f[: ref.shape[1]] for f in y_out]).astype(int)
    assert np.median(np.abs(luma - ref.astype(int))) <= 3


def test_real_weights_lift_clipped_highlights_above_sdr_white(tmp_path, clip):
    weights = shared_path("reference/expandnet/weights.pth")
    for transfer, white in (("pq", 573), ("hlg", 721)):
        out = tmp_path / f"{transfer}.mkv"
        code, text = run_cli(
            "convert", clip, out, "--weights", weights, "--transfer", transfer, "--quality", "full", "-q",
            "--temporal", "off", "--precision", "fp32",  # the same figures on CPUs with and without bf16
        )  # fmt: skip
        assert code == 0, text
        y_out, _ = video_frames(out)
        with av.open(str(clip)) as c:
            rgb = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        h = rgb[0].shape[0]
        lifted = [np.mean(y[:h][(r.min(-1) >= 250)]) for y, r in zip(y_out, rgb, strict=True)]
        assert min(lifted) > white + 2, lifted  # every frame's clipped disc is above SDR white
        assert max(lifted) > white + 20, lifted
        if transfer == "pq":
            from hdrvideo.media.info import describe

            d = describe(out)
            assert d["content_light_level"]["max_cll"] > 203
            assert d["mastering_display"]["max_luminance"] == 1000


def test_max_cll_is_true_for_the_content(tmp_path, clip, tiny_weights):
    """MaxCLL/MaxFALL in the stream are the measured values, rounded up: never below the content."""
    from hdrvideo.media.info import describe

    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", clip, out, "--weights", tiny_weights, "--quality", "full", "--crf", "4", "-q")
    assert code == 0, text
    cl = describe(out)["content_light_level"]
    assert cl["max_cll"] != 1000 and cl["max_fall"] < cl["max_cll"]  # patched from the placeholder
    # the stream's brightest decoded component (swscale's RGB, so allow its few codes of error)
    planes, _ = video_frames(out, "gbrp10le")
    decoded = max(C.pq_eotf(torch.from_numpy(f.astype(np.float64) / 1023)).max().item() for f in planes)
    assert decoded <= cl["max_cll"], (decoded, cl)
    if shutil.which("ffmpeg"):  # what a decoder shows, nearest chroma included (issue 27 #7): covered, not overstated
        shown = ffmpeg_peak_nits(out)
        assert max(shown.values()) <= cl["max_cll"] <= 1.1 * max(shown.values()), (shown, cl)


def test_ffprobe_sees_hdr10(tmp_path, clip, tiny_weights):
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    out = tmp_path / "o.mp4"
    assert run_cli("convert", clip, out, "--weights", tiny_weights, "--quality", "full", "-q")[0] == 0
    s = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_streams",
                "-show_frames",
                "-read_intervals",
                "%+#1",
                "-of",
                "json",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    v = next(x for x in s["streams"] if x["codec_type"] == "video")
    assert (v["color_primaries"], v["color_transfer"], v["color_space"], v["color_range"]) == (
        "bt2020",
        "smpte2084",
        "bt2020nc",
        "tv",
    )
    assert v["codec_tag_string"] == "hvc1" and v["pix_fmt"] == "yuv420p10le"
    frame = next(f for f in s["frames"] if f["media_type"] == "video")
    types = {d["side_data_type"] for d in frame.get("side_data_list", [])}
    assert {"Mastering display metadata", "Content light level metadata"} <= types


def test_variable_frame_rate_and_odd_size(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "vfr.mkv", 75, 41, frames=8, vfr=True, audio=False, codec="ffv1")
    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", src, out, "--weights", tiny_weights, "--quality", "full")
    assert code == 0, text
    assert "padded to 76×42" in text
    _, pts_in = video_frames(src, "rgb24")
    y_out, pts_out = video_frames(out)
    tb_in = av.open(str(src)).streams.video[0].time_base
    tb_out = av.open(str(out)).streams.video[0].time_base
    assert [p * tb_out for p in pts_out] == [p * tb_in for p in pts_in]
    assert len(set(np.diff(pts_in))) > 1  # really variable
    assert y_out[0].shape == (42 * 3 // 2, 76)


def test_untagged_input_matrix_guess(tmp_path):
    from hdrvideo.media.decode import open_input, probe

    for h, expected in ((720, "bt709"), (480, "bt601")):
        p = make_clip(tmp_path / f"u{h}.mkv", 64 if h == 480 else 1280, h, frames=1, audio=False, tag_bt709=False)
        with open_input(p) as c:
            info = probe(c, p)
        assert info.matrix == expected and info.matrix_guessed


def test_ten_bit_sdr_input(tmp_path, tiny_weights):
    src = tmp_path / "ten.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p10le"
        s.codec_context.colorspace = 1
        s.codec_context.color_range = 1
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((72, 64), 500 + i, np.uint16), format="yuv420p10le")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights, "-q")
    assert code == 0, text
    assert len(video_frames(tmp_path / "o.mkv")[0]) == 3


def test_one_frame(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "one.mp4", 64, 48, frames=1, audio=False)
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights, "-q")
    assert code == 0, text
    assert len(video_frames(tmp_path / "o.mkv")[0]) == 1


# -- bad input: one line, non-zero exit, nothing left behind ----------------------------------


def _assert_clean_failure(code: int, text: str, folder: Path, pattern: str) -> None:
    assert code != 0
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hdrvideo: error:"), text
    assert pattern in lines[0], text
    assert "Traceback" not in text
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and ".partial" in p.name]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: d, "directory"),
        (lambda d: _write(d / "empty.mp4", b""), "empty"),
        (lambda d: _write(d / "notes.mp4", b"hello, not a video\n" * 20), "not a readable media file"),
    ],
)
def test_bad_inputs(tmp_path, tiny_weights, make, pattern):
    src = make(tmp_path)
    out = tmp_path / "out.mkv"
    code, text = run_cli("convert", src, out, "--weights", tiny_weights, "-q")
    _assert_clean_failure(code, text, tmp_path, pattern)
    assert not out.exists()


def test_audio_only_input(tmp_path, tiny_weights):
    src = tmp_path / "a.mka"
    with av.open(str(src), "w") as c:
        a = c.add_stream("flac", rate=48000)
        a.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.int16), format="s16", layout="mono")
        f.sample_rate, f.pts = 48000, 0
        for p in a.encode(f):
            c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights, "-q")
    _assert_clean_failure(code, text, tmp_path, "no video stream")


def test_truncated_input_converts_what_decodes_and_fails(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "full.mkv", 160, 90, frames=48, audio=False)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code, text = run_cli("convert", cut, tmp_path / "o.mkv", "--weights", tiny_weights, "-q")
    assert code == 2, text
    assert "could not be decoded" in text and "Traceback" not in text
    n = len(video_frames(tmp_path / "o.mkv")[0])
    assert 0 < n < 48


def _edit_list_clip(path: Path, frames: int = 20, hidden: int = 5) -> Path:
    """An MP4 whose edit list hides its first ``hidden`` frames (pre-roll), as phones and editors
    write them: the sample table holds ``frames``, playback shows ``frames - hidden``."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.options = {"g": "10", "bf": "0"}
        packets = []
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            f.pts = i
            packets += list(s.encode(f))
        packets += list(s.encode(None))
        for p in packets:  # the first `hidden` frames before time 0: the muxer writes an edit list
            d = int(round(hidden / 25 / p.time_base))
            p.pts -= d
            p.dts -= d
            out.mux(p)
    return path


def test_an_edit_list_is_not_damage(tmp_path, tiny_weights):
    """Issue 27: a valid MP4 whose edit list hides pre-roll frames converts the frames it presents
    and exits 0 (it was "5 frame(s) could not be decoded", exit 2); a truncated file still exits 2
    (the test above)."""
    src = _edit_list_clip(tmp_path / "edit.mp4")
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 20  # the samples, hidden ones included
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights)
    assert code == 0, text
    assert "could not be decoded" not in text and "15 frames" in text
    assert len(video_frames(tmp_path / "o.mkv")[0]) == 15


def test_already_hdr_is_refused(tmp_path, tiny_weights):
    src = shared_path("data/fixtures/hlg_hevc_1280x720_4f.mov")
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights, "-q")
    _assert_clean_failure(code, text, tmp_path, "already HDR")


def test_existing_output_needs_overwrite(tmp_path, clip, tiny_weights):
    out = tmp_path / "o.mkv"
    out.write_bytes(b"precious")
    code, text = run_cli("convert", clip, out, "--weights", tiny_weights, "-q")
    _assert_clean_failure(code, text, tmp_path, "exists")
    assert out.read_bytes() == b"precious"
    assert run_cli("convert", clip, out, "--weights", tiny_weights, "-q", "-y")[0] == 0
    assert out.stat().st_size > 1000


def test_output_equal_to_input_is_refused(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "same.mkv", 64, 48, frames=2, audio=False)
    before = src.read_bytes()
    code, text = run_cli("convert", src, src, "--weights", tiny_weights, "-q", "-y")
    _assert_clean_failure(code, text, tmp_path, "overwrite the input")
    assert src.read_bytes() == before


def test_unwritable_output_folder(tmp_path, clip, tiny_weights):
    code, text = run_cli("convert", clip, tmp_path / "nope" / "o.mkv", "--weights", tiny_weights, "-q")
    _assert_clean_failure(code, text, tmp_path, "does not exist")
    if os.geteuid() != 0:  # root can write anywhere: the permission case only means something for users
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        code, text = run_cli("convert", clip, ro / "o.mkv", "--weights", tiny_weights, "-q")
        _assert_clean_failure(code, text, tmp_path, "not writable")


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hdrvideo", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_full_disk(tmp_path, tiny_weights):
    """A write that fails for lack of space (simulated with a file-size limit) is one clean error."""
    src = make_clip(tmp_path / "big.mp4", 320, 180, frames=48, audio=False)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    p = _cli(
        "convert",
        src,
        tmp_path / "o.mkv",
        "--weights",
        tiny_weights,
        "-q",
        "--preset",
        "ultrafast",
        "--crf",
        "0",
        preexec_fn=limit,
    )
    _, err = p.communicate(timeout=120)
    _assert_clean_failure(p.returncode, err, tmp_path, "cannot write output")
    # said as soon as the encoder's packets pass the limit, not when the file is closed (issue 27 #11)
    assert "reached the file-size limit (ulimit -f) of 20000 bytes" in err, err
    assert not (tmp_path / "o.mkv").exists()


def test_ctrl_c_removes_the_partial_output(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "long.mp4", 320, 180, frames=400, audio=False)
    out = tmp_path / "o.mkv"
    p = _cli("convert", src, out, "--weights", tiny_weights, "--quality", "full", "--preset", "slow", "-q")
    deadline = time.time() + 60
    partial = tmp_path / ".o.partial.mkv"
    while not partial.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    assert not out.exists() and not partial.exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg program on PATH")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_with_encoder_ffmpeg_is_130(tmp_path, tiny_weights, sig):
    """Issue 27, finding 8: Ctrl-C in a terminal (SIGINT to the whole process group) reached the
    ffmpeg child too, and the command said "ffmpeg failed: ffmpeg stopped" with exit 1."""
    src = make_clip(tmp_path / "long.mp4", 320, 180, frames=400, audio=False)
    out = tmp_path / "o.mkv"
    p = _cli("convert", src, out, "--weights", tiny_weights, "--quality", "full", "--encoder", "ffmpeg",
             "--preset", "slow", "-q", start_new_session=True)  # fmt: skip
    deadline = time.time() + 60
    partial = tmp_path / ".o.partial.mkv"
    while not partial.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(p.pid, sig)  # as a terminal does: the whole group
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "ffmpeg failed" not in err and "Traceback" not in err
    assert not out.exists() and not partial.exists()


def test_memory_stays_flat_on_a_long_clip(tmp_path, tiny_weights):
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings
    from hdrvideo.model import load_model
    from hdrvideo.pipeline.processor import FrameProcessor

    src = make_clip(tmp_path / "long.mkv", 128, 72, frames=600, audio=True)

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    samples: list[tuple[int, float]] = []
    proc = FrameProcessor(load_model(tiny_weights, device="cpu"), "pq")
    convert_video(
        src,
        tmp_path / "o.mkv",
        proc,
        EncoderSettings(preset="ultrafast"),
        batch_size=4,
        progress=lambda done, total: samples.append((done, rss_mb())),
    )
    early = max(m for d, m in samples if 100 <= d <= 200)
    late = max(m for d, m in samples if d >= 500)
    assert late - early < 40, (early, late)


def test_preview_still(tmp_path, clip, tiny_weights):
    import cv2

    out, png = tmp_path / "o.mkv", tmp_path / "p.png"
    code, text = run_cli(
        "convert", clip, out, "--weights", tiny_weights, "--preview", png, "--preview-frame", "3", "-q"
    )
    assert code == 0, text
    strip = cv2.imread(str(png))[:, :, ::-1]
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    h, w = frames[3].shape[:2]
    assert strip.shape == (h, 3 * w, 3)
    # the left panel is the input frame (below the label)
    assert np.abs(strip[30:, :w].astype(int) - frames[3][30:].astype(int)).mean() < 3
    code, text = run_cli(
        "convert", clip, tmp_path / "o2.mkv", "--weights", tiny_weights, "--preview", tmp_path / "p.gif"
    )
    assert code != 0 and "--preview" in text and not (tmp_path / "o2.mkv").exists()


def test_preview_stops_map_lights_up_clipped_areas():
    from hdrvideo.commands.preview import render_preview
    from hdrvideo.model import load_model
    from hdrvideo.pipeline.processor import FrameProcessor
    from tests.media import sdr_frame

    model = load_model(shared_path("reference/expandnet/weights.pth"), device="cpu")
    rgb = sdr_frame(5, 192, 108)
    strip = render_preview(FrameProcessor(model, "pq"), rgb).astype(int)
    heat = strip[:, 2 * 192 :].sum(-1)[20:-10]  # below the label, above the legend bar
    clipped = (rgb.min(-1) >= 250)[20:-10]
    assert heat[~clipped].mean() < 8  # nothing raised where the SDR was fine (inferno black)
    assert heat[clipped].mean() > heat[~clipped].mean() + 8
    tonemapped = strip[:, 192 : 2 * 192].sum(-1)[20:-10]
    assert tonemapped[clipped].mean() > tonemapped[~clipped].mean()


def test_preview_stops_map_shows_what_a_look_lowers_in_blue():
    from hdrvideo.commands.preview import render_preview
    from hdrvideo.pipeline.processor import FrameProcessor
    from tests.media import sdr_frame

    rgb = sdr_frame(5, 192, 108)
    mid = ((rgb.max(-1) < 150) & (rgb.min(-1) > 20))[20:-10]  # shadows and mid-tones the aces look darkens
    for look, blue in (("bt2408", False), ("aces", True)):
        strip = render_preview(FrameProcessor(None, "pq", look=look), rgb).astype(int)
        heat = strip[:, 2 * 192 :][20:-10]
        b_over_r = (heat[..., 2] - heat[..., 0])[mid].mean()
        assert (b_over_r > 40) == blue and b_over_r > -1, (look, b_over_r)  # 0.2–0.6 stop down; bt2408: black
        legend = strip[-4, 2 * 192 :]
        assert legend[0, 2] > 200 and legend[48, :].sum() < 30 and legend[-1, 0] > 200  # blue | black at 0 | hot


def test_convert_with_no_weights_uses_the_shipped_model(tmp_path, clip):
    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", clip, out, "-q")
    assert code == 0, text
    y, _ = video_frames(out)
    assert len(y) == 12


def test_av1_content_light_level_is_patched(tmp_path, clip, tiny_weights):
    """SVT-AV1 gets the peak as a placeholder; the HDR_CLL metadata OBU is patched to the measured values."""
    from hdrvideo.media.info import describe

    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", clip, out, "--weights", tiny_weights, "--codec", "av1", "--quality", "full", "-q")
    assert code == 0, text
    d = describe(out)
    cl = d["content_light_level"]
    assert cl["max_cll"] != 1000 and 0 < cl["max_fall"] < cl["max_cll"] <= 1000
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name in ("libdav1d", "av1", "libaom-av1")
    y_out, _ = video_frames(out)
    assert len(y_out) == 12
    assert d["mastering_display"]["max_luminance"] == 1000


def _clip_with_audio_codec(path: Path, codec: str, rate: int, layout: str) -> Path:
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=24)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    a = out.add_stream(codec, rate=rate)
    a.layout = layout
    for i in range(24):
        img = np.full((48, 64, 3), 60 + 4 * i, np.uint8)
        for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    fmt, ch = a.codec_context.format.name, a.layout.nb_channels
    t = np.arange(rate) / rate  # one second of 440 Hz
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    for k in range(0, rate, 1024):
        part = np.tile(tone[k : k + 1024], ch)[None]
        af = av.AudioFrame.from_ndarray(part, format=fmt, layout=layout)
        af.sample_rate, af.pts = rate, k
        for p in a.encode(af):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)
    out.close()
    return path


def test_audio_the_container_cannot_hold_is_reencoded(tmp_path, tiny_weights):
    src = _clip_with_audio_codec(tmp_path / "in.mov", "pcm_mulaw", 8000, "mono")  # Matroska refuses μ-law
    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", src, out, "--weights", tiny_weights, "--quality", "full")
    assert code == 0, text
    assert "re-encoded as flac" in text
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "flac" and audio.rate == 8000
        samples = sum(f.samples for f in c.decode(audio))
    assert abs(samples - 8000) <= 1024  # the whole second of sound is there


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg program on PATH (CI installs Debian's)")
def test_encoder_ffmpeg(tmp_path, clip, tiny_weights):
    from hdrvideo.media.info import describe

    out = tmp_path / "ff.mp4"
    code, text = run_cli(
        "convert", clip, out, "--weights", tiny_weights, "--encoder", "ffmpeg", "--quality", "full", "-q"
    )
    assert code == 0, text
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert cc.name == "hevc" and cc.format.name == "yuv420p10le" and cc.codec_tag == "hvc1"
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (9, 16, 9, 1)
    d = describe(out)
    assert d["mastering_display"]["max_luminance"] == 1000
    assert d["content_light_level"]["max_cll"] != 1000  # patched to the measured value
    y_out, _ = video_frames(out)
    assert len(y_out) == 12
    assert audio_packets(out) == audio_packets(clip)  # copied bit-exact by ffmpeg
    ref = bt2408_luma(clip, "pq")
    luma = np.stack([f[: ref.shape[1]] for f in y_out]).astype(int)
    assert np.median(np.abs(luma - ref.astype(int))) <= 3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg program on PATH (CI installs Debian's)")
def test_encoder_ffmpeg_refuses_variable_frame_rate(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "vfr.mkv", vfr=True, audio=False)
    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", src, out, "--weights", tiny_weights, "--encoder", "ffmpeg", "-q")
    assert code == 1 and "variable frame rate" in text and text.count("\n") <= 1
    assert not out.exists() and not list(tmp_path.glob(".o.partial*"))


def test_a_processing_failure_is_one_line_and_leaves_nothing(tmp_path, clip, monkeypatch):
    from hdrvideo.pipeline.processor import FrameProcessor

    def boom(self, frames, keep_signal=False):
        raise MemoryError("out of cuda memory for a single frame, even in 128-pixel tiles")

    monkeypatch.setattr(FrameProcessor, "submit", boom)
    out = tmp_path / "o.mkv"
    code, text = run_cli("convert", clip, out, "-q")
    assert code == 1
    assert (
        text.strip() == "hdrvideo: error: MemoryError: out of cuda memory for a single frame, even in 128-pixel tiles"
    )
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--crf", "99"], "--crf for hevc must be in 0–51, got 99"),
        (["--codec", "av1", "--crf", "70"], "--crf for av1 must be in 0–63, got 70"),
        (["--preset", "nosuch"], "--preset for hevc must be one of ultrafast"),
        (["--codec", "av1", "--preset", "fast"], "--preset for av1 (SVT-AV1) must be 0 … 13"),
        (["--codec", "prores", "--crf", "20"], "--crf applies to hevc and av1, not prores"),
        (["--device", "tpu"], "--device tpu"),
        (["--strength", "5"], "--strength must be in [0, 3], got 5"),
    ],
)
def test_encoder_and_device_options_are_one_line_before_any_work(tmp_path, args, message):
    out = tmp_path / "o.mkv"
    t = time.monotonic()
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "missing.mp4"), str(out), *args])
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output and not out.exists()
    assert time.monotonic() - t < 10


def test_a_missing_input_is_reported_before_the_model_loads(tmp_path):
    # no device notice, no torch import: the input is checked first (well under a second here)
    code = ("import sys, time; t = time.time()\n"
            "from hdrvideo.cli import main\n"
            "try:\n    main(['convert', sys.argv[1], sys.argv[2]])\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules, round(time.time() - t, 2))\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.mp4"), str(tmp_path / "o.mkv")],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    code_, torch_loaded, seconds = r.stdout.split()
    assert code_ == "1" and torch_loaded == "False", r.stdout
    assert r.stderr.strip() == f"hdrvideo: error: input not found: {tmp_path / 'missing.mp4'}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_starting_up_is_one_line_and_130(tmp_path, sig):
    """Ctrl-C or SIGTERM while torch and the model load: no traceback, exit 130, nothing written."""
    src = make_clip(tmp_path / "in.mp4", 64, 48, frames=4, audio=False)
    out = tmp_path / "o.mkv"
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from hdrvideo.cli import main\nsys.argv = ['hdrvideo', 'convert', sys.argv[1], sys.argv[2], '-q']\n"
            "import hdrvideo.pipeline.settings as s\n_real = s.ConversionSettings.build_processor\n"
            "def slow(self, *a, **k):\n    import time; print('loading', flush=True); time.sleep(30)\n"
            "s.ConversionSettings.build_processor = slow\nmain()\n")  # fmt: skip
    p = subprocess.Popen([sys.executable, "-c", code, str(src), str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout.readline().strip() == "loading"
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert err.strip() == "hdrvideo: interrupted; no output written" and not out.exists()


def test_encoder_ffmpeg_refuses_a_rotated_input_rather_than_dropping_the_rotation():
    from hdrvideo.media.encode import EncodeError
    from hdrvideo.media.encode_ffmpeg import FFmpegWriter

    writer = object.__new__(FFmpegWriter)  # the rotation check needs no ffmpeg program
    writer.rotation = 0
    assert writer.rotation == 0
    with pytest.raises(EncodeError, match=r"cannot carry the input's display rotation \(90°\)"):
        writer.rotation = 90


@pytest.mark.parametrize("codec", ["hevc", "av1"])
def test_saturated_expanded_edges_stay_within_the_mastering_peak_in_the_file(tmp_path, monkeypatch, codec):
    """Colour bars expanded far past the peak: the decoded file's R'G'B' (our 4:2:0 up-sampling)
    stays within the signalled peak up to the codec's own error, and MaxCLL covers what it shows
    (issue 27 #7: the codec's ringing is part of what a decoder shows)."""

    import torch

    from hdrvideo import colour
    from hdrvideo.colour.ycbcr import chroma_upsample_420, dequantize, ycbcr_to_rgb
    from hdrvideo.media.info import describe

    src = lossless_rgb_clip(tmp_path / "bars.mkv", saturated_bars(), 4)
    expand_everything(monkeypatch, 40.0)
    dst = tmp_path / "o.mkv"
    code, text = run_cli("convert", src, dst, "--codec", codec, "--crf", "10" if codec == "hevc" else "10", "-q")
    assert code == 0, text
    max_cll = describe(dst)["content_light_level"]["max_cll"]
    planes, _ = video_frames(dst)
    y = torch.from_numpy(planes[0][:64].astype(np.float32))
    uv = torch.from_numpy(planes[0][64:].astype(np.float32)).reshape(2, 32, 48)
    codes = torch.cat((y[None, None], chroma_upsample_420(uv[None])), 1)
    rebuilt = colour.pq_eotf(ycbcr_to_rgb(dequantize(codes, 10, True), "bt2020").clamp(0, 1))
    assert float(rebuilt.max()) <= 1100  # 1,000 cd/m² + the codec's coding error (was up to 2,400)
    assert float(rebuilt.max()) <= max_cll
    if shutil.which("ffmpeg"):
        shown = ffmpeg_peak_nits(dst)
        assert max(shown.values()) <= max_cll <= 1.1 * max(shown.values()), (shown, max_cll)



def test_the_writer_notices_an_output_that_stops_growing(tmp_path, monkeypatch):
    """FFmpeg keeps some write errors to itself until the file is closed: the writer checks as it
    goes that the file grows with what it muxed, and that its disk has room."""
    from fractions import Fraction

    from hdrvideo.media import encode
    from hdrvideo.media.encode import EncoderSettings, HDRWriter

    w = HDRWriter(tmp_path / "o.mkv", 64, 48, Fraction(1, 24), Fraction(24), EncoderSettings(preset="ultrafast"))
    w._bytes = encode.WRITE_LAG_BYTES + 1  # muxed, but nothing reached the disk
    with pytest.raises(OSError, match="stopped growing"):
        w._check_writing()
    w._bytes = 0
    monkeypatch.setattr(encode.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(OSError, match="is full"):
        w._check_writing()
    w.abort()


def test_the_encoder_drain_is_a_phase_with_progress(tmp_path, clip, monkeypatch):
    """After the last frame is processed the encoder may hold many frames: convert reports that
    phase and the frames the encoder finished, instead of sitting at 100%."""
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings, HDRWriter
    from hdrvideo.pipeline.processor import FrameProcessor

    real_close = HDRWriter.close

    def slow_close(self):  # a long drain, as x265 has on 4K with its look-ahead
        time.sleep(0.8)
        real_close(self)

    monkeypatch.setattr(HDRWriter, "close", slow_close)
    events: list = []
    r = convert_video(clip, tmp_path / "o.mkv", FrameProcessor(None), EncoderSettings(preset="ultrafast"),
                      progress=lambda d, t: events.append((d, t)), on_phase=events.append)  # fmt: skip
    assert events.count("encode") == 1
    drain = events[events.index("encode") + 1 :]
    assert len(drain) >= 2  # polled while the encoder finished
    assert all(t == r.frames and 0 <= d <= r.frames for d, t in drain)


def test_interlaced_input_is_reported(tmp_path):
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings
    from hdrvideo.pipeline.processor import FrameProcessor

    src = tmp_path / "interlaced.mp4"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"x264-params": "interlaced=1:tff=1", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        for i in range(6):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((96, 160, 3), 30 * i, np.uint8), format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    r = convert_video(src, tmp_path / "o.mkv", FrameProcessor(None), EncoderSettings(preset="ultrafast"))
    assert any("interlaced" in n and "bwdif" in n for n in r.notes), r.notes
    progressive = convert_video(make_clip(tmp_path / "p.mp4", audio=False), tmp_path / "p.mkv", FrameProcessor(None),
                                EncoderSettings(preset="ultrafast"))  # fmt: skip
    assert not any("interlaced" in n for n in progressive.notes)


def test_a_late_starting_timeline_starts_at_zero_in_the_output(tmp_path):
    """MPEG-TS files start their clocks late (1.4 s here): the output starts at zero, with the same
    duration and the streams still in sync (before: a 2.0 s input gave a 3.4 s file)."""
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings
    from hdrvideo.pipeline.processor import FrameProcessor

    src = tmp_path / "late.ts"
    with av.open(str(src), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 160, 96, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        for i in range(50):
            f = av.VideoFrame.from_ndarray(np.full((96, 160, 3), 4 * i, np.uint8), format="rgb24")
            f.pts = i + 35  # 1.4 s late
            for p in v.encode(f):
                out.mux(p)
        for i in range(int(2.0 * 48000 / 1024)):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, i * 1024 + round(1.4 * 48000)
            for p in a.encode(af):
                out.mux(p)
        for p in (*v.encode(None), *a.encode(None)):
            out.mux(p)
    with av.open(str(src)) as c:
        assert c.start_time / 1e6 > 1.3
        in_duration = c.duration / 1e6
    dst = tmp_path / "o.mkv"
    convert_video(src, dst, FrameProcessor(None), EncoderSettings(preset="ultrafast"))
    with av.open(str(dst)) as c:
        starts = {s.type: float(s.start_time * s.time_base) for s in c.streams}
        assert c.start_time / 1e6 < 0.05 and abs(c.duration / 1e6 - in_duration) < 0.1
        assert abs(starts["video"] - starts["audio"]) < 0.05  # still in sync


@pytest.mark.parametrize("codec,ext", [("prores", ".mkv"), ("ffv1", ".mkv")])
def test_what_a_codec_does_not_carry_is_said(tmp_path, clip, codec, ext):
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings
    from hdrvideo.media.info import describe
    from hdrvideo.pipeline.processor import FrameProcessor

    r = convert_video(clip, tmp_path / f"o{ext}", FrameProcessor(None), EncoderSettings(codec=codec))
    assert any("no mastering display or MaxCLL/MaxFALL metadata" in n for n in r.notes), r.notes
    d = describe(tmp_path / f"o{ext}")
    assert d.get("mastering_display") is None  # what the note says is what the file is


def test_one_picture_one_answer_image_mode_and_video_mode_agree(tmp_path):
    """The same still through image mode (.exr) and as a one-frame video: the same expansion,
    up to the video's Y'CbCr round trips (peak within 10%, median light within 5%)."""
    import torch

    from hdrvideo import colour
    from hdrvideo.commands.images import expand_image, read_sdr_image
    from hdrvideo.pipeline.settings import ConversionSettings

    img = read_sdr_image(shared_path("data/fixtures/ldr_clipped_img004_512x384.png"))
    still = expand_image(ConversionSettings(quality="full", temporal=False).build_processor(), img)
    src = tmp_path / "still.mkv"
    with av.open(str(src), "w") as o:
        s = o.add_stream("libx264rgb", rate=24, options={"crf": "0"})
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "rgb24"
        for p in (*s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")), *s.encode(None)):
            o.mux(p)
    out = tmp_path / "still_hdr.mkv"
    code, text = run_cli("convert", src, out, "--quality", "full", "--crf", "0", "-q")
    assert code == 0, text
    with av.open(str(out)) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb48le").astype(np.float32) / 65535
    video = colour.luminance(colour.pq_eotf(torch.from_numpy(rgb).permute(2, 0, 1)[None]))[0, 0].numpy() / 203
    image = colour.luminance(colour.rgb_to_rgb(torch.from_numpy(still).permute(2, 0, 1)[None],
                                               colour.BT709_TO_BT2020))[0, 0].numpy()  # fmt: skip
    assert image.max() > 2.0  # the still is expanded (before: image mode gave exactly 1.0)
    assert abs(video.max() / image.max() - 1) < 0.10
    assert abs(np.median(video / np.maximum(image, 1e-4)) - 1) < 0.05


def test_cpu_batches_are_sized_from_the_frame(tmp_path, monkeypatch):
    """Issue 15 #12, the memory rule: on a CPU a batch holds at most CPU_BATCH_BYTES of
    frame-sized work (1080p: 6 frames; 4K: 1, which kept the 4K portrait clip at 3.1–3.3 GB peak
    RSS in fast and full mode, against 6.7 and 7.6 GB in batches of 5). Tested with the budget
    scaled down to a 320×240 frame: convert and the processor both split, and say so."""
    import hdrvideo.pipeline.batching as B
    import hdrvideo.pipeline.processor as P
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings

    assert P.cpu_batch_limit(1080, 1920) == 6 and P.cpu_batch_limit(2160, 3840) == 1
    assert P.cpu_batch_limit(4320, 7680) == 1  # never below one frame
    monkeypatch.setattr(B, "CPU_BATCH_BYTES", 2.5 * B.BYTES_PER_PIXEL * 320 * 240)  # two such frames
    proc = P.FrameProcessor(None)
    sizes: list[int] = []
    real = proc._process
    monkeypatch.setattr(proc, "_process", lambda frames, keep: sizes.append(len(frames)) or real(frames, keep))
    out = proc.process(np.zeros((5, 240, 320, 3), np.uint8))
    assert sizes == [2, 2, 1] and len(out) == 5
    assert any("batches of 2 frames" in n for n in proc.notes)
    sizes.clear()
    clip = make_clip(tmp_path / "in.mp4", 320, 240, frames=7, audio=False)
    r = convert_video(clip, tmp_path / "o.mkv", proc, EncoderSettings(preset="ultrafast"), batch_size=5)
    assert r.frames == 7 and max(sizes) <= 2
    assert any("batches of 2 frames" in n for n in r.notes), r.notes


def _clip_with_subtitles(path: Path) -> Path:
    """An MKV with H.264 video and two SRT cues (written with PyAV's subtitle encoder)."""
    from av.subtitles.subtitle import SubtitleSet

    from hdrvideo.media.subtitles import DEFAULT_ASS_HEADER

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = out.add_stream("subrip")
        s.codec_context.time_base = Fraction(1, 1000)
        s.codec_context.subtitle_header = DEFAULT_ASS_HEADER
        s.metadata["language"] = "fra"
        cues = [(100, 300, b"0,0,Default,,0,0,0,,Bonjour"), (500, 400, b"1,0,Default,,0,0,0,,Au revoir")]
        for i in range(10):
            img = np.full((48, 64, 3), 20 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            for p in v.encode(frame):
                out.mux(p)
            for start, dur, text in cues:
                if i == start // 100:
                    pkt = s.codec_context.encode_subtitle(SubtitleSet.create(text, 0, dur, start))
                    pkt.stream, pkt.time_base = s, Fraction(1, 1000)
                    pkt.pts = pkt.dts = start
                    pkt.duration = dur
                    out.mux(pkt)
        for p in v.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_text_subtitles_are_carried_into_mp4_as_mov_text(tmp_path, suffix):
    """Issue 15 #10: MP4 and MOV cannot hold SRT; the cues go in as mov_text, with their times,
    text and language, instead of being dropped."""
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings
    from hdrvideo.pipeline.processor import FrameProcessor

    src = _clip_with_subtitles(tmp_path / "subs.mkv")
    out = tmp_path / f"o{suffix}"
    r = convert_video(src, out, FrameProcessor(None), EncoderSettings(preset="ultrafast"))
    assert any("re-encoded as mov_text" in n for n in r.notes), r.notes
    with av.open(str(out)) as c:
        (s,) = c.streams.subtitles
        assert s.codec_context.name == "mov_text" and s.metadata.get("language") == "fra"
        cues = []
        for pkt in c.demux(s):
            if pkt.pts is None:
                continue
            subs = s.decode2(pkt)
            if subs is not None:
                text = b"".join(r.ass for r in subs.rects)
                cues.append((round(float(pkt.pts * pkt.time_base), 2), round(float(pkt.duration * pkt.time_base), 2), text))
    assert [(t, d) for t, d, _ in cues] == [(0.1, 0.3), (0.5, 0.4)]
    assert b"Bonjour" in cues[0][2] and b"Au revoir" in cues[1][2]
    # and an MKV keeps the SRT stream as it is
    r = convert_video(src, tmp_path / "o.mkv", FrameProcessor(None), EncoderSettings(preset="ultrafast"), overwrite=True)
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert [s.codec_context.name for s in c.streams.subtitles] in (["subrip"], ["srt"])


def test_misleading_outputs_and_options_get_a_clear_line(tmp_path, tiny_weights):
    """Issue 27, finding 11: an output that is a folder, an output folder that is a file, an
    unknown extension (the list names every container), --preview-frame past the end, and `info`
    of a file with no duration."""
    src = make_clip(tmp_path / "in.mp4", 64, 36, frames=6, audio=False)
    (tmp_path / "folder").mkdir()
    code, text = run_cli("convert", src, tmp_path / "folder", "--weights", tiny_weights, "-q")
    assert code != 0 and "output is a folder" in text and "Traceback" not in text
    (tmp_path / "afile").write_text("x")
    code, text = run_cli("convert", src, tmp_path / "afile" / "o.mkv", "--weights", tiny_weights, "-q")
    assert code != 0 and "is a file, not a folder" in text
    code, text = run_cli("convert", src, tmp_path / "o.webm", "--weights", tiny_weights, "-q")
    assert code != 0 and ".ts" in text and ".mkv" in text
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights, "-q",
                         "--preview", tmp_path / "p.png", "--preview-frame", "999")  # fmt: skip
    assert code != 0 and "has 6 frames" in text and not (tmp_path / "o.mkv").exists()
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "still.mp4").write_bytes(png.tobytes())  # a PNG named .mp4
    code, text = run_cli("info", tmp_path / "still.mp4")
    assert "None s" not in text and "Traceback" not in text


@pytest.mark.parametrize("ext", ["mkv", "mp4", "mov"])
def test_anamorphic_video_keeps_its_pixel_aspect(tmp_path, tiny_weights, ext):
    """Issue 27, finding 3: 720×576-style video with pixel aspect 16:15 came out with square
    pixels (a 4:3 picture shown at 5:4). The SAR goes into the bitstream and the container."""
    src = _h264_clip(tmp_path / "sar.mp4", 72, 48, lambda s: setattr(s.codec_context, "sample_aspect_ratio", Fraction(16, 15)))
    code, text = run_cli("convert", src, tmp_path / f"o.{ext}", "--weights", tiny_weights, "-q")
    assert code == 0, text
    with av.open(str(tmp_path / f"o.{ext}")) as c:
        v = c.streams.video[0]
        assert v.sample_aspect_ratio == Fraction(16, 15) and v.codec_context.sample_aspect_ratio == Fraction(16, 15)


def test_av1_encoder_banner_stays_off_the_terminal(tmp_path, tiny_weights):
    """Issue 27, finding 11: SVT-AV1 printed about 20 lines of banner and settings on stderr."""
    src = make_clip(tmp_path / "in.mp4", 64, 36, frames=3, audio=False)
    env = {k: v for k, v in os.environ.items() if k != "SVT_LOG"}
    p = _cli("convert", src, tmp_path / "o.mkv", "--codec", "av1", "--weights", tiny_weights, "-q", env=env)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "Svt[info]" not in err and err.strip() == "", err


def _tagged(tags: dict, key: str) -> str | None:
    return next((v for k, v in tags.items() if k.lower() == key), None)


@pytest.mark.parametrize("ext", ["mov", "mp4", "mkv"])
def test_a_timecode_is_kept(tmp_path, tiny_weights, ext):
    """Issue 27, finding 11: a source's timecode track was dropped with no word. MOV/MP4 get a
    timecode (tmcd) track, Matroska a TIMECODE tag."""
    src = _h264_clip(tmp_path / "tc.mov", 64, 48, lambda s: s.metadata.update(timecode="01:02:03:04"))
    code, text = run_cli("convert", src, tmp_path / f"o.{ext}", "--weights", tiny_weights, "-q")
    assert code == 0, text
    with av.open(str(tmp_path / f"o.{ext}")) as c:
        assert _tagged(c.streams.video[0].metadata, "timecode") == "01:02:03:04"
        if ext != "mkv":
            assert any(s.type == "data" and _tagged(s.metadata, "timecode") == "01:02:03:04" for s in c.streams)


def test_alpha_is_dropped_with_a_note(tmp_path, tiny_weights):
    """Issue 27, finding 11: alpha was dropped with no note."""
    src = tmp_path / "alpha.mov"
    with av.open(str(src), "w") as out:
        s = out.add_stream("qtrle", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "argb"
        for i in range(3):
            rgba = np.full((48, 64, 4), 120, np.uint8)
            rgba[..., 3] = 128
            f = av.VideoFrame.from_ndarray(rgba, format="rgba")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    code, text = run_cli("convert", src, tmp_path / "o.mkv", "--weights", tiny_weights)
    assert code == 0, text
    assert "alpha channel: dropped" in text


def _h264_clip(path: Path, w: int, h: int, configure) -> Path:
    """Three H.264 frames written by PyAV, the video stream first given to ``configure``."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        configure(s)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((h, w, 3), 60 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path
