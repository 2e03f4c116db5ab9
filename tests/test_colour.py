"""Colour science against colour-science (the oracle), in float64 to 1e-6, plus round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from hdrvideo import colour as C

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour as cs
    from colour.models.rgb.transfer_functions.itur_bt_2100 import gamma_function_BT2100_HLG

TOL = 1e-6


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def close(ours: torch.Tensor, ref, tol: float = TOL) -> None:
    np.testing.assert_allclose(ours.numpy(), np.asarray(ref, dtype=np.float64), atol=tol, rtol=0)


SIGNAL = np.linspace(0, 1, 1001)


def test_bt1886_matches_colour_science():
    close(C.bt1886_eotf(t(SIGNAL)), cs.models.eotf_BT1886(SIGNAL))
    close(C.bt1886_eotf(t(SIGNAL), lw=100, lb=0.1), cs.models.eotf_BT1886(SIGNAL, L_B=0.1, L_W=100), 1e-4)
    light = np.linspace(0, 1, 1001)
    close(C.bt1886_inverse_eotf(t(light)), cs.models.eotf_inverse_BT1886(light))
    close(C.bt1886_inverse_eotf(C.bt1886_eotf(t(SIGNAL), 300, 0.05), 300, 0.05), SIGNAL)


def test_bt709_oetf_matches_colour_science():
    close(C.bt709_oetf(t(SIGNAL)), cs.models.oetf_BT709(SIGNAL))
    close(C.bt709_inverse_oetf(t(SIGNAL)), cs.models.oetf_inverse_BT709(SIGNAL))
    close(C.bt709_inverse_oetf(C.bt709_oetf(t(SIGNAL))), SIGNAL)


def test_srgb_matches_colour_science():
    rgb = np.random.default_rng(0).random((3, 8, 8))
    close(C.srgb_eotf(t(rgb)), cs.models.eotf_sRGB(rgb))
    close(C.srgb_inverse_eotf(t(rgb)), cs.models.eotf_inverse_sRGB(rgb))


def test_pq_matches_colour_science_and_the_reference_numbers():
    nits = np.concatenate([[0.0], np.geomspace(1e-4, 10000, 2000)])
    close(C.pq_inverse_eotf(t(nits)), cs.models.eotf_inverse_ST2084(nits))
    close(C.pq_eotf(t(SIGNAL)), cs.models.eotf_ST2084(SIGNAL), 1e-6 * 10000)  # relative 1e-6 of peak
    close(C.pq_eotf(C.pq_inverse_eotf(t(nits))), nits, 1e-6 * 10000)
    close(C.pq_inverse_eotf(C.pq_eotf(t(SIGNAL))), SIGNAL)
    # facts checked on this machine: 100 / 203 / 1000 / 10000 cd/m²
    close(C.pq_inverse_eotf(t([100, 203, 1000, 10000])), [0.50808, 0.58069, 0.75183, 1.0], 1e-5)


def test_hlg_oetf_matches_colour_science():
    scene = np.linspace(0, 1, 1001)
    close(C.hlg_oetf(t(scene)), cs.models.oetf_BT2100_HLG(scene))
    close(C.hlg_inverse_oetf(t(SIGNAL)), cs.models.oetf_inverse_BT2100_HLG(SIGNAL))
    close(C.hlg_inverse_oetf(C.hlg_oetf(t(scene))), scene)
    close(C.hlg_oetf(t([1 / 12, 1.0])), [0.5, 1.0])


@pytest.mark.parametrize("peak", [400.0, 1000.0, 2000.0])
def test_hlg_ootf_matches_colour_science(peak):
    rgb = np.random.default_rng(1).random((3, 16, 16)) ** 2
    assert C.hlg_system_gamma(peak) == pytest.approx(gamma_function_BT2100_HLG(peak), abs=1e-12)
    ref = np.moveaxis(cs.models.ootf_BT2100_HLG(np.moveaxis(rgb, 0, -1), L_W=peak), -1, 0)
    close(C.hlg_ootf(t(rgb), peak), ref, 1e-6 * peak)
    back = np.moveaxis(cs.models.ootf_inverse_BT2100_HLG(np.moveaxis(ref, 0, -1), L_W=peak), -1, 0)
    close(C.hlg_inverse_ootf(t(ref), peak), back)
    close(C.hlg_inverse_ootf(C.hlg_ootf(t(rgb), peak), peak), rgb)


def test_hlg_system_gamma_extended_range():
    assert C.hlg_system_gamma(1000) == pytest.approx(1.2)
    assert C.hlg_system_gamma(4000) == pytest.approx(1.2 * 1.111**2)
    assert C.hlg_system_gamma(300) < C.hlg_system_gamma(400) < C.hlg_system_gamma(2000) < C.hlg_system_gamma(4000)


def test_bt709_to_bt2020_matrix_matches_colour_science():
    m = cs.matrix_RGB_to_RGB(cs.RGB_COLOURSPACES["ITU-R BT.709"], cs.RGB_COLOURSPACES["ITU-R BT.2020"])
    np.testing.assert_allclose(np.array(C.BT709_TO_BT2020), m, atol=1e-6)
    rgb = np.random.default_rng(2).random((3, 4, 5))
    close(C.rgb_to_rgb(t(rgb), C.BT709_TO_BT2020), np.einsum("ij,jhw->ihw", m, rgb))
    close(C.rgb_to_rgb(C.rgb_to_rgb(t(rgb), C.BT709_TO_BT2020), C.BT2020_TO_BT709), rgb, 1e-12)



def test_a_matrix_becomes_a_device_tensor_once():
    """rgb_to_rgb keeps each matrix's tensor per type and device (made from Python numbers on a
    GPU, it was a copy the host waited for on every call; issue 28 #3), with the same results; a
    list still works, and matrices made per call do not pile up."""
    from hdrvideo.colour import transfer

    x = torch.rand(2, 3, 4, 5)
    first = transfer._matrix(C.BT709_TO_BT2020, x.dtype, x.device)
    assert transfer._matrix(C.BT709_TO_BT2020, x.dtype, x.device) is first
    assert transfer._matrix(C.BT709_TO_BT2020, torch.float64, x.device) is not first
    expected = torch.einsum("ij,...jhw->...ihw", torch.tensor(C.BT709_TO_BT2020), x)
    assert torch.equal(C.rgb_to_rgb(x, C.BT709_TO_BT2020), expected)
    assert torch.equal(C.rgb_to_rgb(x, [list(r) for r in C.BT709_TO_BT2020]), expected)
    for k in range(100):
        C.rgb_to_rgb(x, ((1.0 + k, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    assert len(transfer._MATRICES) <= 64

def test_bt2408_sdr_in_hdr_numbers():
    """SDR grey 0 / 18% / 50% / 100% in an HDR container (BT.2408): luma codes as colour-science
    computes them, and within one code of the published 64 / 256 / 428 / 573 (PQ) and
    64 / 205 / 454 / 721 (HLG); 18% grey is 256.52 exactly, which rounds to 257."""
    from hdrvideo.colour.ycbcr import quantize, rgb_to_ycbcr
    from hdrvideo.pipeline.processor import encode_transfer

    levels = np.array([0.0, 0.18, 0.5, 1.0])
    grey = t(levels).view(1, 1, 4, 1).expand(1, 3, 4, 1)
    nits = C.rgb_to_rgb(C.bt1886_eotf(grey) * C.SDR_WHITE_NITS, C.BT709_TO_BT2020)
    ref_nits = cs.models.eotf_BT1886(levels) * 203
    ref_pq = cs.models.eotf_inverse_ST2084(ref_nits)
    ref_hlg = cs.models.oetf_BT2100_HLG(
        cs.models.ootf_inverse_BT2100_HLG(np.repeat(ref_nits[:, None], 3, 1), L_W=1000)[:, 1]
    )
    for transfer, signal, published in (
        ("pq", ref_pq, [64, 256, 428, 573]),
        ("hlg", ref_hlg, [64, 205, 454, 721]),
    ):
        q = quantize(rgb_to_ycbcr(encode_transfer(nits, transfer, 1000.0)), 10, True)[0, 0, :, 0].numpy()
        np.testing.assert_array_equal(q, np.round(64 + 876 * signal))
        assert np.abs(q - np.array(published)).max() <= 1, (transfer, q)
