"""`hdrvideo stream` with a live source built from lavfi (``testsrc2 … ,realtime``): real-time
behaviour (drops, capture-clock timestamps), HDR tags in files and over UDP, signals, and the
camera path as far as it goes without a camera."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hdrvideo.cli import main
from hdrvideo.commands.stream import LatestFrames, StreamError, StreamOptions, input_options, output_format, run_stream
from hdrvideo.media.encode import EncoderSettings
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.temporal import TemporalConfig, TemporalFilter

LIVE = "testsrc2=size={size}:rate=30,realtime"


def live(size: str = "320x180", seconds: float | None = None) -> str:
    src = LIVE.format(size=size)
    return src.replace(":rate=30,", f":rate=30:duration={seconds},") if seconds else src


@pytest.fixture
def processor(tiny_model) -> FrameProcessor:
    """A real ExpandNet path (narrow random weights, fast mode) with causal temporal filtering."""
    return FrameProcessor(tiny_model, "pq", 1000.0, net_long_side=160, temporal=TemporalFilter(TemporalConfig()))


def probe_video(path: Path | io.BytesIO, fmt: str | None = None) -> tuple[list[av.VideoFrame], float | None]:
    with av.open(path, format=fmt) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        last = frames[-1]
        end = float((last.pts + (last.duration or 0)) * last.time_base) if frames else None
        return frames, end


def assert_hdr10(frames: list[av.VideoFrame], trc: int = 16) -> None:
    assert frames, "no frame decoded"
    f = frames[-1]
    assert (f.color_primaries, f.color_trc, f.colorspace, f.color_range) == (9, trc, 9, 1)
    assert f.format.name == "yuv420p10le"


def test_live_file_is_hdr_and_lasts_the_wall_clock_time(processor, tmp_path):
    out = tmp_path / "live.mkv"
    opts = StreamOptions(input=live(), input_format="lavfi", output=str(out), duration=3.0)
    r = run_stream(opts, processor, EncoderSettings())
    assert r.stop_reason == "duration reached" and not r.failed
    assert r.captured == r.processed + r.dropped
    assert 80 <= r.captured <= 95  # 30 fps for 3 s
    frames, end = probe_video(out)
    assert len(frames) == r.processed
    assert_hdr10(frames)
    assert abs(end - r.seconds) <= 0.1 * r.seconds, (end, r.seconds)
    # timestamps from the capture clock: strictly increasing, about 1/30 s apart when nothing is dropped
    assert r.latencies and len(r.latencies) == r.processed
    with av.open(str(out)) as c:
        info = [s.codec_context.color_trc for s in c.streams.video]
    assert info == [16]


def test_a_stream_can_hand_over_ycbcr_planes(processor, tmp_path):
    """As on a GPU: the capture thread hands the processor 8-bit 4:2:0 planes (testsrc2 decodes to
    yuv420p), and the stream is the same HDR10 file."""
    planes = []
    real = processor.process

    def spy(frames, keep_signal=False):
        if type(frames).__name__ == "YCbCrFrames":
            planes.append(len(frames))
        return real(frames, keep_signal)

    processor.process, processor.host.takes_planes = spy, True
    out = tmp_path / "planes.mkv"
    opts = StreamOptions(input=live(seconds=1.0), input_format="lavfi", output=str(out), realtime=False)
    r = run_stream(opts, processor, EncoderSettings())
    assert r.stop_reason == "source ended" and not r.failed and r.processed > 0
    assert sum(planes) == r.processed  # every captured frame went as planes (the speed probe: one RGB frame)
    frames, _ = probe_video(out)
    assert len(frames) == r.processed
    assert_hdr10(frames)


def test_slow_processing_drops_frames_and_keeps_true_time(processor, tmp_path):
    slow_calls = []
    real = processor.process

    def slow(frames, keep_signal=False):
        slow_calls.append(len(frames))
        time.sleep(0.2)  # five frames a second at most, against 30 captured
        return real(frames, keep_signal)

    processor.process = slow
    out = tmp_path / "slow.mkv"
    opts = StreamOptions(input=live(), input_format="lavfi", output=str(out), duration=3.0, max_latency=0.5)
    r = run_stream(opts, processor, EncoderSettings())
    assert r.dropped > 40, r.summary()
    assert r.processed <= 20
    assert r.captured == r.processed + r.dropped
    frames, end = probe_video(out)
    assert len(frames) == r.processed
    assert abs(end - r.seconds) <= 0.1 * r.seconds, (end, r.seconds)
    # the gaps follow the capture clock: ~0.2 s between frames, not 1/30 s
    pts = [float(f.pts * f.time_base) for f in frames]
    assert np.median(np.diff(pts)) > 0.15
    # latency stays bounded: a queue that kept every frame would grow by ~0.8 s per second here
    lat = r.latencies
    quarter = max(1, len(lat) // 4)
    assert np.mean(lat[-quarter:]) < np.mean(lat[:quarter]) + 0.5, lat
    assert max(lat) < 2.0, lat


def test_latest_frames_newest_wins_and_latency_bound():
    buf = LatestFrames(capacity=1, max_latency=10.0)
    for i in range(5):
        buf.put(time.monotonic(), np.full((2, 2, 3), i, np.uint8))
    got = buf.take(1)
    assert len(got) == 1 and got[0][1][0, 0, 0] == 4 and buf.dropped == 4
    buf = LatestFrames(capacity=4, max_latency=0.05)
    buf.put(time.monotonic() - 1.0, np.zeros((2, 2, 3), np.uint8))  # waited too long
    buf.put(time.monotonic(), np.ones((2, 2, 3), np.uint8))
    got = buf.take(4)
    assert len(got) == 1 and got[0][1][0, 0, 0] == 1 and buf.dropped == 1
    buf.close()
    assert buf.take(1) is None


def test_udp_mpegts_output_arrives_with_hdr_tags(processor):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.2)
    port = rx.getsockname()[1]
    received = bytearray()
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            try:
                received.extend(rx.recv(65536))
            except TimeoutError:
                continue

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    processor.transfer = "hlg"
    opts = StreamOptions(input=live(), input_format="lavfi", output=f"udp://127.0.0.1:{port}", duration=2.0)
    r = run_stream(opts, processor, EncoderSettings(transfer="hlg"))
    time.sleep(0.3)
    done.set()
    t.join()
    rx.close()
    assert r.processed > 5 and not r.failed
    assert len(received) % 188 == 0 and received[0] == 0x47  # whole MPEG-TS packets
    frames, _ = probe_video(io.BytesIO(bytes(received)), "mpegts")
    assert len(frames) >= r.processed - 2  # the receiver may join a GOP late: never more than a couple
    assert_hdr10(frames, trc=18)


def test_tcp_receiver_gone_stops_cleanly(processor, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def accept_then_hang_up() -> None:
        conn, _ = server.accept()
        conn.recv(10000)
        time.sleep(0.5)
        conn.close()
        server.close()

    threading.Thread(target=accept_then_hang_up, daemon=True).start()
    opts = StreamOptions(input=live(), input_format="lavfi", output=f"tcp://127.0.0.1:{port}", duration=20.0)
    t0 = time.monotonic()
    r = run_stream(opts, processor, EncoderSettings())
    assert r.failed and r.stop_reason.startswith("output lost"), r.stop_reason
    assert time.monotonic() - t0 < 10


def test_source_end_leaves_a_complete_file(processor, tmp_path):
    out = tmp_path / "end.ts"
    r = run_stream(
        StreamOptions(input=live(seconds=1), input_format="lavfi", output=str(out)), processor, EncoderSettings()
    )
    assert r.stop_reason == "source ended" and not r.failed
    frames, _ = probe_video(out)
    assert len(frames) == r.processed > 0
    assert_hdr10(frames)


def _cli_stream(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hdrvideo", "stream", "-i", live(), "-f", "lavfi", "-o", str(out), "--quality",
         "fast", "--duration", "60", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _wait_for_frames(out: Path, proc: subprocess.Popen, size: int = 20000, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not (out.exists() and out.stat().st_size > size):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "no output"
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_finalises_a_playable_file(tmp_path, sig):
    out = tmp_path / "sig.mkv"
    proc = _cli_stream(out, "--preview")  # no display here: a clear warning, and the stream goes on
    _wait_for_frames(out, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "streaming without a preview" in err
    assert "interrupted" in err and "captured" in err and "p95" in err and "Traceback" not in err
    frames, end = probe_video(out)
    assert len(frames) > 3
    assert_hdr10(frames)
    with av.open(str(out)) as c:
        assert c.duration and c.duration > 0  # finalised: the header carries the duration


def test_kill_leaves_a_file_that_plays_to_where_it_stopped(tmp_path):
    out = tmp_path / "killed.mkv"
    proc = _cli_stream(out, "-q")
    _wait_for_frames(out, proc, size=60000)
    time.sleep(1.5)  # at least one whole cluster (≤ 1 s) on disk
    proc.kill()
    proc.wait(timeout=10)
    frames, _ = probe_video(out)
    assert len(frames) > 5
    assert_hdr10(frames)


def test_v4l2_options_and_missing_camera(tmp_path):
    opts = StreamOptions(
        input="/dev/video0", output="x.mkv", video_size="1280x720", framerate="30", pixel_format="mjpeg"
    )
    assert input_options(opts, "video4linux2") == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}
    assert input_options(opts, "dshow")["pixel_format"] == "mjpeg"
    assert any("video4linux2" in f for f in av.formats_available)
    missing = "/dev/video97"
    assert not os.path.exists(missing)
    r = CliRunner().invoke(main, ["stream", "-i", missing, "-o", str(tmp_path / "cam.mkv"), "-q"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"hdrvideo: error: camera not found: {missing} (is it plugged in? `ls /dev/video*` lists cameras)"
    ]
    assert not (tmp_path / "cam.mkv").exists()


def test_outputs_and_bad_arguments(tmp_path):
    assert output_format("udp://127.0.0.1:5000") == ("udp://127.0.0.1:5000?pkt_size=1316", "mpegts")
    assert output_format("srt://host:9000?mode=caller")[1] == "mpegts"
    assert output_format("rtmp://host/live/key")[1] == "flv"
    assert output_format("out.mkv") == ("out.mkv", "matroska")
    with pytest.raises(StreamError, match="mkv or .ts"):
        output_format("out.mp4")
    existing = tmp_path / "exists.mkv"
    existing.write_bytes(b"keep me")
    for args, message in [
        (["-i", live(), "-f", "lavfi", "-o", str(existing)], "output exists"),
        (["-i", str(tmp_path / "nothing.mp4"), "-o", str(tmp_path / "o.mkv")], "input not found"),
        (["-i", "nosuchfilter=x", "-f", "lavfi", "-o", str(tmp_path / "o.mkv")], "cannot open the input"),
        (["-i", live(), "-f", "nosuchformat", "-o", str(tmp_path / "o.mkv")], "no input format"),
    ]:
        r = CliRunner().invoke(main, ["stream", *args, "-q"])
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], r.output
    assert existing.read_bytes() == b"keep me"


def test_network_outputs_signal_unknown_light_level():
    from hdrvideo.media.encoder_settings import codec_options as _codec_options

    assert "max-cll=0,0" in _codec_options(EncoderSettings(light_level_known=False))["x265-params"]
    assert "max-cll=1000,1000" in _codec_options(EncoderSettings(peak_nits=1000))["x265-params"]


def test_a_file_streams_at_its_own_frame_rate(processor, tmp_path):
    from tests.media import make_clip

    clip = make_clip(tmp_path / "in.mp4", 160, 90, frames=48, fps=24, audio=False)  # 2 s of video
    out = tmp_path / "from_file.mkv"
    t0 = time.monotonic()
    r = run_stream(StreamOptions(input=str(clip), output=str(out)), processor, EncoderSettings())
    took = time.monotonic() - t0
    assert r.stop_reason == "source ended" and r.captured == 48
    assert 1.9 < r.seconds < 2.4 and took > 1.9  # paced like a live source, not decoded in a burst
    frames, end = probe_video(out)
    assert abs(end - 2.0) < 0.2 and len(frames) == r.processed


def test_a_processing_error_ends_the_stream_with_a_valid_file(processor, tmp_path):
    real, calls = processor.process, []

    def failing(frames, keep_signal=False):
        calls.append(1)
        if len(calls) > 10:  # the warm-up and the timing of choose_net_every take up to 4
            raise MemoryError("out of cpu memory for a single frame, even in 128-pixel tiles")
        return real(frames, keep_signal)

    processor.process = failing
    out = tmp_path / "fail.mkv"
    r = run_stream(StreamOptions(input=live(), input_format="lavfi", output=str(out), duration=10), processor,
                   EncoderSettings())  # fmt: skip
    assert r.failed and r.stop_reason.startswith("processing failed (MemoryError: out of cpu memory")
    frames, _ = probe_video(out)
    assert len(frames) == r.processed >= 5


def test_a_receiver_joining_late_with_default_probing_starts_within_seconds():
    """A live UDP stream carries a keyframe with its parameter sets every second, so a receiver
    that joins mid-stream with FFmpeg's default probing (as ffplay, ffmpeg or VLC do) decodes
    within a couple of seconds (before: nothing in 60–90 s)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    got: dict[str, float] = {}

    def receiver() -> None:
        time.sleep(1.5)  # join late: the stream has been running for a while
        t = time.monotonic()
        try:
            with av.open(f"udp://127.0.0.1:{port}", options={"timeout": "8000000"}) as c:
                for _ in c.decode(video=0):
                    got["first_frame_s"] = time.monotonic() - t
                    break
        except av.error.FFmpegError:
            pass

    th = threading.Thread(target=receiver, daemon=True)
    th.start()
    opts = StreamOptions(input=live(), input_format="lavfi", output=f"udp://127.0.0.1:{port}", duration=7.0)
    r = run_stream(opts, FrameProcessor(None, "pq", 1000.0), EncoderSettings())
    th.join(10)
    assert not r.failed
    assert got.get("first_frame_s", 99) < 3.0, got


