"""The compiled colour stage and network (issue 13): the same codes as the eager path, a
persistent cache, and never a failure where no compiler works."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdrvideo.pipeline import compiled as C
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.settings import ConversionSettings, SettingsError
from tests.conftest import shared_path

needs_compiler = pytest.mark.skipif(
    C.compiler_missing(torch.device("cpu")) is not None, reason="no C++ compiler: the compiled path cannot run here"
)


def _real_frames(n: int = 2) -> np.ndarray:
    """Decoded frames of a real SDR clip (1080×720, H.264), with a clipped patch added."""
    from hdrvideo.media.decode import read_rgb_frames

    out, _ = read_rgb_frames(shared_path("data/fixtures/sdr_h264_1080x720_30f.mp4"), n)
    out[:, 100:220, 300:520] = 255  # a clipped highlight, so the gain and the peak limit both act
    return out


def _float64_codes(frames: np.ndarray, proc: FrameProcessor) -> tuple[np.ndarray, np.ndarray]:
    """The eager stage (BT.2408, no network) computed in float64: (luma codes, chroma codes)."""
    from hdrvideo import colour
    from hdrvideo.pipeline import colour_stage

    linear = colour.bt1886_eotf(torch.from_numpy(frames).permute(0, 3, 1, 2).double() / 255)
    y, uv, _, _ = colour_stage.planes(linear, None, proc.stage)
    y, _ = colour_stage.limit_to_peak(y, uv, proc.stage.peak_signal)
    return y.numpy().astype(np.uint16), uv.numpy().astype(np.uint16)


def _compare(eager, fused):
    dy = np.abs(eager.y.astype(int) - fused.y.astype(int))
    duv = np.abs(eager.uv.astype(int) - fused.uv.astype(int))
    return dy, duv


@needs_compiler
@pytest.mark.parametrize("with_model", [False, True])
def test_compiled_path_gives_the_codes_of_the_eager_path_on_real_frames(tiny_model, monkeypatch, tmp_path, with_model):
    """Within one 10-bit code on at most 0.1% of the samples, light levels to 0.1%. On a CPU the
    compiled stage looks BT.1886 and PQ up in float64-made tables (colour/tables.py): its codes are
    closer to a float64 computation than the eager float32 path's (measured on these frames:
    0.007% of luma codes differ from float64 against 0.07%), and the difference to the eager path
    is that path's own rounding (0.06% of luma codes)."""
    monkeypatch.setenv("HDRVIDEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")  # records the variable, so that teardown restores it
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    frames = _real_frames()
    model = tiny_model if with_model else None
    eager = FrameProcessor(model, "pq", net_long_side=240).process(frames)
    proc = FrameProcessor(model, "pq", net_long_side=240, compile=True)
    fused = proc.process(frames)
    assert proc.notes == [] and proc._fused_light.usable
    dy, duv = _compare(eager, fused)
    assert dy.max() <= 1 and duv.max() <= 1, (dy.max(), duv.max())
    assert (dy > 0).mean() <= 1e-3 and (duv > 0).mean() <= 1e-3, ((dy > 0).mean(), (duv > 0).mean())
    np.testing.assert_allclose(fused.max_cll, eager.max_cll, rtol=1e-3)
    np.testing.assert_allclose(fused.max_fall, eager.max_fall, rtol=1e-3)
    np.testing.assert_allclose(fused.params, eager.params, rtol=1e-3, atol=1e-4)
    if not with_model:  # against the same stage in float64: at least as exact as the eager path
        y64, uv64 = _float64_codes(frames, proc)
        assert (fused.y != y64).mean() <= (eager.y != y64).mean() and (fused.uv != uv64).mean() <= (eager.uv != uv64).mean()
    # the compiled kernels are kept for the next run
    assert C.cache_dir() == tmp_path / "cache" / "inductor"
    import os

    assert any(os.scandir(os.environ["TORCHINDUCTOR_CACHE_DIR"]))
    # a short last batch compiles nothing new and gives the same codes
    again = proc.process(frames[:1])
    assert np.array_equal(again.y[0], fused.y[0])


