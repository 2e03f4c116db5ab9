"""ITU-R BT.2446-1 Methods A and C against the Report's formulas, written here again in float64
numpy from the Report's text (independently of hdrvideo.colour.bt2446), and the built-in
``--method`` formulas through the processor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdrvideo import colour as C
from hdrvideo.colour import bt2446 as B
from hdrvideo.pipeline.processor import FrameProcessor

# Report BT.2446-1 §5.2 (Method C), its published constants
K1, K2, K3, K4, IP_SDR = 0.83802, 15.09968, 0.74204, 78.99439, 58.5
IP_HDR = IP_SDR / K1


def c_forward(y: np.ndarray) -> np.ndarray:
    return np.where(y < IP_HDR, K1 * y, K2 * np.log(np.maximum(y / IP_HDR - K3, 1e-12)) + K4)


def test_method_c_constants_and_curve():
    assert (B.C_K1, B.C_K2, B.C_K3, B.C_K4, B.C_IP_NITS) == (K1, K2, K3, K4, IP_HDR)
    # k2, k4 are continuity's at the unrounded inflection point 100·0.8^2.4 (the Report's derivation)
    ip = 100 * 0.8**2.4 / K1
    assert K1 * (1 - K3) * ip == pytest.approx(K2, abs=1e-4)
    assert K1 * ip - K2 * math.log(1 - K3) == pytest.approx(K4, abs=1e-3)
    y = np.concatenate([np.linspace(0, 1000, 4001), [IP_HDR - 1e-9, IP_HDR + 1e-9]])
    ours = B.method_c_forward_luminance(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(ours, c_forward(y), rtol=1e-12, atol=1e-9)
    # the inverse undoes the forward over the whole SDR range (0 … 118 cd/m² for 1,000 cd/m² in)
    back = B.method_c_inverse_luminance(torch.from_numpy(c_forward(y))).numpy()
    np.testing.assert_allclose(back, y, rtol=1e-9, atol=1e-7)
    # continuous in value and slope at the inflection point; SDR white (100) → 333.5 cd/m²
    inv = lambda v: float(B.method_c_inverse_luminance(torch.tensor(v, dtype=torch.float64)))  # noqa: E731
    assert inv(IP_SDR - 1e-7) == pytest.approx(inv(IP_SDR + 1e-7), rel=1e-3)
    assert (inv(IP_SDR + 1e-3) - inv(IP_SDR)) / 1e-3 == pytest.approx(1 / K1, rel=5e-3)
    assert inv(100.0) == pytest.approx(332.4, abs=0.1)


def test_relative_curve_is_method_c_up_to_one_factor():
    y = torch.linspace(0.0, 1.0, 1001, dtype=torch.float64)
    ours = B.inverse_curve(y, *B.C_CURVE)
    report = B.method_c_inverse_luminance(100 * y) * K1 / 100  # the Report's curve, its linear part at 1
    torch.testing.assert_close(ours, report, rtol=4e-3, atol=1e-12)  # (its constants rounded: 0.34 % at white)
    gain = B.inverse_curve_log_gain(y, *B.C_CURVE)
    torch.testing.assert_close(torch.exp(gain[1:]), (ours / y)[1:], rtol=1e-9, atol=0)
    assert float(gain[y < 0.585].abs().max()) < 1e-12 and float(gain.min()) >= 0


def test_method_c_inverse_keeps_chromaticity_and_undoes_the_forward():
    sig = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    hdr = B.method_c_inverse(sig)
    sdr = C.rgb_to_rgb(C.bt1886_eotf(sig) * 100, C.BT709_TO_BT2020)
    # chromaticity kept (α = 0): HDR = SDR × one factor per pixel
    ratio = hdr / sdr
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-9, atol=0)
    # forward(luminance of HDR) = luminance of SDR
    y_back = c_forward(C.luminance(hdr, C.LUMA_BT2020).numpy())
    np.testing.assert_allclose(y_back, C.luminance(sdr, C.LUMA_BT2020).numpy(), rtol=1e-9, atol=1e-9)
    # with crosstalk the grey axis is untouched
    grey = torch.full((1, 3, 1, 1), 0.7, dtype=torch.float64)
    torch.testing.assert_close(B.method_c_inverse(grey, 0.05), B.method_c_inverse(grey, 0.0))


def a_inverse_report(rgb_sdr_2020_signal: np.ndarray) -> np.ndarray:
    """Report BT.2446-1 Table 4, SDR → HDR, on (..., 3) BT.2020 R'G'B' in [0, 1] → cd/m²."""
    e = rgb_sdr_2020_signal * 255.0
    y = e @ np.array([0.2627, 0.6780, 0.0593])
    cb = (e[..., 2] - y) / 1.8814
    cr = (e[..., 0] - y) / 1.4746
    ex = np.where(y <= 70, 1.8712e-5 * y**2 - 2.7334e-3 * y + 1.3141, 2.8305e-6 * y**2 - 7.4622e-4 * y + 1.2528)
    yh = np.maximum(y, 1e-6) ** ex
    sc = np.where(y > 0, 1.075 * yh / np.maximum(y, 1e-6), 1.0)
    r = yh + 1.4746 * cr * sc
    b = yh + 1.8814 * cb * sc
    g = (yh - 0.2627 * r - 0.0593 * b) / 0.6780
    return 1000 * (np.clip(np.stack((r, g, b), -1), 0, 1000) / 1000) ** 2.4


def test_method_a_inverse_matches_the_report():
    sig = torch.rand(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    lin2020 = C.rgb_to_rgb(C.bt1886_eotf(sig), C.BT709_TO_BT2020).clamp(0, 1)
    report = a_inverse_report((lin2020 ** (1 / 2.4)).permute(0, 2, 3, 1).numpy())
    ours = B.method_a_inverse(sig).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, report, rtol=1e-9, atol=1e-9)
    white = B.method_a_inverse(torch.ones(1, 3, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(white, torch.full_like(white, 999.52), atol=0.01, rtol=0)  # 255^E(255)
    grey = B.method_a_inverse(torch.full((1, 3, 1, 1), 0.5, dtype=torch.float64)).flatten()
    assert float(grey.max() - grey.min()) < 1e-9 and 70 < float(grey[0]) < 80  # 76.3 cd/m²


@pytest.mark.parametrize("method,function", [("bt2446c", B.method_c_inverse), ("bt2446a", B.method_a_inverse)])
def test_processor_method_gives_the_formulas_light(method, function):
    frames = (torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    signal = frames.permute(0, 3, 1, 2).float() / 255
    proc = FrameProcessor(None, "pq", 10000.0, method=method)  # peak 10,000: the shoulder starts at 5,000
    nits, _ = proc.display_light(signal)
    torch.testing.assert_close(nits, function(signal).clamp(min=0), rtol=2e-5, atol=2e-4)
    batch = proc.process(frames.numpy())  # the whole path: codes of that light
    assert batch.y.shape == (1, 16, 16) and batch.max_cll[0] > 0
    with pytest.raises(ValueError, match="method"):
        FrameProcessor(None, method="bt2446x")
