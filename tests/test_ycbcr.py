"""Y'CbCr matrices, quantisation and 4:2:0 resampling, against colour-science and by construction."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from hdrvideo.colour.ycbcr import (
    chroma_downsample_420,
    chroma_upsample_420,
    dequantize,
    quantize,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour as cs

WEIGHTS = {"bt709": "ITU-R BT.709", "bt2020": "ITU-R BT.2020", "bt601": "ITU-R BT.601"}


@pytest.mark.parametrize("matrix", ["bt709", "bt2020", "bt601"])
@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("limited", [True, False])
def test_rgb_to_ycbcr_codes_match_colour_science(matrix, bits, limited):
    rgb = np.random.default_rng(bits).random((3, 16, 16))
    ours = rgb_to_ycbcr(torch.from_numpy(rgb), matrix)
    # integer codes, exactly as colour-science rounds them (768 random colours)
    q = quantize(ours, bits, limited).numpy()
    ref_int = cs.RGB_to_YCbCr(
        np.moveaxis(rgb, 0, -1), K=cs.WEIGHTS_YCBCR[WEIGHTS[matrix]], out_bits=bits, out_legal=limited, out_int=True
    )
    np.testing.assert_array_equal(np.moveaxis(q, 0, -1), ref_int)
    back = ycbcr_to_rgb(dequantize(torch.from_numpy(q), bits, limited), matrix).numpy()
    assert np.abs(back - rgb).max() < 2.5 / (2**bits)


def test_ycbcr_round_trip_float64():
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    for m in ("bt601", "bt709", "bt2020"):
        torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(rgb, m), m), rgb, atol=1e-12, rtol=0)


def test_limited_range_anchor_codes():
    white = torch.ones(3, 1, 1, dtype=torch.float64)
    black = torch.zeros(3, 1, 1, dtype=torch.float64)
    assert quantize(rgb_to_ycbcr(white), 10, True).flatten().tolist() == [940, 512, 512]
    assert quantize(rgb_to_ycbcr(black), 10, True).flatten().tolist() == [64, 512, 512]
    assert quantize(rgb_to_ycbcr(white), 8, True).flatten().tolist() == [235, 128, 128]
    assert quantize(rgb_to_ycbcr(white), 10, False).flatten().tolist() == [1023, 512, 512]
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)
    assert quantize(rgb_to_ycbcr(red, "bt2020"), 10, True).flatten().tolist()[2] == 960


def test_unknown_matrix():
    with pytest.raises(ValueError, match="unknown"):
        rgb_to_ycbcr(torch.zeros(3, 1, 1), "bt2100")


def test_420_constant_and_ramps_round_trip():
    h, w = 8, 12
    const = torch.full((1, 2, h, w), 0.3, dtype=torch.float64)
    torch.testing.assert_close(chroma_upsample_420(chroma_downsample_420(const)), const)
    # a linear ramp in x and y survives down- and up-sampling exactly away from the edges
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp = (0.01 * xx + 0.02 * yy).expand(1, 2, h, w)
    back = chroma_upsample_420(chroma_downsample_420(ramp))
    torch.testing.assert_close(back[..., 1:-1, 2:-2], ramp[..., 1:-1, 2:-2], atol=1e-12, rtol=0)


def test_420_siting_is_left():
    """A chroma sample is co-sited with the even luma column, and centred between two rows."""
    h, w = 4, 8
    x = torch.zeros(1, 1, h, w, dtype=torch.float64)
    x[..., 4] = 1.0  # even column: lands on chroma column 2 with weight 1/2 (filter [1, 2, 1]/4)
    d = chroma_downsample_420(x)
    assert d[0, 0, 0].tolist() == [0.0, 0.0, 0.5, 0.0]
    x = torch.zeros(1, 1, h, w, dtype=torch.float64)
    x[..., 5] = 1.0  # odd column: split equally between chroma columns 2 and 3
    assert chroma_downsample_420(x)[0, 0, 0].tolist() == [0.0, 0.0, 0.25, 0.25]
    # vertical: rows 2k and 2k+1 contribute equally
    x = torch.zeros(1, 1, h, w, dtype=torch.float64)
    x[:, :, 2] = 1.0
    assert chroma_downsample_420(x)[0, 0, :, 0].tolist() == [0.0, 0.5]
    # up-sampling puts chroma column j exactly on luma column 2j
    c = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    c[..., 2] = 1.0
    up = chroma_upsample_420(c)
    assert up[0, 0, 0].tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0]


def test_420_needs_even_size():
    with pytest.raises(ValueError, match="even"):
        chroma_downsample_420(torch.zeros(1, 2, 5, 4))