def test_network_on_every_kth_frame(tiny_model, monkeypatch):
    """Issue 13: where the network cannot run on every frame in real time, it runs on every k-th
    and its output is carried between; k comes from the measured times."""
    from hdrvideo.commands.stream import MAX_NET_EVERY, choose_net_every
    from hdrvideo.pipeline.processor import FrameProcessor

    proc = FrameProcessor(tiny_model, "pq", net_long_side=64)
    calls = []
    real = proc.expand
    monkeypatch.setattr(proc, "expand", lambda x: calls.append(x.shape) or real(x))
    frames = np.random.default_rng(3).integers(0, 256, (7, 72, 128, 3), dtype=np.uint8)
    frames[:, 10:40, 20:80] = 255
    proc.net_every = 3
    out = [proc.process(frames[i : i + 1]) for i in range(7)]
    assert len(calls) == 3  # frames 0, 3 and 6
    # a carried frame is the current frame's SDR with the network frame's output: identical
    # to per-frame processing when the picture did not change
    same = FrameProcessor(tiny_model, "pq", net_long_side=64)
    assert np.array_equal(same.process(frames[:1]).y, out[0].y)
    proc.reset()
    calls.clear()
    a, b = proc.process(frames[:1]), proc.process(frames[:1])
    assert len(calls) == 1 and np.array_equal(a.y, b.y)
    # a batch (a stream that fell behind hands over two frames) is carried frame by frame too
    proc.reset()
    calls.clear()
    batched = proc.process(frames[:6])
    assert len(calls) == 2  # frames 0 and 3
    assert np.array_equal(batched.y, np.concatenate([o.y for o in out[:6]]))
    proc.reset()
    assert proc._net_cache is None
    # the choice: every frame where it keeps up, every k-th where it does not, at most MAX_NET_EVERY
    assert choose_net_every(proc, 128, 72, fps=0.01) is None and proc.net_every == 1
    note = choose_net_every(proc, 128, 72, fps=100_000.0)
    assert proc.net_every == MAX_NET_EVERY and f"every {MAX_NET_EVERY}th frame" in note
    assert choose_net_every(FrameProcessor(None), 128, 72, fps=100_000.0) is None


