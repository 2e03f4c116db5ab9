"""Y'CbCr planes in (issue 28): 8-bit 4:2:0 frames go to the processor as the decoder holds them
(half the bytes of RGB) and become R'G'B' on the device. On a CPU the path is tested by asking
for it (``processor.host.takes_planes``); on a GPU it is the default."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from hdrvideo.media.decode import frame_to_input, frame_to_rgb, open_input, probe
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.ycbcr_input import YCbCrFrames, planes_to_rgb, stack_frames
from tests.media import make_clip, sdr_frame


def _clip(path, pix_fmt: str, colorspace: int, full: bool, w: int = 192, h: int = 108, frames: int = 4):
    """An H.264 clip of textured frames in ``pix_fmt``, tagged with the matrix ``colorspace``
    (H.273: 1 BT.709, 6 BT.601, 9 BT.2020) and range."""
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=24)
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    vs.codec_context.colorspace = colorspace
    vs.codec_context.color_range = 2 if full else 1
    vs.options = {"preset": "ultrafast", "crf": "16"}
    sws = {1: "itu709", 6: "itu601", 9: "bt2020"}[colorspace]
    for i in range(frames):
        f = av.VideoFrame.from_ndarray(sdr_frame(i, w, h), format="rgb24")
        f = f.reformat(format=pix_fmt, dst_colorspace=sws, dst_color_range=2 if full else 1)
        f.pts, f.time_base = i, Fraction(1, 24)
        for p in vs.encode(f):
            out.mux(p)
    for p in vs.encode():
        out.mux(p)
    out.close()
    return path


def _decoded(path):
    c = open_input(path)
    info = probe(c, path)
    frames = list(c.decode(c.streams.video[0]))
    return info, frames, c


@pytest.mark.parametrize("colorspace,full", [(1, False), (6, False), (9, False), (1, True)])
def test_planes_become_the_rgb_swscale_makes(tmp_path, colorspace, full):
    """planes_to_rgb against swscale's rgb24 of the same frames: within 3 codes, under 1.5 on
    average (swscale's fixed-point tables put each chroma term on whole luma codes: 1.1 on these
    clips, 0.9 on the shared 1080×720 H.264 fixture); on grey (Cb = Cr = 128) exactly equal."""
    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", colorspace, full))
    assert info.full_range == full and info.matrix == {1: "bt709", 6: "bt601", 9: "bt2020"}[colorspace]
    items = [frame_to_input(f, info, planes=True) for f in frames]
    assert all(isinstance(it, tuple) and it[0].dtype == np.uint8 for it in items)
    batch = stack_frames(items, info.matrix, info.full_range)
    assert isinstance(batch, YCbCrFrames) and batch.shape == (len(frames), 108, 192, 3)
    ours = planes_to_rgb(torch.as_tensor(batch.y), torch.as_tensor(batch.cbcr), batch.matrix, batch.full_range).numpy()
    theirs = np.stack([frame_to_rgb(f, info) for f in frames])
    c.close()
    d = np.abs(ours.astype(int) - theirs.astype(int))
    assert d.max() <= 3 and d.mean() <= 1.5, (d.max(), d.mean())
    grey = (torch.arange(256, dtype=torch.uint8).view(1, 16, 16), torch.full((1, 2, 8, 8), 128, dtype=torch.uint8))
    ramp = planes_to_rgb(*grey, batch.matrix, full)[0, :, :, 0].flatten().numpy().astype(int)
    want = np.arange(256) if full else np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255)
    np.testing.assert_array_equal(ramp, want)
    # a wrong matrix or range is far off (the test can tell)
    other = planes_to_rgb(torch.as_tensor(batch.y), torch.as_tensor(batch.cbcr), "bt601" if colorspace != 6 else "bt709",
                          not full).numpy()  # fmt: skip
    assert np.abs(other.astype(int) - theirs.astype(int)).mean() > 2


def test_frames_that_are_not_8_bit_planar_420_come_as_rgb(tmp_path):
    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv444p", 1, False, frames=2))
    assert all(isinstance(frame_to_input(f, info, planes=True), np.ndarray) for f in frames)
    info2, frames2, c2 = _decoded(_clip(tmp_path / "d.mp4", "yuv420p", 1, False, frames=2))
    assert isinstance(frame_to_input(frames2[0], info2, planes=False), np.ndarray)  # not asked for
    # a batch that mixes both (a stream whose format changed) is all R'G'B'
    mixed = stack_frames([frame_to_input(frames2[0], info2, True), frame_to_rgb(frames2[1], info2)], "bt709", False)
    assert isinstance(mixed, np.ndarray) and mixed.shape == (2, 108, 192, 3)
    np.testing.assert_allclose(mixed[0], frame_to_rgb(frames2[0], info2), atol=3)
    c.close()
    c2.close()
    with pytest.raises(ValueError, match="even sizes"):
        YCbCrFrames(np.zeros((1, 4, 6), np.uint8), np.zeros((1, 2, 3, 3), np.uint8), "bt709", False)
    with pytest.raises(ValueError, match="unknown Y'CbCr matrix"):
        YCbCrFrames(np.zeros((1, 4, 6), np.uint8), np.zeros((1, 2, 2, 3), np.uint8), "xyz", False)


def test_the_processor_takes_planes_as_it_takes_their_rgb(tmp_path, tiny_model):
    """process(planes) is process(planes_to_rgb(planes)) exactly, in batches and slices (the
    processor splits batches), and within a code or two of the swscale RGB path's output."""
    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", 1, False, frames=5))
    planes = stack_frames([frame_to_input(f, info, True) for f in frames], info.matrix, info.full_range)
    rgb = planes_to_rgb(torch.as_tensor(planes.y), torch.as_tensor(planes.cbcr), "bt709", False).numpy()
    swscale = np.stack([frame_to_rgb(f, info) for f in frames])
    c.close()
    for model in (None, tiny_model):
        proc = lambda m=model: FrameProcessor(m, "pq", net_long_side=96)  # noqa: E731
        a, b, s = proc().process(planes), proc().process(rgb), proc().process(swscale)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.uv, b.uv)
        assert np.abs(a.y.astype(int) - s.y.astype(int)).mean() < 3.0  # 10-bit PQ codes: about one 8-bit code
        split = proc()
        split.max_batch = 2  # (as after an out-of-memory step: slices of the planes)
        np.testing.assert_array_equal(split.process(planes).y, a.y)


