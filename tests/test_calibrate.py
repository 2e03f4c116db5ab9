"""Calibration: the fit recovers known mappings, mid-tones keep the SDR grade, highlights rise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdrvideo import colour as C
from hdrvideo.pipeline.calibrate import CalibrationConfig, expansion_log_gain, fit_params, soft_shoulder

CFG = CalibrationConfig()


def _scene(seed: int = 0, h: int = 64, w: int = 96) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8, w // 8, generator=g) * 0.8 + 0.08
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("a,b", [(0.0, 1.0), (1.2, 1.5), (-0.5, 0.7)])
def test_fit_recovers_a_known_power_law(a, b):
    sig = _scene()
    lin = C.bt1886_eotf(sig)
    # the network's output whose luminance maps to SDR luminance through exp(a)·y^b
    y_sdr = C.luminance(lin, C.LUMA_BT709)
    y_net = (y_sdr / math.exp(a)) ** (1 / b)
    net = lin * (y_net / y_sdr)
    params, conf = fit_params(sig, lin, net, CFG)
    assert params[0, 0].item() == pytest.approx(a, abs=1e-3)
    assert params[0, 1].item() == pytest.approx(b, abs=1e-3)
    assert conf.item() > 0.5


def test_fit_falls_back_without_well_exposed_pixels():
    sig = torch.ones(2, 3, 16, 16)  # all clipped
    lin = C.bt1886_eotf(sig)
    params, conf = fit_params(sig, lin, torch.rand(2, 3, 16, 16), CFG, fallback=torch.tensor([0.3, 1.1]))
    assert params.flatten().tolist() == pytest.approx([0.3, 1.1, 0.3, 1.1])
    assert conf.tolist() == [0.0, 0.0]


def test_gain_is_one_on_well_exposed_pixels_and_raises_clipped_ones():
    sig = _scene(1)
    sig[..., 20:30, 40:60] = 1.0  # a clipped highlight
    lin = C.bt1886_eotf(sig)
    net = lin.clone()
    net[..., 20:30, 40:60] = 4.0  # the network says the highlight was 4× brighter
    params = torch.tensor([[0.0, 1.0]])
    g = expansion_log_gain(sig, lin, net, params, CFG)
    well = sig.amax(1, keepdim=True) < CFG.blend_lo
    assert g[well].abs().max().item() == 0.0
    assert g[..., 20:30, 40:60].min().item() == pytest.approx(math.log(4.0), abs=1e-5)
    assert g.min().item() >= 0.0


def test_soft_shoulder():
    y = torch.linspace(0, 5000, 5001, dtype=torch.float64)
    rgb = y.view(1, 1, 1, -1).expand(1, 3, 1, -1)
    out = soft_shoulder(rgb, 203.0, 1000.0)[0, 1, 0]
    torch.testing.assert_close(out[:204], y[:204], atol=1e-9, rtol=0)  # identity up to the knee
    assert torch.all(out[1:] - out[:-1] >= 0)  # monotonic
    assert out.max().item() < 1000.0  # approaches, never reaches, the peak
    assert out[2000].item() > 900.0
    slope = (out[205] - out[204]).item()
    assert slope == pytest.approx(1.0, abs=2e-3)  # smooth at the knee, no kink


def test_real_frame_keeps_mid_tones_and_lifts_clipped_highlights():
    """The authors' weights on a real photo with clipped highlights (BT.2408 within 3 codes)."""
    import cv2

    from hdrvideo.model import load_model
    from hdrvideo.pipeline.processor import FrameProcessor
    from tests.conftest import shared_path

    weights = shared_path("reference/expandnet/weights.pth")
    img = cv2.imread(str(shared_path("data/fixtures/ldr_clipped_img004_512x384.png")))[:, :, ::-1].copy()
    model = load_model(weights, device="cpu")
    for transfer, white_code in (("pq", 573), ("hlg", 721)):
        out = FrameProcessor(model, transfer).process(img[None])
        base = FrameProcessor(None, transfer).process(img[None])
        sig = img.astype(np.float32) / 255
        well = (sig.min(-1) >= CFG.fit_lo) & (sig.max(-1) <= CFG.fit_hi)
        diff = np.abs(out.y[0].astype(int) - base.y[0].astype(int))
        assert np.median(diff[well]) <= 3
        clipped = sig.min(-1) >= 254 / 255
        assert clipped.mean() > 0.01
        assert np.mean(out.y[0][clipped]) > white_code  # above SDR white (203 cd/m²)
        assert np.mean(base.y[0][clipped]) <= white_code + 1