def test_first_frame_within_two_seconds_on_a_cold_kernel_cache(tiny_model, tmp_path, monkeypatch):
    """Issue 27 #9: with nothing compiled in the cache, the stream runs the eager code from its
    first frame (compiling every graph first took 35 s at 720p) and says that the kernels are
    being compiled ahead for the next stream."""
    from hdrvideo.pipeline import compiled

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cold"))
    if compiled.compiler_missing(torch.device("cpu")):
        pytest.skip("no C++ compiler: nothing is compiled, so nothing to wait for")
    proc = FrameProcessor(tiny_model, "pq", 1000.0, net_long_side=160, compile=True,
                          temporal=TemporalFilter(TemporalConfig()))  # fmt: skip
    asked: list[tuple[int, int, bool]] = []

    def ahead(width: int, height: int, keep_signal: bool) -> str:
        asked.append((width, height, keep_signal))
        return "compiled ahead for the next stream"

    first: list[float] = []
    t0 = time.monotonic()
    opts = StreamOptions(input=live("640x360"), input_format="lavfi", output=str(tmp_path / "o.mkv"), duration=3.0)
    r = run_stream(opts, proc, EncoderSettings(), compile_ahead=ahead,
                   on_status=lambda rep: first or (rep.processed and first.append(time.monotonic() - t0)))  # fmt: skip
    assert asked == [(640, 360, False)] and "compiled ahead for the next stream" in r.notes
    assert not r.failed and r.processed > 5
    assert first and first[0] < 2.0, first
    assert not compiled.Compiled.hold  # the next conversion in this process compiles as usual