def test_convert_with_planes_writes_the_same_video(tmp_path):
    """convert_video with the processor taking planes (as on a GPU) against the RGB path: same
    frame count and timestamps, pictures within the codec's noise."""
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings

    clip = make_clip(tmp_path / "in.mp4", w=160, h=90, frames=8)
    outs = {}
    for planes in (False, True):
        proc = FrameProcessor(None, "pq")
        proc.host.takes_planes = planes
        seen = []
        real = proc.submit
        proc.submit = lambda frames, keep_signal=False, _r=real, _s=seen: (_s.append(type(frames).__name__), _r(frames, keep_signal))[1]
        r = convert_video(clip, tmp_path / f"o{planes}.mkv", proc, EncoderSettings(preset="ultrafast"))
        assert r.frames == 8 and set(seen) == {"YCbCrFrames" if planes else "ndarray"}
        with av.open(str(tmp_path / f"o{planes}.mkv")) as c:
            outs[planes] = [(f.pts, f.to_ndarray()) for f in c.decode(video=0)]
    assert [p for p, _ in outs[True]] == [p for p, _ in outs[False]]
    for (_, a), (_, b) in zip(outs[True], outs[False], strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 4  # 10-bit codes: under 1 code of 8-bit input


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: the pinned upload of planes runs on a GPU only")
def test_planes_go_up_through_pinned_buffers_on_a_gpu(tmp_path):
    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", 1, False, frames=3))
    planes = stack_frames([frame_to_input(f, info, True) for f in frames], info.matrix, info.full_range)
    c.close()
    gpu, cpu = FrameProcessor(None, "pq", device="cuda"), FrameProcessor(None, "pq", device="cpu")
    assert gpu.host.takes_planes and not cpu.host.takes_planes
    up = gpu.host.upload(planes)
    assert up.is_cuda and set(gpu.host._pinned) == {"y", "cbcr"} and gpu.host._pinned["y"].is_pinned()
    np.testing.assert_array_equal(up.cpu().numpy(), cpu.host.upload(planes).numpy())
    staged = gpu.host.stack([(planes.y[i], planes.cbcr[i]) for i in range(3)], info.matrix, info.full_range)
    ptr = gpu.host._pinned["y1"].data_ptr()
    assert gpu.host.stages and np.shares_memory(staged.y, gpu.host._pinned["y1"].numpy())
    assert gpu.host._pinned["y1"].is_pinned()
    np.testing.assert_array_equal(gpu.host.upload(staged).cpu().numpy(), up.cpu().numpy())
    assert gpu.host._pinned["y1"].data_ptr() == ptr and "y0" not in gpu.host._pinned  # sent as it was: no second copy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: the copy streams run on a GPU only")
def test_copies_run_on_streams_of_their_own_on_a_gpu(tmp_path):
    """Issue 28 #3 on a GPU: batches submitted one ahead (uploads on the upload stream, downloads
    on the download stream, staging slots alternating) give the codes processing them one by one
    gives, and on a CPU."""
    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", 1, False, frames=8))
    items = [frame_to_input(f, info, True) for f in frames]
    c.close()
    gpu, cpu = FrameProcessor(None, "pq", device="cuda"), FrameProcessor(None, "pq", device="cpu")
    assert gpu.host.in_flight == 1 and cpu.host.in_flight == 0
    one_by_one = [gpu.process(stack_frames(items[i : i + 2], info.matrix, info.full_range)) for i in range(0, 8, 2)]
    submitted = [gpu.submit(gpu.host.stack(items[i : i + 2], info.matrix, info.full_range)) for i in range(0, 8, 2)]
    assert {"up", "down"} <= set(gpu.host._streams) and {"y0", "y1"} <= set(gpu.host._pinned)
    for p, a in zip(submitted, one_by_one, strict=True):
        b = p.result()
        np.testing.assert_array_equal(b.y, a.y)
        np.testing.assert_array_equal(b.uv, a.uv)
    on_cpu = cpu.process(stack_frames(items[:2], info.matrix, info.full_range))
    assert np.abs(on_cpu.y.astype(int) - one_by_one[0].y.astype(int)).max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: host synchronisations exist on a GPU only")
def test_a_submitted_batch_waits_for_nothing_on_a_gpu(tmp_path):
    """Issue 28 #3 on a GPU: submitting a batch (full quality, shipped model, temporal filter with
    its look-ahead, as ``convert`` runs it) queues its work without one host synchronisation
    (``torch.cuda.set_sync_debug_mode``), so the host can stack the next batch while it runs;
    warm-up batches first (allocations, the first frame's state)."""
    import warnings

    from hdrvideo.model import load_model
    from hdrvideo.pipeline.temporal import TemporalConfig, TemporalFilter

    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", 1, False, frames=12))
    items = [frame_to_input(f, info, True) for f in frames]
    c.close()
    proc = FrameProcessor(load_model(device="cuda"), "pq", device="cuda",
                          temporal=TemporalFilter(TemporalConfig(lookahead=2)))  # fmt: skip
    for i in (0, 4):
        proc.process(proc.host.stack(items[i : i + 4], info.matrix, info.full_range))
    batch = proc.host.stack(items[8:12], info.matrix, info.full_range)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            pending = proc.submit(batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert [str(w.message) for w in seen if "synchroniz" in str(w.message).lower()] == []
    assert pending.result().y.shape == (4, 108, 192)


def test_frames_stack_straight_into_the_staging_buffers(tmp_path):
    """HostTransfer.stack (issue 28 #3): the one host copy that stacks a batch puts it into the
    staging buffers the upload sends (pinned on a GPU; plain CPU tensors here), reused while the
    shape holds; what cannot be staged (float frames, a batch mixing planes and RGB) is stacked
    as stack_frames does."""
    from hdrvideo.pipeline.frames import HostTransfer

    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", 1, False, frames=4))
    items = [frame_to_input(f, info, True) for f in frames]
    rgb_items = [frame_to_rgb(f, info) for f in frames]
    c.close()
    host = HostTransfer(torch.device("cpu"))
    assert not host.stages  # a CPU's default: nothing to gain from staging
    host.stages = True
    first = host.stack(items[:2], "bt709", False)
    expected = stack_frames(items[:2], "bt709", False)
    assert isinstance(first, YCbCrFrames) and np.shares_memory(first.y, host._pinned["y1"].numpy())
    np.testing.assert_array_equal(first.y, expected.y)
    np.testing.assert_array_equal(first.cbcr, expected.cbcr)
    ptr = host._pinned["y1"].data_ptr()
    # the next batch goes into the other slot: the first may still be on its way up (one in flight)
    second = host.stack(items[2:], "bt709", False)
    assert np.shares_memory(second.y, host._pinned["y0"].numpy())
    np.testing.assert_array_equal(first.y, expected.y)
    np.testing.assert_array_equal(second.y, stack_frames(items[2:], "bt709", False).y)
    host.stack(items[2:], "bt709", False)  # the slot after: the first batch's buffer, reused
    assert host._pinned["y1"].data_ptr() == ptr
    host.stack(items[:1], "bt709", False)
    assert host._pinned["y0"].shape[0] == 1  # another batch size: a new buffer
    rgb = host.stack(rgb_items, "bt709", False)
    assert np.shares_memory(rgb, host._pinned["rgb1"].numpy()) and np.array_equal(rgb, np.stack(rgb_items))
    floats = [f.astype(np.float32) / 255 for f in rgb_items]
    assert not any(np.shares_memory(host.stack(floats, "bt709", False), b.numpy()) for b in host._pinned.values())
    mixed = host.stack([items[0], rgb_items[1]], "bt709", False)
    np.testing.assert_array_equal(mixed, stack_frames([items[0], rgb_items[1]], "bt709", False))


def test_a_batch_submitted_ahead_keeps_its_frames(tmp_path, tiny_model):
    """One batch in flight (issue 28 #3): the next batch is stacked, and submitted, before the
    first one's result is taken; each comes back as it would alone, in order (a single staging
    buffer would have had the second batch overwrite the first)."""
    info, frames, c = _decoded(_clip(tmp_path / "c.mp4", "yuv420p", 1, False, frames=6))
    items = [frame_to_input(f, info, True) for f in frames]
    c.close()
    ref = FrameProcessor(tiny_model, "pq")
    alone = [ref.process(stack_frames(items[i : i + 3], info.matrix, info.full_range)) for i in (0, 3)]
    proc = FrameProcessor(tiny_model, "pq")
    proc.host.stages, proc.host.in_flight = True, 1
    first = proc.host.stack(items[:3], info.matrix, info.full_range)
    second = proc.host.stack(items[3:], info.matrix, info.full_range)
    pending = [proc.submit(first), proc.submit(second)]
    got = [p.result() for p in pending]
    for a, b in zip(got, alone, strict=True):
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.uv, b.uv)
    assert pending[0].result() is got[0]  # taken once


def test_convert_through_the_staging_buffers_writes_the_same_file(tmp_path):
    """convert with staged planes (as on a GPU) and without: the same codes, losslessly written."""
    from hdrvideo.commands.convert import convert_video
    from hdrvideo.media.encode import EncoderSettings

    clip = make_clip(tmp_path / "in.mp4", w=160, h=90, frames=9, audio=False)
    outs = []
    for stages in (False, True):
        proc = FrameProcessor(None, "pq")
        # staged as on a GPU, with one batch in flight (collected after the next is submitted)
        proc.host.takes_planes, proc.host.stages, proc.host.in_flight = True, stages, int(stages)
        convert_video(clip, tmp_path / f"o{stages}.mkv", proc, EncoderSettings(codec="ffv1"), batch_size=4)
        with av.open(str(tmp_path / f"o{stages}.mkv")) as c:
            outs.append(np.stack([f.to_ndarray() for f in c.decode(video=0)]))
    assert set(proc.host._pinned) == {"y0", "y1", "cbcr0", "cbcr1"} and len(outs[1]) == 9
    np.testing.assert_array_equal(outs[1], outs[0])
