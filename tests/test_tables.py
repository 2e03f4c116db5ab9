"""The transfer-function tables of the compiled CPU colour stage, against colour-science."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from hdrvideo.colour import tables as T

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour as cs

CODE = 1 / 876
"""One 10-bit limited-range luma code, in signal units."""


def test_bt1886_table_is_the_eotf_of_every_8_bit_code():
    ref = cs.models.eotf_BT1886(np.arange(256) / 255)
    np.testing.assert_allclose(T.bt1886_table().numpy(), ref, rtol=1e-7, atol=1e-12)


def test_pq_lookup_matches_st2084_over_the_whole_range():
    """From black through 10,000 cd/m², 200,000 light levels spread evenly in log light (where the
    table's steps are even): within 3·10⁻⁷ of signal (0.0003 of a code) of colour-science's
    float64 PQ; exact black and 2^-24 cd/m² and below within 0.04 of a code."""
    table = T.pq_table()
    nits = np.concatenate([np.geomspace(2.0**-24, 10000.0, 200_000), np.random.default_rng(0).uniform(0, 1000, 50_000)])
    ours = T.pq_lookup(torch.tensor(nits, dtype=torch.float32), table).double().numpy()
    ref = cs.models.eotf_inverse_ST2084(nits.astype(np.float32).astype(np.float64))
    err = np.abs(ours - ref)
    assert err.max() < 3e-7, err.max()
    low = T.pq_lookup(torch.tensor([0.0, 1e-9, 2.0**-24]), table).double().numpy()
    black = cs.models.eotf_inverse_ST2084(0.0)
    assert abs(low[0] - black) < 1e-9
    assert np.abs(low[1:] - black).max() < 0.04 * CODE


def test_pq_lookup_is_monotonic_and_continuous_across_steps_and_octaves():
    table = T.pq_table()
    # around every octave boundary: the float just below, the power of two, the float just above
    edges = torch.exp2(torch.arange(-20, 13, dtype=torch.float32))
    around = torch.stack((torch.nextafter(edges, torch.zeros(())), edges, torch.nextafter(edges, edges * 2)), 1)
    v = T.pq_lookup(around.flatten(), table).view(-1, 3)
    assert torch.all(v[:, 1] >= v[:, 0]) and torch.all(v[:, 2] >= v[:, 1])
    assert float((v[:, 2] - v[:, 0]).max()) < 1e-6
    dense = T.pq_lookup(torch.linspace(0, 1000, 1_000_001), table)
    assert torch.all(dense[1:] >= dense[:-1])


def test_pq_eotf_lookup_matches_st2084():
    table = T.pq_eotf_table()
    signal = np.linspace(0, 1, 100_001)
    ours = T.pq_eotf_lookup(torch.tensor(signal, dtype=torch.float32), table).double().numpy()
    ref = cs.models.eotf_ST2084(signal.astype(np.float32).astype(np.float64))
    below_1000 = ref <= 1000
    # light levels: within 0.01 cd/m² up to 1,000 cd/m², 0.01% above
    assert np.abs(ours - ref)[below_1000].max() < 0.01
    assert (np.abs(ours - ref) / np.maximum(ref, 1))[~below_1000].max() < 1e-4
    out_of_range = T.pq_eotf_lookup(torch.tensor([-0.5, 1.5]), table)
    assert float(out_of_range[0]) == 0.0 and abs(float(out_of_range[1]) - 10000.0) < 1e-2
