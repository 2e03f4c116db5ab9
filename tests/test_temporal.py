"""Temporal stability on generated clips (noise, H.264 artefacts): flicker, cuts, fades, trails."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hdrvideo.model import load_model
from hdrvideo.pipeline.calibrate import highlight_weight
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.temporal import TemporalConfig, TemporalFilter, luma_histogram_distance
from hdrvideo.training.evaluate import flicker, render_luma
from tests.media import temporal_clip


@pytest.fixture(scope="module")
def model():
    return load_model(device="cpu")  # the shipped default weights


def run(model, frames, temporal: bool, lookahead: int = 0):
    hook = TemporalFilter(TemporalConfig(lookahead=lookahead)) if temporal else None
    return render_luma(FrameProcessor(model, "pq", temporal=hook), frames, batch=max(4, lookahead + 1))


@pytest.fixture(scope="module")
def clips():
    return {k: temporal_clip(k) for k in ("static", "moving", "fade", "cut", "away")}


@pytest.fixture(scope="module")
def authors_model():
    from tests.conftest import shared_path

    return load_model(shared_path("reference/expandnet/weights.pth"), device="cpu")


def _limit(kind: str) -> float:
    # against the BT.2408 mapping of the same clip: 1.3× for a still scene. A moving expanded
    # highlight has more contrast than the SDR one, so its motion alone raises the figure (a
    # constant, perfectly steady gain of 2.7× gives 1.5×; see the README); allow that floor.
    return 1.3 if kind == "static" else 1.55


def steady_expansion(model, frames) -> np.ndarray:
    """The clip expanded by one constant log gain wherever the light gate is open: the model's
    median gain there, over the whole clip. What a perfectly steady expansion of the same
    strength gives: the floor a moving highlight's flicker figure is measured against."""
    proc = FrameProcessor(model, "pq")
    signal = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    gain, _ = proc.log_gain(signal, proc.decode_sdr(signal))
    open_ = highlight_weight(signal, proc.cfg) > 0.5
    c = float(gain[open_].median())
    proc._filtered_gain = lambda net_in, lin_in: (  # noqa: E731 - the steady stand-in for the network
        torch.full_like(net_in[:, :1], c), net_in.new_tensor([0.0, 1.0]).expand(len(net_in), 2))
    return render_luma(proc, frames)


@pytest.mark.parametrize("kind", ["static", "moving"])
def test_flicker_targets_shipped_model(model, clips, kind):
    frames = clips[kind]
    base = flicker(run(None, frames, False))
    off = flicker(run(model, frames, False))
    on = flicker(run(model, frames, True))
    # our model was trained with a temporal term and barely flickers per frame; the filter must
    # keep it there and never add any
    assert on[0] <= 1.05 * off[0] and on[1] <= 1.15 * off[1], (on, off)
    if kind == "static":
        assert on[0] <= _limit(kind) * base[0] and on[1] <= _limit(kind) * base[1], (on, base)
    else:  # the bolder the expansion, the higher a moving highlight's figure: measure against a steady one
        floor = flicker(steady_expansion(model, frames))
        assert floor[0] > base[0]  # the test means something: the steady expansion has the added contrast
        assert on[0] <= 1.1 * floor[0] and on[1] <= 1.1 * max(floor[1], base[1]), (on, floor, base)


@pytest.mark.parametrize("kind", ["static", "moving"])
def test_flicker_targets_flickering_model(authors_model, clips, kind):
    """The authors' weights flicker per frame (up to 2.9× the BT.2408 mapping): the filter must cut it."""
    frames = clips[kind]
    base = flicker(run(None, frames, False))
    off = flicker(run(authors_model, frames, False))
    on = flicker(run(authors_model, frames, True))
    assert on[0] <= 0.75 * off[0], (on, off)  # block flicker
    assert on[1] <= 0.75 * off[1] or on[1] <= 1.1 * base[1], (on, off, base)  # pumping
    assert on[0] <= _limit(kind) * base[0] and on[1] <= _limit(kind) * base[1], (on, base)


