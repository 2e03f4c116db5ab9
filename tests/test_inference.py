"""The network's inference form (hdrvideo/pipeline/inference.py): the same function as the model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from hdrvideo.model import ExpandNet, ExpandNetConfig, load_model
from hdrvideo.pipeline import inference
from hdrvideo.pipeline.processor import FrameProcessor


def test_the_selu_table_is_selu_for_every_bf16_value():
    table = inference.selu_table()
    every = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    expected = F.selu(every)  # PyTorch's own bf16 SELU (float32 inside, rounded)
    finite = torch.isfinite(every)
    assert table.dtype == torch.bfloat16 and table.shape == (1 << 16,)
    assert torch.equal(table[finite].view(torch.int16), expected[finite].view(torch.int16))
    assert torch.isnan(table[torch.isnan(every)]).all()
    # and the module indexes it by the bits of any bf16 tensor, in any layout
    x = (torch.randn(2, 5, 7, 3) * 4).to(torch.bfloat16).permute(0, 3, 1, 2)
    assert torch.equal(inference._TableSELU()(x), F.selu(x))


@pytest.fixture(scope="module")
def shipped():
    return load_model(device="cpu")


def _frames(b=2, h=72, w=128):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(b, 3, h, w, generator=g) ** 2
    x[1, :, 20:40, 30:70] = 1.0  # a clipped patch: the second frame's global vector differs
    return x


def test_the_inference_form_computes_the_model_in_float32(shipped):
    x = _frames()
    with torch.no_grad():
        want = shipped(x)
        got = inference.InferenceNet(shipped).eval()(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-6)
    # frame by frame: each frame its own global term
    with torch.no_grad():
        one = inference.InferenceNet(shipped).eval()(x[1:])
    torch.testing.assert_close(one, got[1:], rtol=1e-5, atol=2e-6)


def test_the_inference_form_in_bf16_stays_within_bf16_rounding(shipped):
    """bf16, as a CPU with native bf16 runs it: the sums run in another order, so outputs may move
    by a unit in the last place of bf16 (2⁻⁸ relative), nothing more."""
    m = copy.deepcopy(shipped).to(torch.bfloat16).to(memory_format=torch.channels_last)
    x = _frames().to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = m(x).float()
        form = inference.InferenceNet(m).eval()
        assert form.table_selu
        got = form(x).float()
    diff = (got - want).abs()
    assert diff.max() <= 4e-3 and diff.mean() <= 1e-4


def test_the_processor_runs_the_inference_form_on_a_cpu_only_for_per_frame_networks(tiny_model):
    proc = FrameProcessor(tiny_model, "pq", device="cpu", compile=True)
    assert isinstance(proc._net.fn, inference.InferenceNet)
    recurrent = ExpandNet(ExpandNetConfig(local_width=8, local_out=8, mid_width=8, glob_width=8, fuse_width=8,
                                          temporal_width=4)).eval()  # fmt: skip
    assert not inference.supports(recurrent)
    with pytest.raises(ValueError, match="recurrent"):
        inference.InferenceNet(recurrent)
    assert FrameProcessor(recurrent, "pq", device="cpu", compile=True)._net.fn is recurrent