def test_compile_ahead_keys_and_child(tmp_path, monkeypatch):
    """The marker names the settings that shape the graphs and the frame size, nothing else; the
    child runs this module at the lowest priority."""
    from hdrvideo.pipeline import prewarm
    from hdrvideo.pipeline.compiled import warm_marker
    from hdrvideo.pipeline.settings import ConversionSettings

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    s = ConversionSettings(quality="fast", device="cpu")
    key = prewarm.settings_key(s, 1280, 720, False)
    assert key.startswith("1280x720-")
    assert key == prewarm.settings_key(ConversionSettings(quality="fast", device="cpu", crf=30, codec="av1"), 1280, 720,
                                       False)  # fmt: skip
    for other in (ConversionSettings(quality="full", device="cpu"), ConversionSettings(quality="fast", device="cpu",
                                                                                         peak_nits=600)):  # fmt: skip
        assert prewarm.settings_key(other, 1280, 720, False) != key
    assert prewarm.settings_key(s, 640, 360, False) != key and prewarm.settings_key(s, 1280, 720, True) != key
    assert not prewarm.is_warm(s, 1280, 720, False)
    warm_marker(key).parent.mkdir(parents=True)
    warm_marker(key).write_text("{}")
    assert prewarm.is_warm(s, 1280, 720, False)

    seen = {}

    class FakePopen:
        pid = 4242

        def __init__(self, args, **kw):
            seen["args"], seen["kw"] = args, kw

    monkeypatch.setattr(prewarm.subprocess, "Popen", FakePopen)
    prewarm.start(s, 640, 360, True)
    assert seen["args"][1:3] == ["-m", "hdrvideo.pipeline.prewarm"]
    job = json.loads(seen["args"][3])
    assert (job["width"], job["height"], job["keep_signal"], job["settings"]["quality"]) == (640, 360, True, "fast")
    assert seen["kw"]["stdout"] == subprocess.DEVNULL and seen["kw"]["preexec_fn"] is not None