def test_hard_cut_takes_the_new_level_at_once(model, clips):
    frames = clips["cut"]
    d = luma_histogram_distance(torch.from_numpy(frames[11:13]).permute(0, 3, 1, 2) / 255.0,
                                torch.from_numpy(frames[10:12]).permute(0, 3, 1, 2) / 255.0)  # fmt: skip
    assert d[1] > TemporalConfig().cut_threshold > d[0]  # 11→12 is the cut, 10→11 is not
    y = run(model, frames, True, lookahead=4)
    means = y.mean(axis=(1, 2))
    settled = means[-4:].mean()
    assert abs(means[12] - settled) <= 3, means[10:]


def test_no_false_cuts_on_motion_and_fades(model, clips):
    for kind in ("moving", "fade", "static"):
        hook = TemporalFilter()
        render_luma(FrameProcessor(model, "pq", temporal=hook), clips[kind])
        assert hook.cuts_seen == 0, kind
    hook = TemporalFilter()
    render_luma(FrameProcessor(model, "pq", temporal=hook), clips["cut"])
    assert hook.cuts_seen == 1


def test_fade_is_monotonic(model, clips):
    means = run(model, clips["fade"], True).mean(axis=(1, 2))
    assert np.all(np.diff(means) <= 0.5), np.round(means, 1)


def test_bright_object_that_moves_away_leaves_no_trail(model, clips):
    frames = clips["away"]
    on, off = run(model, frames, True), run(model, frames, False)
    h, w = frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w]
    old = (xx - 0.6 * w) ** 2 + (yy - 0.7 * h) ** 2 < (0.08 * h) ** 2
    assert on[6][old].mean() > off[6][old].mean() - 30  # it was expanded while there
    for t in (9, 10, 11):  # from the second frame after the jump: background level, as per-frame
        assert abs(on[t][old].mean() - off[t][old].mean()) <= 2, t


def test_state_resets_between_clips(model, clips):
    proc = FrameProcessor(model, "pq", temporal=TemporalFilter())
    a = render_luma(proc, clips["static"])
    b = render_luma(proc, clips["static"])
    np.testing.assert_array_equal(a, b)


class _HostReads(TorchDispatchMode):
    """Records every read of a tensor's value on the host (``item``, ``bool``, ``if t > 0`` …):
    on a GPU each is a synchronisation that stalls the queue."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default):
            self.reads.append(str(func))
        return func(*args, **(kwargs or {}))


def test_the_filter_never_reads_a_value_back_to_the_host(model, clips, monkeypatch):
    """Issue 28 #3: scene cuts, the highlight level and the look-ahead stay tensors, so that on a
    GPU the filter queues its work without waiting for the network (one batch in flight), and
    ``cuts_seen`` syncs only where it is read. Two batches across a cut, then unlit (black) frames,
    with the look-ahead. The cut counts once: each frame of the first batch is compared with the
    one before it (it was compared with the batch's first frame, so the frame after a cut in the
    first batch counted as a second cut)."""
    frames = np.concatenate([clips["cut"][8:16], np.zeros_like(clips["cut"][:4])])  # the cut at 4, dark from 8
    signal = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    proc = FrameProcessor(model, "pq")
    gain, params = proc.log_gain(signal, proc.decode_sdr(signal))
    hook = TemporalFilter(TemporalConfig(lookahead=4))
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: pytest.fail("tolist: a host read"))
    monkeypatch.setattr(torch.Tensor, "numpy", lambda self, **k: pytest.fail("numpy: a host read"))
    with _HostReads() as spy:
        for part in (slice(0, 6), slice(6, 12)):
            hook.smooth_params(signal[part], params[part], torch.ones(6))
            hook.filter_gain(signal[part], gain[part])
    assert spy.reads == []
    monkeypatch.undo()
    assert hook.cuts_seen == 1


def test_the_look_ahead_averages_the_fits_of_the_same_scene():
    """Each frame's fit is the mean of its own and the next ``lookahead`` fits up to (not across)
    the next cut: the 0/1-weighted form against the loop it replaces."""
    rng = np.random.default_rng(3)
    params = torch.from_numpy(rng.normal(size=(9, 2))).float()
    cuts = torch.tensor([True, False, False, True, False, True, True, False, False])
    for lookahead in (1, 2, 4, 8):
        hook = TemporalFilter(TemporalConfig(lookahead=lookahead))
        got = hook._look_ahead(params, cuts)
        for i in range(9):
            j = i + 1
            while j < 9 and j <= i + lookahead and not cuts[j]:
                j += 1
            torch.testing.assert_close(got[i], params[i:j].mean(0), rtol=0, atol=1e-6)