@needs_compiler
def test_compiled_path_keeps_the_signal_and_the_peak():
    frames = _real_frames(1)
    eager = FrameProcessor(None, "pq", peak_nits=600.0).process(frames, keep_signal=True)
    fused = FrameProcessor(None, "pq", peak_nits=600.0, compile=True).process(frames, keep_signal=True)
    assert fused.signal.shape == eager.signal.shape
    assert float((fused.signal - eager.signal).abs().max()) < 1e-5  # the eager float32 PQ's error: 6e-6
    assert float(fused.max_cll.max()) <= 600.0


def test_without_a_compiler_it_runs_eagerly_and_says_so_once(monkeypatch, tiny_model):
    monkeypatch.setattr(C, "compiler_missing", lambda device: "no C++ compiler (g++ or clang++) found")
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    proc = FrameProcessor(tiny_model, "pq", compile=True)
    out = proc.process(frames)
    proc.process(frames)
    assert np.array_equal(out.y, FrameProcessor(tiny_model, "pq").process(frames).y)
    assert len(proc.notes) == len(set(proc.notes)) >= 1
    assert all("no C++ compiler" in n and "runs eagerly" in n for n in proc.notes)


def test_a_failing_compiler_falls_back_with_the_same_result(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("CppCompileError: C++ compile error\nmore lines")

        return run

    monkeypatch.setattr(C, "compiler_missing", lambda device: None)
    monkeypatch.setattr(torch, "compile", broken_compile)
    frames = np.random.default_rng(1).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    proc = FrameProcessor(None, "pq", compile=True)
    first = proc.process(frames)  # this batch: the same functions, eagerly
    second = proc.process(frames)  # later batches: the banded eager path
    reference = FrameProcessor(None, "pq").process(frames)
    assert np.array_equal(second.y, reference.y) and np.array_equal(second.uv, reference.uv)
    dy, duv = _compare(reference, first)
    assert dy.max() <= 1 and duv.max() <= 1
    assert not proc._fused_light.usable
    assert len(proc.notes) == 1 and "C++ compile error" in proc.notes[0] and "more lines" not in proc.notes[0]


def test_the_network_compiles_in_the_measured_mode_on_a_gpu_only(monkeypatch, tiny_model):
    """Issue 28 #3: max-autotune (no CUDA graphs) for the network on a GPU, what bench --network
    measured fastest; the default mode on a CPU; the colour stage's functions keep their options."""
    seen = []

    def recording_compile(fn, **kwargs):
        seen.append(kwargs)
        return fn

    monkeypatch.setattr(C, "compiler_missing", lambda device: None)
    monkeypatch.setattr(torch, "compile", recording_compile)
    gpu, cpu = C.Compiled(tiny_model, torch.device("cuda")), C.Compiled(tiny_model, torch.device("cpu"))
    colour = C.Compiled(lambda x: x + 1, torch.device("cuda"))
    assert gpu.compile_arguments() == {"mode": "max-autotune-no-cudagraphs"}
    assert cpu.compile_arguments() == {} and "mode" not in colour.compile_arguments()
    x = torch.zeros(1, 3, 8, 8)
    cpu(x), colour(x)
    assert seen == [{"dynamic": False}, {"dynamic": False, "options": {"assert_indirect_indexing": False}}]


def test_compile_setting(monkeypatch):
    monkeypatch.setenv("HDRVIDEO_COMPILE", "off")
    assert ConversionSettings().compile_resolved == "off"
    monkeypatch.setenv("HDRVIDEO_COMPILE", "bogus")
    assert ConversionSettings().compile_resolved == "auto"
    assert ConversionSettings(compile="on").compile_resolved == "on"
    with pytest.raises(SettingsError, match="--compile must be one of"):
        ConversionSettings(compile="sometimes").validate()
    monkeypatch.setattr(C, "compiler_missing", lambda device: "no C++ compiler (g++ or clang++) found")
    with pytest.raises(SettingsError, match="--compile on: no C\\+\\+ compiler"):
        ConversionSettings(compile="on", quality="fast").build_processor()
    proc = ConversionSettings(compile="auto", quality="fast", temporal=False).build_processor()
    assert proc._fused_light is not None and not proc._fused_light.usable


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setenv("HDRVIDEO_CACHE", str(tmp_path))
    assert C.cache_dir() == tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert C.cache_dir() == tmp_path / "mine"


def test_openmp_waits_passively_only_where_the_colour_stage_compiles(monkeypatch):
    """Spinning OpenMP threads halve x265's speed beside the compiled stage; the eager stage's
    many short parallel regions want them: the CLI sets OMP_WAIT_POLICY for the first only."""
    from hdrvideo.cli import _compiles

    monkeypatch.setenv("HDRVIDEO_COMPILE", "auto")
    monkeypatch.setenv("CXX", "g++")
    import shutil

    if not shutil.which("g++"):
        pytest.skip("no g++ on this machine")
    assert _compiles(["in.mp4", "out.mkv"])
    assert not _compiles(["in.mp4", "out.mkv", "--compile", "off"])
    assert not _compiles(["--compile=off", "in.mp4"])
    monkeypatch.setenv("HDRVIDEO_COMPILE", "off")
    assert not _compiles(["in.mp4"]) and _compiles(["--compile", "on", "in.mp4"])
    monkeypatch.setenv("HDRVIDEO_COMPILE", "auto")
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not _compiles(["in.mp4"])


@needs_compiler
def test_compiled_temporal_filter_and_calibration_give_the_eager_codes(tiny_model):
    """Fast mode with the temporal filter, as ``convert`` runs it: the filter's passes and the
    calibration at the network's resolution compiled (frame by frame, on one thread) give the
    eager path's codes over two batches (state carried), within one code on ≤ 0.1% of samples."""
    from hdrvideo.pipeline.temporal import TemporalFilter

    frames = np.concatenate([_real_frames(3), 255 - _real_frames(3)])  # a cut in the middle (inverted)
    eager = FrameProcessor(tiny_model, "pq", net_long_side=240, temporal=TemporalFilter())
    proc = FrameProcessor(tiny_model, "pq", net_long_side=240, temporal=TemporalFilter(), compile=True)
    threads = torch.get_num_threads()
    for part in (frames[:4], frames[4:]):
        a, b = eager.process(part), proc.process(part)
        dy, duv = _compare(a, b)
        assert dy.max() <= 1 and duv.max() <= 1 and (dy > 0).mean() <= 1e-3 and (duv > 0).mean() <= 1e-3
        np.testing.assert_allclose(b.params, a.params, rtol=1e-3, atol=1e-4)
    assert proc.notes == [] and proc.temporal._blend_fn.usable and proc._fit_c.usable
    assert proc.temporal.cuts_seen == eager.temporal.cuts_seen == 1
    assert torch.get_num_threads() == threads  # the small passes' one thread is given back


def test_the_shoulder_is_skipped_only_where_no_pixel_can_reach_the_knee():
    """The fused stage without its shoulder gives the same codes exactly when the gain is too small
    for any pixel to pass the knee; the processor skips it only then."""
    from hdrvideo.pipeline import colour_stage

    proc = FrameProcessor(None, "pq")
    c, cfg = proc.stage, proc.cfg
    frames = torch.from_numpy(np.random.default_rng(3).integers(200, 256, (1, 32, 48, 3), dtype=np.uint8))
    planar = frames.permute(0, 3, 1, 2)
    below = 0.999 * np.log(c.knee_nits / c.white_nits)  # white · e^g just under the knee
    gain = torch.full((1, 1, 32, 48), below)
    with_shoulder = colour_stage.fused_light(planar, gain, c, cfg, True, shoulder=True)
    without = colour_stage.fused_light(planar, gain, c, cfg, True, shoulder=False)
    assert torch.equal(with_shoulder[0], without[0]) and torch.equal(with_shoulder[1], without[1])
    # the CPU's quad loops, likewise (eagerly here: the same functions the compiler gets)
    from hdrvideo.pipeline import quads

    tables = colour_stage.tables_for(torch.device("cpu"))
    q, g = quads.planes(frames), quads.widen(gain[:, :, ::2, ::2].contiguous(), 48)
    on = quads.light(q, g, c, cfg, True, tables, shoulder=True)
    off = quads.light(q, g, c, cfg, True, tables, shoulder=False)
    assert all(torch.equal(a, b) for a, b in zip(on, off, strict=True))
    assert proc._shoulders(torch.full((2, 1, 4, 4), below)) == [False, False]
    above = torch.full((2, 1, 4, 4), below)
    above[1, 0, 2, 2] = 1.01 * np.log(c.knee_nits / c.white_nits)
    assert proc._shoulders(above) == [False, True]
    # and where the gain does pass the knee, the shoulder changes the picture
    gain = torch.full((1, 1, 32, 48), 2.0)
    assert not torch.equal(
        colour_stage.fused_light(planar, gain, c, cfg, False, shoulder=True)[0],
        colour_stage.fused_light(planar, gain, c, cfg, False, shoulder=False)[0],
    )


@needs_compiler
@pytest.mark.parametrize("small,full", [((270, 480), (1080, 1920)), ((270, 480), (720, 1280)), ((67, 121), (200, 362))])
def test_the_gain_carried_up_in_two_passes_is_bilinear_bit_for_bit(small, full):
    """quads.widen then quads.column_pass (as quads.light runs it: two compiled graphs) give
    F.interpolate's bilinear values, compiled, exactly, laid out by quad: 4× (1080p fast mode),
    2.67× (720p) and odd sizes."""
    from hdrvideo.pipeline import quads

    h, w = full
    gain = torch.from_numpy(np.random.default_rng(4).random((1, 1, *small), dtype=np.float32) * 3)
    widen = torch.compile(quads.widen, dynamic=False)

    def columns(rows):
        return torch.stack([torch.stack([quads.column_pass(rows, dr, dc, h) for dc in (0, 1)], 1) for dr in (0, 1)], 1)

    two_pass = torch.compile(columns, dynamic=False)(widen(gain, w))

    def one_pass(g):
        up = F.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)
        return up.view(1, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3).contiguous()

    reference = torch.compile(one_pass, dynamic=False)(gain)
    assert two_pass.shape == (1, 2, 2, h // 2, w // 2)
    assert torch.equal(two_pass, reference)
    eager = one_pass(gain)  # eager interpolation computes its source positions its own way
    torch.testing.assert_close(two_pass, eager, rtol=1e-4, atol=1e-5)


def test_quads_lay_out_and_interleave_frames_exactly():
    """quads.planes and quads.interleave are inverse layouts of the same pixels."""
    from hdrvideo.pipeline import quads

    frames = torch.from_numpy(np.random.default_rng(4).integers(0, 256, (2, 6, 10, 3), dtype=np.uint8))
    q = quads.planes(frames)
    assert q.shape == (2, 3, 2, 2, 3, 5)
    for i in range(3):
        back = quads.interleave([q[:, i, dr, dc] for dr, dc in quads.SUBPIXELS], torch.uint8)
        assert torch.equal(back, frames[..., i])


@needs_compiler
def test_warm_up_compiles_every_graph_a_stream_needs(tiny_model):
    """After warm_up, frames with and without highlights, and gains that pass the shoulder's knee
    or not, compile nothing new (a graph compiled mid-stream stalls it for seconds)."""
    from torch._dynamo.utils import counters

    proc = FrameProcessor(tiny_model, "pq", net_long_side=120, compile=True)
    proc.warm_up(96, 160)
    compiled = counters["aot_autograd"]["ok"]
    frames = np.zeros((3, 96, 160, 3), np.uint8)
    frames[1, 10:40, 20:60] = 255
    frames[2] = np.random.default_rng(5).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    for i in range(3):
        proc.process(frames[i : i + 1])
    with torch.no_grad():  # as process() runs it
        for shoulder in (True, False):  # a gain past the knee, and one below it
            proc._quads(torch.from_numpy(frames[1:2]), torch.full((1, 1, 72, 120), 2.0), False, shoulder)
    assert counters["aot_autograd"]["ok"] == compiled
    proc.process(np.zeros((1, 64, 96, 3), np.uint8))  # another size: the counter does see compiling
    assert counters["aot_autograd"]["ok"] > compiled


@needs_compiler
@pytest.mark.parametrize("with_model", [False, True])
def test_the_gpu_form_of_the_fused_stage_gives_the_eager_codes_on_a_cpu(tiny_model, monkeypatch, with_model):
    """The per-pixel fused stage with its powers computed (what a GPU runs, compiled by Triton
    there) compiled here by the C++ backend: the eager path's codes, within one code on ≤ 0.1%."""
    from hdrvideo.pipeline import colour_stage

    monkeypatch.setattr(colour_stage, "tables_for", lambda device: None)  # as on a GPU
    frames = _real_frames()
    model = tiny_model if with_model else None
    proc = FrameProcessor(model, "pq", net_long_side=240, compile=True)
    assert proc._tables is None and proc._quad_planes is None
    fused = proc.process(frames, keep_signal=True)
    assert proc.notes == [] and proc._fused_light.usable
    eager = FrameProcessor(model, "pq", net_long_side=240).process(frames, keep_signal=True)
    dy, duv = _compare(eager, fused)
    assert dy.max() <= 1 and duv.max() <= 1 and (dy > 0).mean() <= 1e-3 and (duv > 0).mean() <= 1e-3
    np.testing.assert_allclose(fused.max_cll, eager.max_cll, rtol=1e-3)
    assert float((fused.signal - eager.signal).abs().max()) < 2e-5  # measured 8e-6: float32 rounding


@pytest.mark.parametrize("full,small", [((96, 160), (24, 40)), ((96, 160), (36, 60)), ((90, 160), (45, 80))])
def test_the_network_input_is_the_area_mean_of_the_frame_where_nothing_nears_clipping(full, small):
    """colour_stage.network_input: sums of 8-bit codes where a whole number of pixels makes each
    sample, the area interpolation elsewhere; below the light threshold the area means (to float
    rounding), planar; with light in it, the same as the eager path's downscale_signal."""
    from hdrvideo.pipeline import colour_stage

    rng = np.random.default_rng(6)
    frames = torch.from_numpy(rng.integers(0, 210, (2, *full, 3), dtype=np.uint8))  # largest channel < 0.83
    got = colour_stage.network_input(frames, small)
    want = F.interpolate(frames.permute(0, 3, 1, 2).float() / 255.0, size=small, mode="area")
    assert got.shape == (2, 3, *small) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    frames = torch.from_numpy(rng.integers(0, 256, (2, *full, 3), dtype=np.uint8))
    eager = colour_stage.downscale_signal(frames.permute(0, 3, 1, 2).float() / 255.0, small)
    torch.testing.assert_close(colour_stage.network_input(frames, small), eager, rtol=0, atol=1e-6)


def test_the_network_input_keeps_thin_lights():
    """Fast mode: an LED strip 2 px thin (and a 3 px lamp) on a dark wall at 1080p stay light at
    480×270 (the network sees them as the SDR has them), while the wall and a grey card keep their
    area means."""
    from hdrvideo.pipeline import colour_stage

    f = torch.full((1, 1080, 1920, 3), 40, dtype=torch.uint8)
    f[:, 500:502, 200:1000] = torch.tensor([255, 60, 50], dtype=torch.uint8)  # a red strip, 2 px
    f[:, 800:803, 1500:1503] = 255  # a white lamp, 3 px
    f[:, 100:300, 1200:1600] = 128  # a grey card
    x = colour_stage.network_input(f, (270, 480))
    strip = x[0, :, 125, 60:240]  # rows 500–503 of the frame make sample row 125
    torch.testing.assert_close(strip, torch.tensor([1.0, 60 / 255, 50 / 255]).view(3, 1).expand_as(strip))
    assert float(x[0, :, 200, 375].min()) == 1.0  # the lamp's block
    area = F.interpolate(f.permute(0, 3, 1, 2).float() / 255, size=(270, 480), mode="area")
    torch.testing.assert_close(x[0, :, 30:70, 305:395], area[0, :, 30:70, 305:395])  # the card
    torch.testing.assert_close(x[0, :, 10:20, 10:40], area[0, :, 10:20, 10:40])  # the wall
    assert float(area[0, 0, 125, 100]) < 0.6  # (what the area mean alone made of the strip)
